"""The protocol, written once and free of I/O: build a request, read a response, map an error.

Both transports (``requests`` for the sync client, ``aiohttp`` for the async one) do nothing but
move the bytes this module describes, in the style of h11: the caller owns the sockets, this
module owns the meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import orjson

from . import errors as e
from . import hints
from ._version import __version__
from .config import ClientConfig, origin_of
from .media import BinaryInput, BinaryOutput
from .routes import BodyStyle, Route, plan_route
from .schemas import Options
from .shapes import NormalizeContext, normalize
from .tasks import InputKind, OutputKind, TaskSpec

__all__ = [
    "Call",
    "Request",
    "build_request",
    "needs_download",
    "parse_response",
    "error_from_response",
    "decode_error_message",
    "USER_AGENT",
]

USER_AGENT = f"hfbridge/{__version__}"
JSON = "application/json"
NEW_BASE_URL_HINT = (
    "This host no longer serves the Inference API; use base_url="
    "'https://router.huggingface.co/hf-inference' (hfbridge's default)."
)


@dataclass(frozen=True)
class Call:
    """One validated user call, before any URL or byte is decided."""

    spec: TaskSpec
    model: str | None
    inputs: Any
    parameters: dict[str, Any] = field(default_factory=dict)
    options: Options = field(default_factory=Options)
    stream: bool = False
    #: run()/run_pipeline(): generic JSON body, raw JSON answer
    generic: bool = False
    #: run(task=...): the hosted layout's task override route
    force_task: bool = False
    #: data for the normaliser (pooling, normalise, expected counts)
    extra: dict[str, Any] = field(default_factory=dict)

    def with_binary(self, data: bytes) -> "Call":
        if isinstance(self.inputs, dict):  # an image-and-question task: the image is one field
            return replace(self, inputs={**self.inputs, "image": BinaryInput(data=data)})
        return replace(self, inputs=BinaryInput(data=data))

    def waiting_for_model(self) -> "Call":
        return replace(self, options=self.options.model_copy(update={"wait_for_model": True}))


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes
    stream: bool = False

    def __repr__(self) -> str:  # headers hold the token: never shown
        return f"Request({self.method} {self.url}, {len(self.content)} bytes)"


def needs_download(config: ClientConfig, call: Call) -> str | None:
    """The URL the client must fetch itself (without the token) before sending, if any."""
    binary = _binary_part(call.inputs)
    if binary is None or binary.url is None:
        return None
    if binary is not call.inputs:  # inside a JSON object: always sent as base64 data
        return binary.url
    route = _route(config, call)
    return None if route.accepts_url_input else binary.url


def _binary_part(inputs: Any) -> BinaryInput | None:
    """The binary part of a call's inputs: the inputs themselves, or the ``image`` field of an
    image-and-question task (document and visual question answering)."""
    if isinstance(inputs, BinaryInput):
        return inputs
    if isinstance(inputs, dict) and isinstance(inputs.get("image"), BinaryInput):
        return inputs["image"]
    return None


def _route(config: ClientConfig, call: Call) -> Route:
    return plan_route(
        config,
        call.spec,
        call.model,
        has_parameters=bool(call.parameters),
        generic=call.generic,
        force_task=call.force_task,
        text_pairs=bool(call.extra.get("pairs")),
    )


def build_request(config: ClientConfig, call: Call) -> Request:
    route = _route(config, call)
    if isinstance(call.inputs, BinaryInput) and call.inputs.data is None:
        if not route.accepts_url_input:
            raise ValueError("a URL input must be downloaded before the request is built")
        # The spec's JSON form of the route: {"inputs": url}; the server fetches it.
        route = replace(route, style=BodyStyle.JSON, options_in_body=True)
    options = call.options.model_dump(exclude_none=True)
    headers: dict[str, str] = {"User-Agent": USER_AGENT}
    if route.style is BodyStyle.RAW:
        binary: BinaryInput = call.inputs
        content = binary.data or b""
        headers["Content-Type"] = binary.content_type
    else:
        body = _json_body(route, call, options)
        content = orjson.dumps(body)
        headers["Content-Type"] = JSON
    if call.stream:
        headers["Accept"] = "text/event-stream"
    elif call.spec.output is OutputKind.JSON and not call.generic:
        headers["Accept"] = JSON
    else:
        headers["Accept"] = "*/*"
    if not (route.options_in_body and route.style is not BodyStyle.RAW):
        if "use_cache" in options:
            headers["X-Use-Cache"] = "true" if options["use_cache"] else "false"
        if options.get("wait_for_model"):
            headers["X-Wait-For-Model"] = "true"
    headers.update(config.headers)
    headers.update(auth_headers(config, route.url))
    return Request("POST", route.url, headers, content, stream=call.stream)


def auth_headers(config: ClientConfig, url: str) -> dict[str, str]:
    """The Authorization header, for ``base_url``'s own origin only."""
    if config.token is None or origin_of(url) != origin_of(config.base_url):
        return {}
    return {"Authorization": f"Bearer {config.token.get_secret_value()}"}


def _inputs_json(call: Call) -> Any:
    inputs = call.inputs
    if isinstance(inputs, BinaryInput):
        return inputs.url if inputs.data is None else inputs.as_base64()
    binary = _binary_part(inputs)
    if binary is not None:
        return {**inputs, "image": binary.as_base64()}
    return inputs


def _json_body(route: Route, call: Call, options: dict[str, Any]) -> dict[str, Any]:
    if route.style in _SPECIAL_BODIES:
        body = _SPECIAL_BODIES[route.style](call)
        if route.options_in_body and options:
            body["options"] = options
        return body
    if route.style is BodyStyle.CHAT:
        body: dict[str, Any] = {"messages": call.inputs}
        if call.model:
            body["model"] = call.model
        body.update(call.parameters)
        if call.stream:
            body["stream"] = True
        return body
    body = {"inputs": _inputs_json(call)}
    if call.parameters:
        body["parameters"] = call.parameters
    if route.options_in_body and options:
        body["options"] = options
    if call.stream:
        body["stream"] = True
    return body


def _rerank_body(call: Call) -> dict[str, Any]:
    return {"query": call.inputs["query"], "texts": call.inputs["texts"], **call.parameters}


def _cohere_rerank_body(call: Call) -> dict[str, Any]:
    body: dict[str, Any] = {"model": call.model, "query": call.inputs["query"], "documents": call.inputs["texts"]}
    if "top_n" in call.parameters:
        body["top_n"] = call.parameters["top_n"]
    if call.parameters.get("return_text"):
        body["return_documents"] = True
    return body


def _pairs_body(call: Call) -> dict[str, Any]:
    query = call.inputs["query"]
    return {"inputs": [{"text": query, "text_pair": text} for text in call.inputs["texts"]]}


def _openai_embeddings_body(call: Call) -> dict[str, Any]:
    body: dict[str, Any] = {"input": call.inputs, "model": call.model}
    if "dimensions" in call.parameters:
        body["dimensions"] = call.parameters["dimensions"]
    if call.extra.get("encoding_format"):
        body["encoding_format"] = call.extra["encoding_format"]
    return body


def _predict_body(call: Call) -> dict[str, Any]:
    return {"inputs": [list(pair) for pair in call.inputs], **call.parameters}


_SPECIAL_BODIES = {
    BodyStyle.RERANK: _rerank_body,
    BodyStyle.COHERE_RERANK: _cohere_rerank_body,
    BodyStyle.PAIRS: _pairs_body,
    BodyStyle.OPENAI_EMBEDDINGS: _openai_embeddings_body,
    BodyStyle.PREDICT: _predict_body,
}


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------
def _content_type(headers: Mapping[str, str]) -> str:
    return (headers.get("content-type") or "").split(";")[0].strip().lower()


def parse_response(
    config: ClientConfig,
    call: Call,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> Any:
    """The typed result of a complete response, or the error it stands for.

    ``headers`` must have lower-case keys.
    """
    if not 200 <= status < 300:
        raise error_from_response(config, status, headers, body, model=call.model)
    ctype = _content_type(headers)
    if call.generic:
        if ctype == JSON or ctype.endswith("+json"):
            return _decode_json(call, body)
        return BinaryOutput(body, ctype or None)
    if call.spec.output is not OutputKind.JSON:
        if ctype == JSON:
            raise e.ResponseFormatError(
                f"expected {call.spec.output.value} bytes, got a JSON body: {body[:200]!r}",
                task=call.spec.name,
                model=call.model,
            )
        return BinaryOutput(body, ctype or None)
    data = _decode_json(call, body)
    ctx = NormalizeContext(call.spec.task, call.model, call.inputs, call.parameters, call.extra)
    return normalize(ctx, data)


def _decode_json(call: Call, body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise e.ResponseFormatError(
            f"the body is not JSON: {body[:200]!r}", task=call.spec.name, model=call.model
        ) from None


def decode_error_message(headers: Mapping[str, str], body: bytes) -> tuple[str, Any]:
    """The human message of an error response, and its decoded body, whatever its shape."""
    decoded: Any = None
    message = ""
    try:
        decoded = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict):
        err = decoded.get("error")
        if isinstance(err, str):
            message = err
        elif isinstance(err, list):
            message = "; ".join(str(x) for x in err)
        elif isinstance(err, dict):
            message = str(err.get("message") or err)
        elif isinstance(decoded.get("errors"), list):
            message = "; ".join(
                str(x.get("message", x)) if isinstance(x, dict) else str(x) for x in decoded["errors"]
            )
        elif "detail" in decoded:
            message = str(decoded["detail"])
        elif "message" in decoded:
            message = str(decoded["message"])
    if not message and headers.get("x-error-message"):
        message = headers["x-error-message"]
    if not message and body and decoded is None:
        message = hints.shorten(body[:600].decode("utf-8", "replace"), 500)
    return message, decoded


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def error_from_response(
    config: ClientConfig,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    model: str | None,
    now: float | None = None,
) -> e.APIStatusError:
    """The one mapping from an HTTP error answer to the error tree."""
    from .retry import parse_retry_after

    secret = config.token.get_secret_value() if config.token else None
    message, decoded = decode_error_message(headers, body)
    message = hints.explain(config, status, e.redact(message, secret) or f"HTTP {status} with no error message")
    common: dict[str, Any] = {
        "status_code": status,
        "model": model,
        "request_id": headers.get("x-request-id"),
        "body": decoded,
        "url": None,
    }
    gone = status == 410 or (
        status == 404 and ("no longer supported" in message.lower() or config.is_legacy_host)
    )
    if gone:
        return e.EndpointGoneError(f"{message}. {NEW_BASE_URL_HINT}", **common)
    if status in (400, 422):
        return e.BadRequestError(message, **common)
    if status == 401:
        return e.AuthenticationError(message, **common)
    if status == 403:
        return e.PermissionDeniedError(message, **common)
    if status == 404:
        return e.ModelNotFoundError(message, **common)
    if status == 413:
        return e.PayloadTooLargeError(message, **common)
    if status == 429:
        return e.RateLimitError(message, retry_after=parse_retry_after(headers, now=now), **common)
    if status == 503:
        estimated = _float(decoded.get("estimated_time")) if isinstance(decoded, dict) else None
        if estimated is not None or "loading" in message.lower():
            return e.ModelLoadingError(message, estimated_time=estimated, **common)
        return e.ServerError(message, **common)
    if status >= 500:
        return e.ServerError(message, **common)
    return e.APIStatusError(message, **common)


def stream_event_error(config: ClientConfig, call: Call, payload: Mapping[str, Any], status: int) -> e.ServerError:
    """An ``{"error": ...}`` event inside a 200 event stream."""
    secret = config.token.get_secret_value() if config.token else None
    message = e.redact(str(payload.get("error") or payload), secret)
    return e.ServerError(f"error event in the stream: {message}", status_code=status, model=call.model, body=dict(payload))



class StreamProcessor:
    """Bytes of an event stream in, user-facing outputs out (tokens or chat chunks).

    Both transports feed it raw chunks; when ``finished`` turns True (a final event, ``[DONE]``
    or a stop sequence) they stop reading and release the connection.
    """

    def __init__(self, config: ClientConfig, call: Call, status: int) -> None:
        from .streaming import ChatStreamState, SSEDecoder, TokenStreamState

        self._config = config
        self._call = call
        self._status = status
        self._decoder = SSEDecoder()
        stops = call.parameters.get("stop")
        if call.spec.input_kind is InputKind.MESSAGES:
            include_usage = bool((call.parameters.get("stream_options") or {}).get("include_usage"))
            self._state: Any = ChatStreamState(stops, include_usage=include_usage)
        else:
            prompt = call.inputs if isinstance(call.inputs, str) else ""
            self._state = TokenStreamState(stops, prompt, call.parameters.get("return_full_text"))

    @property
    def finished(self) -> bool:
        return self._state.finished

    def feed(self, chunk: bytes) -> list[Any]:
        return self._handle(self._decoder.feed(chunk))

    def end(self) -> list[Any]:
        return self._handle(self._decoder.flush()) + self._state.on_end()

    def _handle(self, events: list[Any]) -> list[Any]:
        from .streaming import DONE, decode_event

        out: list[Any] = []
        for event in events:
            if self._state.finished:
                break
            try:
                payload = decode_event(event)
            except orjson.JSONDecodeError:
                raise e.ResponseFormatError(
                    f"a stream event is not JSON: {event.data[:200]!r}", task=self._call.spec.name, model=self._call.model
                ) from None
            if payload is None:
                continue
            if payload == DONE:
                out.extend(self._state.on_end())
                continue
            if isinstance(payload, dict) and "error" in payload and "token" not in payload and "choices" not in payload:
                raise stream_event_error(self._config, self._call, payload, self._status)
            try:
                out.extend(self._state.on_payload(payload))
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                raise e.ResponseFormatError(
                    f"unexpected stream event {event.data[:200]!r}: {exc}", task=self._call.spec.name, model=self._call.model
                ) from None
        return out
