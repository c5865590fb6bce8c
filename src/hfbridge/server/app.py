"""The FastAPI app of ``hfbridge serve``: the spec's routes and the hosted API's, one dispatcher.

Routes (model ids contain a slash, so paths under ``/models/`` are parsed here, not by the router):

* ``POST /models/{model_id}/{task}`` - the spec's task routes (any task the model serves);
* ``POST /models/{model_id}`` - the model's own task (spec and hosted);
* ``POST /models/{model_id}/pipeline/{task}`` - the hosted API's task override;
* ``POST /models/{model_id}/v1/chat/completions`` and ``POST /v1/chat/completions`` - chat;
* ``POST /pipeline/{task}`` - the registry's default model for ``task``; the hosted API's older
  ``POST /pipeline/{task}/{model_id}`` too;
* ``POST /rerank``, ``/predict``, ``/v1/embeddings`` (TEI's and OpenAI's routes, see
  :mod:`.serving`).
* ``POST /generate``, ``POST /generate_stream`` and ``POST /`` - TGI's routes (and what
  huggingface_hub sends to an endpoint URL), served by the default text-generation model.

The spec's routes answer the spec's shapes, the hosted API's routes its current ones (see
:mod:`.answers`); every error is ``{"error": "..."}`` with the right status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Sequence

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._version import __version__
from ..schemas.tasks import stream_problem
from ..tasks import PIPELINE_TASKS, TASKS, Task, TaskSpec
from ..validation import field_path
from .answers import RouteKind, plan as plan_job, predict as predict_job, route_shape
from .backends import BackendInputError, BinaryResult
from .batching import BatchSettings, Batchers
from .cache import AnswerCache, cache_key, is_deterministic
from .cancellation import Cancelled, Jobs, raise_if_cancelled
from .connections import read_body
from .constraints import Constraint, ConstraintError
from .decoding import Decoding
from .guards import RateLimiter, TokenGuard
from .limits import Limits, check_job, check_media
from .models import LoadState, ModelLoadFailed, ModelManager
from .parsing import HTTPProblem, Job, parse_chat, parse_job
from .registry import ModelEntry, Registry, default_cache_dir

__all__ = ["ServerSettings", "create_app"]

logger = logging.getLogger("hfbridge.server")

MAX_URL_BYTES = 32 * 1024 * 1024


@dataclass
class ServerSettings:
    registry: Registry = field(default_factory=Registry.default)
    cache_dir: Path = field(default_factory=default_cache_dir)
    tokens: Sequence[str] = ()
    #: requests per minute per token (or per client address); None: unlimited
    rate_limit: int | None = None
    allow_urls: bool = False
    preload: bool = False
    cache_entries: int = 512
    workers: int = 4
    #: what one request may cost (tokens, inputs, pixels, body size, time); see limits.py
    limits: Limits = field(default_factory=Limits)
    #: how concurrent encoder requests share forward passes; see batching.py
    batching: BatchSettings = field(default_factory=BatchSettings)
    #: how many generations of one model decode together; see decoding.py
    decoding: Decoding = field(default_factory=Decoding)


class _Server:
    """Everything one app instance holds; created once at app creation."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.registry = settings.registry
        # A batched generation holds a worker thread while it waits for its tokens: one more
        # thread per batch slot, so a full batch never starves the other models' work.
        self.models = ModelManager(settings.registry, settings.cache_dir, decoding=settings.decoding,
                                   workers=settings.workers + settings.decoding.max_batch_size)
        self.guard = TokenGuard(settings.tokens)
        self.limiter = RateLimiter(settings.rate_limit) if settings.rate_limit else None
        self.cache = AnswerCache(settings.cache_entries)
        self.jobs = Jobs()
        self.batchers = Batchers(settings.batching, self.models.lock, self.jobs)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def _problem(problem: HTTPProblem) -> Response:
    return _json(problem.body(), problem.status, problem.headers)


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    server = _Server(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.preload:
            server.models.preload()
        yield
        server.jobs.cancel_all()
        server.batchers.close()
        server.models.close()

    app = FastAPI(title="hfbridge inference server", version=__version__, docs_url="/docs", redoc_url=None, lifespan=lifespan)
    app.state.server = server

    @app.exception_handler(HTTPProblem)
    async def _on_problem(_: Request, exc: HTTPProblem) -> Response:
        return _problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _on_validation(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": ["?"], "msg": "invalid request"}
        where = field_path(first["loc"])
        return _json({"error": f"Error in `{where}`: {first['msg']}"}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(_: Request, exc: StarletteHTTPException) -> Response:
        return _json({"error": str(exc.detail)}, exc.status_code)

    @app.exception_handler(Exception)
    async def _on_crash(request: Request, exc: Exception) -> Response:
        return _json({"error": _internal_error(exc, f"{request.method} {request.url.path}")}, 500)

    @app.get("/")
    async def index() -> Response:
        return _json({
            "server": f"hfbridge {__version__}",
            "models": [_describe(server, entry) for entry in server.registry],
            "defaults": {task.value: mid for task, mid in server.registry.defaults.items()},
        })

    @app.get("/health")
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.get("/stats")
    async def stats() -> Response:
        """What the batchers did (forward passes, rows, shared requests, the largest batches)."""
        return _json({"batching": server.batchers.stats(), "jobs": {"running": len(server.jobs), "cancelled": server.jobs.cancelled}})

    @app.post("/pipeline/{rest:path}")
    async def pipeline(rest: str, request: Request) -> Response:
        body = await _admit(server, request)
        task_name, _, model_id = rest.partition("/")
        spec = _task_or_400(task_name)
        if model_id:  # the hosted API's older /pipeline/{task}/{model_id}
            entry = _entry_or_404(server, model_id)
        else:
            entry = server.registry.default_for(spec.task)
            if entry is None:
                raise HTTPProblem(400, f"No default model is configured for task '{spec.task.value}'")
        route = RouteKind.HOSTED if model_id else RouteKind.SPEC_GENERIC
        return await _serve_task(server, request, entry, spec, body, route=route)

    @app.post("/v1/chat/completions")
    async def chat_root(request: Request) -> Response:
        body = await _admit(server, request)
        chat, job = parse_chat(body, _headers(request))
        check_job(job, settings.limits, prefix="")
        if chat.model and chat.model not in PLACEHOLDER_MODEL_NAMES:
            entry = _entry_or_404(server, chat.model)
        else:
            entry = server.registry.default_for(Task.CONVERSATIONAL)
            if entry is None:
                raise HTTPProblem(400, "Error in `model`: required (this server has no default chat model)")
        _check_serves(entry, TASKS[Task.CONVERSATIONAL])
        return await _run(server, request, entry, job)

    # /rerank, /predict and /v1/embeddings (also under /models/{id}/): before the catch-all below
    from .serving import add_serving_routes

    add_serving_routes(app, server)

    @app.post("/generate")
    async def tgi_generate(request: Request) -> Response:
        return await _serve_tgi(server, request, stream=False)

    @app.post("/generate_stream")
    async def tgi_generate_stream(request: Request) -> Response:
        return await _serve_tgi(server, request, stream=True)

    @app.post("/")
    async def tgi_compat(request: Request) -> Response:
        return await _serve_tgi(server, request, stream=None)

    @app.post("/models/{rest:path}")
    async def models(rest: str, request: Request) -> Response:
        body = await _admit(server, request)
        if rest.endswith("/v1/chat/completions"):
            entry = _entry_or_404(server, rest[: -len("/v1/chat/completions")])
            _check_serves(entry, TASKS[Task.CONVERSATIONAL])
            _, job = parse_chat(body, _headers(request))
            check_job(job, settings.limits, prefix="")
            return await _run(server, request, entry, job)
        head, sep, task_name = rest.rpartition("/pipeline/")
        if sep and head and task_name:
            return await _serve_task(server, request, _entry_or_404(server, head), _task_or_400(task_name), body,
                                     route=RouteKind.HOSTED)
        entry = server.registry.get(rest)
        if entry is not None:
            spec = TASKS[entry.task]
            if spec.task is Task.TEXT_GENERATION and Task.CONVERSATIONAL in entry.tasks and _has_messages(body):
                spec = TASKS[Task.CONVERSATIONAL]
            return await _serve_task(server, request, entry, spec, body, route=RouteKind.HOSTED)
        head, _, last = rest.rpartition("/")
        if head and last in _TASK_NAMES:
            return await _serve_task(server, request, _entry_or_404(server, head), TASKS[Task(last)], body,
                                     route=RouteKind.SPEC_TASK)
        raise HTTPProblem(404, f"Model {rest} does not exist")

    return app


_TASK_NAMES = {t.value for t in PIPELINE_TASKS}


def _internal_error(exc: BaseException, where: str) -> str:
    """Logs a real failure with its traceback and gives the client an incident id to quote:
    an exception's text can hold paths, settings or another request's data, so it stays in the log."""
    incident = secrets.token_hex(4)
    logger.error("internal error %s in %s", incident, where, exc_info=exc)
    return f"Internal server error (incident {incident}; the details are in the server's log)"
#: model names that single-model endpoints ignore, sent by TGI's clients ("tgi") and by
#: huggingface_hub to an endpoint URL ("dummy"): the root chat route answers them with its
#: default chat model
PLACEHOLDER_MODEL_NAMES = frozenset({"tgi", "dummy"})


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def _describe(server: _Server, entry: ModelEntry) -> dict[str, Any]:
    return {
        "id": entry.model_id,
        "tasks": [t.value for t in entry.tasks],
        "source": entry.source,
        "state": server.models.state(entry.model_id).value,
        "meaningless": entry.is_tiny,
        "reranks": entry.reranks,
        "description": entry.description,
    }


async def _admit(server: _Server, request: Request) -> bytes:
    """Authentication, rate limit and body size and time, before any work."""
    token = server.guard.check(_headers(request))
    if server.limiter is not None:
        server.limiter.check(token or (request.client.host if request.client else "?"))
    return await read_body(request, server.settings.limits)


def _task_or_400(name: str) -> TaskSpec:
    if name == Task.TEXT_RANKING.value:
        raise HTTPProblem(400, "Reranking (text-ranking) is served at POST /rerank and /models/{model_id}/rerank (TEI's shape)")
    if name not in _TASK_NAMES:
        raise HTTPProblem(400, f"Unknown task '{name}'; known tasks: {', '.join(sorted(_TASK_NAMES))}")
    return TASKS[Task(name)]


def _entry_or_404(server: _Server, model_id: str) -> ModelEntry:
    entry = server.registry.get(model_id)
    if entry is None:
        raise HTTPProblem(404, f"Model {model_id} does not exist")
    return entry


def _check_serves(entry: ModelEntry, spec: TaskSpec) -> None:
    if spec.task not in entry.tasks:
        serves = ", ".join(t.value for t in entry.tasks)
        raise HTTPProblem(400, f"Model {entry.model_id} serves {serves}; it cannot answer {spec.task.value}")


def _has_messages(body: bytes) -> bool:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(data, dict) and "messages" in data


async def _serve_task(server: _Server, request: Request, entry: ModelEntry, spec: TaskSpec, body: bytes, *, route: RouteKind) -> Response:
    _check_serves(entry, spec)
    job = parse_job(spec, request.headers.get("content-type", ""), body, _headers(request))
    check_job(job, server.settings.limits)
    if job.url is not None:
        job.inputs = await _fetch(server, job.url)
    check_media(job, server.settings.limits)
    return await _run(server, request, entry, job, route=route)


async def _serve_tgi(server: _Server, request: Request, *, stream: bool | None) -> Response:
    """TGI's ``/generate`` (one answer object), ``/generate_stream`` (events) and ``/`` (a list
    of one answer, or events when the body says ``stream``). As in TGI, the prompt is not
    repeated in the answer unless ``return_full_text`` asks for it, and nothing is cached."""
    body = await _admit(server, request)
    entry = server.registry.default_for(Task.TEXT_GENERATION)
    if entry is None:
        raise HTTPProblem(400, "This server has no default text-generation model for TGI's routes")
    spec = TASKS[Task.TEXT_GENERATION]
    _check_serves(entry, spec)
    job = parse_job(spec, request.headers.get("content-type", ""), body, _headers(request))
    check_job(job, server.settings.limits)
    job.parameters.setdefault("return_full_text", False)
    job.use_cache = False
    if stream is not None:
        job.stream = stream
    problem = stream_problem(job.parameters) if job.stream else None
    if problem:
        raise HTTPProblem(400, f"Error in `{problem[0]}`: {problem[1]}")
    # /generate answers the object itself, not a list of one
    return await _run(server, request, entry, job, shape=(lambda answers: answers[0]) if stream is False else None)


async def _fetch(server: _Server, url: str) -> bytes:
    if not server.settings.allow_urls:
        raise HTTPProblem(400, "Error in `inputs`: URL inputs are disabled on this server; send the bytes "
                               "(raw or base64), or start it with --allow-urls")
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30.0)) as session:
            async with session.get(url) as response:
                status = response.status
                data = await response.content.read(MAX_URL_BYTES + 1)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise HTTPProblem(400, f"Error in `inputs`: could not fetch {url}: {exc}") from None
    if status != 200 or len(data) > MAX_URL_BYTES:
        raise HTTPProblem(400, f"Error in `inputs`: fetching {url} answered HTTP {status}" + (" (too large)" if len(data) > MAX_URL_BYTES else ""))
    return data


async def _ready_backend(server: _Server, entry: ModelEntry, job: Job) -> Any:
    """The loaded backend, or a 503 with ``estimated_time`` (unless the caller waits)."""
    models = server.models
    backend = models.backend(entry.model_id)
    if backend is not None:
        return backend
    future = models.start_loading(entry.model_id)
    if models.state(entry.model_id) is LoadState.FAILED:
        raise HTTPProblem(500, models.error(entry.model_id) or f"Model {entry.model_id} could not be loaded")
    if not job.wait_for_model:
        raise HTTPProblem(503, f"Model {entry.model_id} is currently loading",
                          estimated_time=models.estimated_time(entry.model_id))
    try:
        return await asyncio.wrap_future(future)
    except ModelLoadFailed as exc:
        raise HTTPProblem(500, str(exc)) from None


def _model_lock(server: _Server, entry: ModelEntry, backend: Any) -> Any:
    """The model's lock, one call at a time; none for a backend that batches concurrent calls."""
    return contextlib.nullcontext() if getattr(backend, "concurrent", False) else server.models.lock(entry.model_id)


def _with_timing(response: Response, started: float, kind: str) -> Response:
    response.headers["X-Compute-Time"] = f"{time.perf_counter() - started:.3f}"
    response.headers["X-Compute-Type"] = kind
    return response


async def _compiled_parameters(entry: ModelEntry, backend: Any, job: Job) -> dict[str, Any]:
    """The job's parameters plus its compiled constraint, compiled before any answer starts (so
    a bad schema is a 400, never a broken stream) and off the event loop, bounded in time."""
    if job.constraint is None:
        return job.parameters
    compiler = getattr(backend, "constraints", None)
    if compiler is None:
        raise HTTPProblem(400, f"Error in `{job.constraint.field}`: model {entry.model_id} cannot constrain its answers")
    try:
        constraint: Constraint = await compiler.compile_async(job.constraint)
    except ConstraintError as exc:
        raise HTTPProblem(400, f"Error in `{exc.field}`: {exc.message}") from None
    return {**job.parameters, "constraint": constraint}


async def _run(server: _Server, request: Request, entry: ModelEntry, job: Job, *, route: RouteKind = RouteKind.SPEC_TASK,
               shape: Callable[[Any], Any] | None = None) -> Response:
    backend = await _ready_backend(server, entry, job)
    parameters = await _compiled_parameters(entry, backend, job)
    started = time.perf_counter()
    if job.stream:
        if job.task not in (Task.TEXT_GENERATION, Task.CONVERSATIONAL):
            raise HTTPProblem(400, f"Error in `stream`: streaming is only available for text-generation and conversational, not {job.task.value}")
        events = _stream_events(server, entry, backend, job, parameters)
        return _with_timing(StreamingResponse(events, media_type="text/event-stream",
                                              headers={"Cache-Control": "no-cache"}), started, "cpu")
    key = None
    if job.use_cache and is_deterministic(job.task, job.parameters):
        constraint = job.constraint.key if job.constraint is not None else None
        key = cache_key(entry.model_id, job.task, job.inputs, {**job.parameters, "_route": route.value, "_constraint": constraint})
        cached = server.cache.get(key)
        if cached is not None:
            return _with_timing(Response(cached[0], media_type=cached[1]), started, "cache")
    lock = _model_lock(server, entry, backend)

    def shaped(result: Any) -> Any:
        if job.chat is not None:
            result = job.chat.answer(result)
        return shape(result) if shape is not None else route_shape(job.task, result, job.inputs, route)

    def predict() -> Any:
        with lock:
            raise_if_cancelled()  # the client may have left while this waited for the model
            result = predict_job(backend, job.task, job.inputs, parameters)
        return shaped(result)

    try:
        if server.batchers.takes(backend, job.task):  # one forward pass: shared with concurrent requests
            prepare = lambda: plan_job(backend, job.task, job.inputs, parameters)  # noqa: E731
            result = shaped(await server.batchers.run(entry.model_id, backend, prepare, request.receive))
        else:
            result = await server.jobs.run(server.models.inference, predict, request.receive)
    except BackendInputError as exc:
        raise HTTPProblem(400, f"Error in `{exc.field}`: {exc.message}") from None
    except Cancelled:
        # Nobody reads this answer; it only names the outcome for the access log.
        raise HTTPProblem(499, "The client closed the connection before the answer was ready") from None
    if isinstance(result, BinaryResult):
        body, media_type = result.data, result.content_type
    else:
        body, media_type = orjson.dumps(result), "application/json"
    if key is not None:
        server.cache.put(key, body, media_type)
    return _with_timing(Response(body, media_type=media_type), started, "cpu")


async def _stream_events(server: _Server, entry: ModelEntry, backend: Any, job: Job, parameters: dict[str, Any]) -> AsyncIterator[bytes]:
    """Runs the backend's token generator on a worker thread and relays its events as SSE.

    When the client goes away the generator is closed at the next token, so an abandoned stream
    stops using the CPU."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()
    lock = _model_lock(server, entry, backend)

    def put(kind: str, item: Any) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, (kind, item))

    def produce() -> None:
        # A cancelled stream (its client went away, the server is stopping) just ends.
        with contextlib.suppress(Cancelled), server.jobs.running(stop), lock:
            generator = None
            try:
                raise_if_cancelled()  # the client may have left while this waited for the model
                generator = backend.stream(job.task, job.inputs, parameters)
                events = job.chat.stream(generator) if job.chat is not None else generator
                for event in events:
                    raise_if_cancelled()
                    put("event", event)
            except BackendInputError as exc:
                put("error", f"Error in `{exc.field}`: {exc.message}")
            except Exception as exc:  # relayed to the client as an error event, not swallowed
                put("error", _internal_error(exc, f"streaming {entry.model_id}"))
            finally:
                if generator is not None:
                    generator.close()
                put("end", None)

    loop.run_in_executor(server.models.inference, produce)
    ended = False
    try:
        while True:
            kind, item = await queue.get()
            if kind == "end":
                ended = True
                break
            if kind == "error":
                yield b"data: " + orjson.dumps({"error": item, "error_type": "generation"}) + b"\n\n"
                continue
            yield b"data: " + orjson.dumps(item) + b"\n\n"
        if job.task is Task.CONVERSATIONAL:
            yield b"data: [DONE]\n\n"
    finally:
        if not ended:  # the client went away (or the server is stopping) mid-stream
            stop.set()

