"""What the LangChain and LlamaIndex adapters share, written once and framework-free.

The adapters are thin: they translate framework conventions (fields, callbacks, result types)
and call the functions here, which call the core clients. Nothing here does HTTP itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from ._concurrency import RECORDING_SERIALLY, map_in_threads, recording_gate, recording_lock  # noqa: F401  (re-exported)
from .async_client import AsyncInferenceClient
from .client import InferenceClient
from .config import ENV_TOKENS, Layout
from .errors import InvalidInputError, redact_value
from .hints import warn_missing_token
from .media import BinaryOutput, is_url
from .tasks import InputKind, OutputKind, Task, TaskSpec, find_task
from .tool_inputs import ToolInputPolicy, ToolInputRefused, check_url
from .validation import require_text

__all__ = [
    "ClientPair",
    "Closable",
    "init_hiding_token",
    "embed_batches",
    "aembed_batches",
    "check_texts",
    "generation_parameters",
    "ToolRunner",
    "format_tool_result",
]


class ClientPair:
    """A sync and an async client built once from the same settings and shared by every call.

    Building a client does no I/O (pools open on first use), so adapters may build one in their
    constructor. The pair closes only the clients it built (not ones it was given), on
    ``close()`` / ``aclose()``; clients it forgets are closed when collected, at interpreter
    exit, and the async one's pools also when their event loop ends. One stream ending never
    closes the pair."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        token: Any = None,
        layout: Layout | str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        max_concurrency: int | None = None,
        deadline: float | None = None,
        client: InferenceClient | None = None,
        async_client: AsyncInferenceClient | None = None,
    ) -> None:
        settings = dict(base_url=base_url, token=token, layout=layout, timeout=timeout,
                        max_retries=max_retries, max_concurrency=max_concurrency, deadline=deadline)
        self.sync = client or InferenceClient(**settings)
        self.async_ = async_client or AsyncInferenceClient(**settings)
        self._owns_sync = client is None
        self._owns_async = async_client is None

    @classmethod
    def for_component(cls, component: Any, max_concurrency: int | None = None) -> "ClientPair":
        """The pair for an adapter with the shared connection fields (``base_url``, ``token``
        as a secret or None, ``layout``, ``timeout``, ``max_retries``, ``deadline``; a toolkit's
        ``client`` / ``async_client``). A component without a token sends none, rather than
        reading the environment again behind its back."""
        token = component.token
        pair = cls(
            base_url=component.base_url,
            token=token.get_secret_value() if token is not None else False,
            layout=component.layout,
            timeout=component.timeout,
            max_retries=component.max_retries,
            deadline=getattr(component, "deadline", None),
            max_concurrency=max_concurrency,
            client=getattr(component, "client", None),
            async_client=getattr(component, "async_client", None),
        )
        warn_missing_token(pair.sync.config, token)  # False above means "none found", not "opted out"
        return pair

    @property
    def base_url(self) -> str:
        return self.sync.base_url

    @property
    def layout(self) -> Layout:
        return self.sync.config.layout

    def close(self) -> None:
        """Close both clients now (the async one's pools too, whatever loop they are in)."""
        if self._owns_sync:
            self.sync.close()
        if self._owns_async:
            self.async_.close()

    async def aclose(self) -> None:
        if self._owns_sync:
            self.sync.close()
        if self._owns_async:
            await self.async_.aclose()


class Closable:
    """``close()`` / ``aclose()`` and (async) context managers, for every adapter and toolkit
    that holds a :class:`ClientPair` as ``clients``. A component that shares another's pair
    (a toolkit's tools) leaves closing it to the owner."""

    def _owned_clients(self) -> ClientPair | None:
        if not getattr(self, "_owns_clients", True):
            return None
        return getattr(self, "_clients", None) or getattr(self, "clients", None)

    def close(self) -> None:
        clients = self._owned_clients()
        if clients is not None:
            clients.close()

    async def aclose(self) -> None:
        clients = self._owned_clients()
        if clients is not None:
            await clients.aclose()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _secrets_in(data: Mapping[str, Any]) -> list[str]:
    token = data.get("token")
    if hasattr(token, "get_secret_value"):
        token = token.get_secret_value()
    values = [token] if isinstance(token, str) else []
    values += [os.environ[name] for name in ENV_TOKENS if os.environ.get(name)]
    return [v.strip() for v in values if v and v.strip()]


def _without(error: ValidationError, secrets: list[str]) -> ValidationError:
    def clean(value: Any) -> Any:
        for secret in secrets:
            value = redact_value(value, secret)
        return value

    details = []
    for item in error.errors(include_url=False):
        detail: dict[str, Any] = {"type": item["type"], "loc": item["loc"], "input": clean(item["input"])}
        if "ctx" in item:
            detail["ctx"] = {k: ValueError(clean(str(v))) if isinstance(v, BaseException) else clean(v) for k, v in item["ctx"].items()}
        details.append(detail)
    try:
        return ValidationError.from_exception_data(error.title, details)
    except (KeyError, TypeError, ValueError):  # an error type pydantic-core cannot rebuild
        rebuilt = [{**d, "type": PydanticCustomError(item["type"], clean(item["msg"]))} for d, item in zip(details, error.errors())]
        return ValidationError.from_exception_data(error.title, rebuilt)


def init_hiding_token(init: Callable[..., None], data: dict[str, Any]) -> None:
    """``init(**data)``, and if validation fails, the same ValidationError with the token
    redacted wherever pydantic would print it (a model-level error shows the whole input as
    ``input_value``). Raised outside the ``except``, so the original is not chained either."""
    failure: ValidationError | None = None
    try:
        init(**data)
    except ValidationError as exc:
        failure = exc
    if failure is not None:
        secrets = _secrets_in(data)
        if any(secret in f"{failure}{failure.errors()}" for secret in secrets):
            failure = _without(failure, secrets)
        raise failure


# --------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------
def check_texts(texts: Any, field: str = "texts") -> list[str]:
    """Every text checked up front, so an error names its index in the caller's own list."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidInputError(field, "must be a list of strings")
    if not all(isinstance(text, str) and text and not text.isspace() for text in texts):
        for i, text in enumerate(texts):  # the field name is only built for the one at fault
            require_text(text, f"{field}[{i}]")
    return list(texts)


def _batches(texts: list[str], size: int) -> list[list[str]]:
    if size < 1:
        raise InvalidInputError("batch_size", f"must be >= 1, got {size}")
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError("show_progress=True needs tqdm: pip install tqdm") from exc
    return tqdm(total=total, desc=desc, unit="text")


def embed_batches(
    client: InferenceClient,
    texts: list[str],
    *,
    model: str | None,
    batch_size: int,
    max_concurrency: int,
    show_progress: bool = False,
    **options: Any,
) -> list[list[float]]:
    """Every text's vector, in input order; one request per batch, ``max_concurrency`` at once.
    A batch that still fails after the core's retries raises: nothing is dropped.

    Without a progress bar this is the core's own batching (``feature_extraction(batch_size=)``,
    bounded by the client's pool, which the adapters size to ``max_concurrency``)."""
    batches = _batches(texts, batch_size)
    if not show_progress and client.config.max_concurrency <= max_concurrency:
        return client.feature_extraction(texts, model=model, batch_size=batch_size, **options)
    bar = _progress(len(texts), show_progress, "embedding")
    lock = threading.Lock()

    def one(batch: list[str]) -> list[list[float]]:
        vectors = client.feature_extraction(batch, model=model, **options)
        if bar is not None:
            with lock:
                bar.update(len(batch))
        return vectors

    try:
        results = map_in_threads(one, batches, max_concurrency)
    finally:
        if bar is not None:
            bar.close()
    return [vector for batch in results for vector in batch]


async def aembed_batches(
    client: AsyncInferenceClient,
    texts: list[str],
    *,
    model: str | None,
    batch_size: int,
    max_concurrency: int,
    show_progress: bool = False,
    **options: Any,
) -> list[list[float]]:
    batches = _batches(texts, batch_size)
    if not show_progress and client.config.max_concurrency <= max_concurrency:
        if len(batches) == 1:
            async with recording_gate():
                return await client.feature_extraction(texts, model=model, **options)
        return await client.feature_extraction(texts, model=model, batch_size=batch_size, **options)
    bar = _progress(len(texts), show_progress, "embedding")
    semaphore = asyncio.Semaphore(max(1, max_concurrency))

    async def one(batch: list[str]) -> list[list[float]]:
        async with semaphore, recording_gate():
            vectors = await client.feature_extraction(batch, model=model, **options)
        if bar is not None:
            bar.update(len(batch))
        return vectors

    try:
        results = await asyncio.gather(*(one(batch) for batch in batches))
    finally:
        if bar is not None:
            bar.close()
    return [vector for batch in results for vector in batch]


# --------------------------------------------------------------------------------------------
# Text generation
# --------------------------------------------------------------------------------------------
def generation_parameters(fields: Mapping[str, Any], stop: Sequence[str] | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The core's text_generation keyword arguments from an adapter's fields and call options;
    stop sequences from the call are added to the configured ones."""
    names = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "do_sample", "return_full_text", "seed")
    params = {name: fields.get(name) for name in names}
    unknown = set(overrides) - set(names) - {"stop"}
    if unknown:
        raise InvalidInputError(sorted(unknown)[0], f"unknown generation option; known: {', '.join(names)}, stop")
    params.update({k: v for k, v in overrides.items() if k != "stop"})
    stops = list(fields.get("stop") or []) + list(stop or []) + list(overrides.get("stop") or [])
    params["stop"] = list(dict.fromkeys(stops)) or None
    params["details"] = True
    return {k: v for k, v in params.items() if v is not None}


def generation_info(details: Any) -> dict[str, Any] | None:
    if details is None:
        return None
    info = {
        "finish_reason": details.finish_reason,
        "generated_tokens": details.generated_tokens,
        "prompt_tokens": details.prompt_tokens,
    }
    return {k: v for k, v in info.items() if v is not None} or None


# --------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------
def _jsonable(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(exclude_none=True)
    if isinstance(result, list):
        return [_jsonable(item) for item in result]
    return result


def _save_media(spec: TaskSpec, data: BinaryOutput, output_dir: Path | None) -> Path:
    folder = Path(output_dir or Path(tempfile.gettempdir()) / "hfbridge")
    folder.mkdir(parents=True, exist_ok=True)
    return data.save(folder / f"{spec.tool_name}-{uuid.uuid4().hex[:12]}.{data.extension}")


def format_tool_result(spec: TaskSpec, result: Any, output_dir: Path | None) -> tuple[str, Any]:
    """(content for the model, artifact for the program) of one task result.

    Content is compact: JSON for structured answers, a file path for generated media (written
    to ``output_dir``), a short summary for embeddings; the full typed result is the artifact."""
    if spec.output is not OutputKind.JSON:
        assert isinstance(result, BinaryOutput)
        path = _save_media(spec, result, output_dir)
        kind = "image" if spec.output is OutputKind.IMAGE else "audio"
        return f"Wrote the {kind} ({result.content_type}, {len(result)} bytes) to {path}", result
    if spec.task is Task.AUDIO_TO_AUDIO:  # clips as files, never base64 in the model's context
        clips = [{"label": clip.label, "path": str(_save_media(spec, clip.audio(), output_dir))} for clip in result]
        return json.dumps(clips, ensure_ascii=False), result
    if spec.task is Task.FEATURE_EXTRACTION:
        head = ", ".join(f"{x:.4f}" for x in result[:6])
        return f"A {len(result)}-dimensional embedding: [{head}, ...]", result
    if spec.task is Task.IMAGE_SEGMENTATION:
        summary = [{"label": r.label, "score": r.score} for r in result]
        return json.dumps(summary, ensure_ascii=False), result
    if spec.task is Task.CONVERSATIONAL:
        return result.choices[0].message.content or "", result
    data = _jsonable(result)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")), result


class ToolRunner:
    """Runs one task's tool call through the shared clients (sync or async).

    A file or URL argument (images, audio) is resolved here under ``policy``, never by the
    client: files only inside the allowed folders, URLs only public ones, downloaded by this
    side (with the client's bounds) and sent as bytes, so no server is asked to fetch them
    either. A refusal raises :class:`~hfbridge.tool_inputs.ToolInputRefused`, which each
    framework's tool reports to the agent as its result."""

    def __init__(self, clients: ClientPair, spec: TaskSpec, model: str | None, output_dir: str | os.PathLike[str] | None = None,
                 policy: ToolInputPolicy | None = None) -> None:
        self.clients = clients
        self.spec = spec
        self.model = model
        self.output_dir = Path(output_dir) if output_dir else None
        self.policy = policy or ToolInputPolicy()
        fields = spec.tool_args.model_fields
        self._media_field = spec.input_kind.value if spec.input_kind in (InputKind.IMAGE, InputKind.AUDIO) and spec.input_kind.value in fields else None
        if model is None and clients.layout is not Layout.SPEC:
            raise InvalidInputError(
                "models", f"task '{spec.task.value}' has no model configured, and the "
                f"{clients.layout.value} layout has no default model per task; pass models={{'{spec.task.value}': 'org/name'}}"
            )

    def _kwargs(self, args: Mapping[str, Any]) -> dict[str, Any]:
        checked = self.spec.tool_args.model_validate(dict(args)).model_dump(exclude_none=True)
        if self.spec.task is Task.CONVERSATIONAL:
            checked = {"messages": checked.pop("message")}
        return {**checked, "model": self.model}

    def _media_url(self, kwargs: dict[str, Any]) -> str | None:
        """The URL to download for the media argument, if it is one; a path is read here."""
        if self._media_field is None:
            return None
        value = kwargs[self._media_field]
        if is_url(value):
            if not self.policy.allow_private_urls:
                check_url(value, self._media_field)
            return value
        if "://" in value:
            raise ToolInputRefused(self._media_field, f"refused: only http(s) URLs are fetched, got {value[:200]!r}")
        kwargs[self._media_field] = self.policy.read_file(value, self._media_field)
        return None

    def _method(self, client: Any) -> Callable[..., Any]:
        return getattr(client, self.spec.method)

    def _refused(self, exc: ToolInputRefused) -> ToolInputRefused:
        """A refusal from the download, named after the tool's argument rather than ``url``."""
        return ToolInputRefused(self._media_field or exc.field, exc.problem)

    def run(self, args: Mapping[str, Any]) -> tuple[str, Any]:
        kwargs = self._kwargs(args)
        url = self._media_url(kwargs)
        if url is not None:
            try:
                kwargs[self._media_field] = self.clients.sync.download(url, public_only=not self.policy.allow_private_urls)
            except ToolInputRefused as exc:
                raise self._refused(exc) from None
        result = self._method(self.clients.sync)(**kwargs)
        return format_tool_result(self.spec, result, self.output_dir)

    async def arun(self, args: Mapping[str, Any]) -> tuple[str, Any]:
        kwargs = self._kwargs(args)
        url = self._media_url(kwargs)
        if url is not None:
            try:
                kwargs[self._media_field] = await self.clients.async_.download(url, public_only=not self.policy.allow_private_urls)
            except ToolInputRefused as exc:
                raise self._refused(exc) from None
        result = await self._method(self.clients.async_)(**kwargs)
        return format_tool_result(self.spec, result, self.output_dir)


def tool_tasks(tasks: Iterable[Task | str] | None) -> list[Task]:
    """The tasks tools are made for: all but ``conversational`` by default (27)."""
    if tasks is None:
        return [t for t in Task if t is not Task.CONVERSATIONAL]
    return [find_task(task, "tasks") for task in tasks]


def tool_description(spec: TaskSpec) -> str:
    """What an agent reads to decide whether and how to call the tool."""
    fields = spec.tool_args.model_fields
    args = "; ".join(f"{name}: {info.description}" for name, info in fields.items())
    return f"{spec.summary} Arguments - {args}"
