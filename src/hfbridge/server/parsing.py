"""Turning an HTTP request into a validated job, with errors that name the field.

Validation uses the very request models the client uses (:mod:`hfbridge.schemas`), so a body the
client would refuse is refused here too, with a 400 in the hosted API's ``{"error": "..."}``
shape, never FastAPI's default 422 body.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any, Mapping

import orjson
from pydantic import BaseModel, ValidationError

from .. import schemas as s
from ..tasks import InputKind, Task, TaskSpec, get_task
from ..validation import first_problem
from .chat import ChatInputError, ChatPlan, grammar_constraint, plan_chat
from .constraints import ConstraintSpec

__all__ = ["HTTPProblem", "Job", "parse_job", "parse_chat", "options_from"]


_CHAT_SPEC = get_task(Task.CONVERSATIONAL)


class HTTPProblem(Exception):
    """An error answer: status, message, and extra body fields (e.g. ``estimated_time``)."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


@dataclass
class Job:
    task: Task
    inputs: Any
    parameters: dict[str, Any] = field(default_factory=dict)
    use_cache: bool = True
    wait_for_model: bool = False
    stream: bool = False
    #: an http(s) URL still to be fetched (binary tasks, with --allow-urls)
    url: str | None = None
    #: what the answer must match (a grammar, a response format, tool calls), compiled later
    #: for the model's tokenizer
    constraint: ConstraintSpec | None = None
    #: a chat request's tools, formats and stream options: shapes the backend's answers
    chat: ChatPlan | None = None


def _truthy(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("1", "true", "yes")


def options_from(body_options: Mapping[str, Any] | None, headers: Mapping[str, str]) -> tuple[bool, bool]:
    """``use_cache`` and ``wait_for_model`` from the body's ``options`` or X-* headers."""
    opts = dict(body_options or {})
    use_cache = opts.get("use_cache")
    if use_cache is None:
        use_cache = _truthy(headers.get("x-use-cache"))
    wait = opts.get("wait_for_model")
    if wait is None:
        wait = _truthy(headers.get("x-wait-for-model"))
    return (True if use_cache is None else bool(use_cache)), bool(wait)


def _field_error(exc: ValidationError, prefix: str = "") -> HTTPProblem:
    where, message = first_problem(exc)
    return HTTPProblem(400, f"Error in `{prefix}{where or 'body'}`: {message}")


def _validate(model: type[BaseModel], data: Any, prefix: str = "") -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _field_error(exc, prefix) from None


def decode_json(body: bytes) -> Any:
    if not body:
        raise HTTPProblem(400, "The request body is empty; send JSON with an `inputs` field")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPProblem(400, f"The request body is not valid JSON: {exc}") from None


def _is_json(content_type: str) -> bool:
    ctype = content_type.split(";")[0].strip().lower()
    return ctype == "application/json" or ctype.endswith("+json")


def parse_job(spec: TaskSpec, content_type: str, body: bytes, headers: Mapping[str, str]) -> Job:
    """Validate one task request. Binary tasks take raw bytes (any non-JSON content type) or
    JSON with ``inputs`` as base64 or an http(s) URL."""
    if spec.input_kind.is_binary and not _is_json(content_type):
        if not body:
            raise HTTPProblem(400, "Error in `inputs`: the request body is empty; send the image or audio bytes")
        use_cache, wait = options_from(None, headers)
        return Job(spec.task, body, {}, use_cache, wait)
    if content_type and not _is_json(content_type):
        raise HTTPProblem(400, f"Content-Type {content_type!r} is not accepted for {spec.name}; send application/json")
    data = decode_json(body)
    if not isinstance(data, dict):
        raise HTTPProblem(400, "The request body must be a JSON object with an `inputs` field")
    if spec.input_kind.is_binary:
        return _binary_json(spec, data, headers)
    request = _validate(spec.request_model, data)
    options = getattr(request, "options", None)
    use_cache, wait = options_from(options.model_dump(exclude_none=True) if options else None, headers)
    parameters = request.parameters.model_dump(exclude_none=True, by_alias=True) if getattr(request, "parameters", None) else {}
    inputs = request.inputs
    if isinstance(inputs, BaseModel):
        inputs = inputs.model_dump()
    stream = bool(getattr(request, "stream", False))
    if spec.task is Task.CONVERSATIONAL:
        inputs = _conversation(request)
        _require_text(spec, inputs)
        return _chat_job(inputs, parameters, stream, use_cache, wait, prefix="parameters.")
    _require_text(spec, inputs)
    job = Job(spec.task, inputs, parameters, use_cache, wait, stream)
    if parameters.get("grammar"):
        job.constraint = grammar_constraint(parameters["grammar"], "parameters.grammar")
    return job


def _binary_json(spec: TaskSpec, data: dict[str, Any], headers: Mapping[str, str]) -> Job:
    request = _validate(s.BinaryJSONRequest, data)
    parameters: dict[str, Any] = {}
    if request.parameters:
        model = spec.parameters_model
        parameters = _validate(model, request.parameters, "parameters.").model_dump(exclude_none=True) if model else {}
    options = request.options.model_dump(exclude_none=True) if request.options else None
    use_cache, wait = options_from(options, headers)
    raw = request.inputs.strip()
    if raw.startswith(("http://", "https://")):
        return Job(spec.task, None, parameters, use_cache, wait, url=raw)
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPProblem(400, "Error in `inputs`: expected base64-encoded data or an http(s) URL") from None
    if not decoded:
        raise HTTPProblem(400, "Error in `inputs`: the decoded data is empty")
    return Job(spec.task, decoded, parameters, use_cache, wait)


def _conversation(request: Any) -> list[dict[str, str]]:
    if request.messages:
        return [m.model_dump(exclude_none=True, by_alias=True) for m in request.messages]
    turns = [request.inputs] if isinstance(request.inputs, str) else list(request.inputs)
    if not turns:
        raise HTTPProblem(400, "Error in `inputs`: at least one user turn is required")
    # A list of strings alternates user and assistant turns, ending with the user's.
    roles = ["user" if (len(turns) - 1 - i) % 2 == 0 else "assistant" for i in range(len(turns))]
    return [{"role": role, "content": text} for role, text in zip(roles, turns)]


def _require_text(spec: TaskSpec, inputs: Any) -> None:
    if spec.input_kind in (InputKind.TEXT,) and isinstance(inputs, str) and not inputs.strip():
        raise HTTPProblem(400, "Error in `inputs`: must not be empty")
    if spec.input_kind is InputKind.TEXTS or (spec.input_kind is InputKind.TEXT and isinstance(inputs, list)):
        items = [inputs] if isinstance(inputs, str) else inputs
        if not items:
            raise HTTPProblem(400, "Error in `inputs`: must contain at least one text")
        for i, item in enumerate(items):
            if not item.strip():
                raise HTTPProblem(400, f"Error in `inputs{'' if isinstance(inputs, str) else f'.{i}'}`: must not be empty")
    if spec.input_kind is InputKind.QUESTION_CONTEXT:
        for key in ("question", "context"):
            if not inputs[key].strip():
                raise HTTPProblem(400, f"Error in `inputs.{key}`: must not be empty")
    if spec.input_kind is InputKind.TABLE:
        lengths = {len(cells) for cells in inputs["table"].values()}
        if not inputs["table"] or len(lengths) != 1:
            raise HTTPProblem(400, "Error in `inputs.table`: columns must be non-empty and of equal length")
    if spec.input_kind is InputKind.ZERO_SHOT and not inputs.strip():
        raise HTTPProblem(400, "Error in `inputs`: must not be empty")
    if spec.input_kind is InputKind.MESSAGES and not any(m["role"] == "user" and _has_text(m.get("content")) for m in inputs):
        raise HTTPProblem(400, "Error in `messages`: a non-empty user message is required")


def _has_text(content: Any) -> bool:
    if isinstance(content, str):
        return bool(content.strip())
    return any(part.get("type") != "text" or part.get("text", "").strip() for part in content or [])


def parse_chat(body: bytes, headers: Mapping[str, str]) -> tuple[s.ChatCompletionRequest, Job]:
    """The OpenAI-style ``/v1/chat/completions`` body."""
    data = decode_json(body)
    request = _validate(s.ChatCompletionRequest, data)
    assert isinstance(request, s.ChatCompletionRequest)
    parameters = request.model_dump(exclude_none=True, by_alias=True, exclude={"model", "messages", "stream"})
    messages = [m.model_dump(exclude_none=True, by_alias=True) for m in request.messages]
    _require_text(_CHAT_SPEC, messages)
    use_cache, wait = options_from(None, headers)
    return request, _chat_job(messages, parameters, bool(request.stream), use_cache, wait)


def _chat_job(messages: list[dict[str, Any]], parameters: dict[str, Any], stream: bool, use_cache: bool, wait: bool, *, prefix: str = "") -> Job:
    """Tools, tool results, response formats and content parts become plain messages, sampling
    parameters and one constraint (:mod:`.chat`); the plan shapes the answer back."""
    try:
        plan = plan_chat(messages, parameters, stream=stream, prefix=prefix)
    except ChatInputError as exc:
        raise HTTPProblem(400, f"Error in `{exc.field}`: {exc.problem}") from None
    return Job(Task.CONVERSATIONAL, plan.messages, plan.parameters, use_cache, wait, stream, constraint=plan.constraint, chat=plan)
