"""The error tree every hfbridge call can raise.

```
InferenceError
 ├─ APIConnectionError ── APITimeoutError
 ├─ APIStatusError (status_code, request_id, body, model)
 │   ├─ BadRequestError 400/422   ├─ AuthenticationError 401   ├─ PermissionDeniedError 403
 │   ├─ ModelNotFoundError 404    ├─ EndpointGoneError 410     ├─ PayloadTooLargeError 413
 │   ├─ RateLimitError 429 (retry_after)   ├─ ModelLoadingError 503 (estimated_time)
 │   └─ ServerError 5xx
 └─ ResponseFormatError (the body did not match the task's shape)

InvalidInputError (also a ValueError): bad input caught before any request is sent.
```

Why a tree: adapters and users catch at the level they care about (``RateLimitError`` to back
off, ``APIStatusError`` to log a status, ``InferenceError`` for "the remote call failed").
Every error keeps its constructor arguments in ``args`` so it pickles (LangChain moves errors
across processes and caches), and none of them ever holds the token: messages are built from the
server's text, the status and the model id, and :func:`redact` scrubs the token out of anything
a server might have echoed back (:func:`redact_error` runs on every error a client raises).
"""

from __future__ import annotations

import errno
import ipaddress
from contextlib import contextmanager
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

__all__ = [
    "InferenceError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "ModelNotFoundError",
    "EndpointGoneError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ModelLoadingError",
    "ServerError",
    "ResponseFormatError",
    "ResponseTooLargeError",
    "InvalidInputError",
    "redact",
    "redact_value",
    "redact_error",
    "token_redacted",
    "transport_error",
]

REDACTED = "<redacted>"


def redact(text: str, secret: str | None) -> str:
    """Remove ``secret`` from ``text``; used on every server-provided string we put in a message."""
    if secret and text:
        return text.replace(secret, REDACTED)
    return text


def redact_value(value: Any, secret: str) -> Any:
    """``value`` (text, bytes, or dicts, lists and tuples of them) with ``secret`` replaced."""
    if isinstance(value, str):
        return value.replace(secret, REDACTED) if secret in value else value
    if isinstance(value, (bytes, bytearray)):
        raw = secret.encode()
        return bytes(value).replace(raw, REDACTED.encode()) if raw in value else value
    if isinstance(value, dict):
        return {redact_value(k, secret): redact_value(v, secret) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v, secret) for v in value) if type(value) in (list, tuple) else value
    return value


def redact_error(error: BaseException, secret: str | None) -> BaseException:
    """``error`` with ``secret`` scrubbed from its message, args and every attribute (a server
    that echoes the request may put the Authorization header or the body in its error text),
    so its str, repr and pickle are clean. A chained cause that shows the secret is dropped."""
    if not secret:
        return error
    error.args = redact_value(error.args, secret)
    for name, value in list(vars(error).items()):
        if not name.startswith("__"):
            setattr(error, name, redact_value(value, secret))
    for link in ("__cause__", "__context__"):
        cause = getattr(error, link)
        if cause is not None and secret in f"{cause!s}{cause!r}":
            setattr(error, link, None)
            error.__suppress_context__ = True
    return error


@contextmanager
def token_redacted(token: Any) -> Iterator[None]:
    """Every error leaving the block goes out with ``token`` (a secret, or None) scrubbed from
    it: both clients wrap every call, stream and download in this."""
    try:
        yield
    except (InferenceError, InvalidInputError) as exc:
        redact_error(exc, token.get_secret_value() if token is not None else None)
        raise


class InferenceError(Exception):
    """Base class of every failure of a remote inference call."""


class APIConnectionError(InferenceError):
    """The request never got an HTTP answer (refused, reset, DNS, TLS, dropped mid-body)."""

    def __init__(self, message: str = "Connection error.", *, url: str | None = None) -> None:
        super().__init__(message, url)
        self.message = message
        self.url = url

    def __str__(self) -> str:
        return self.message if not self.url else f"{self.message} (POST {self.url})"

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), (self.message,), {"url": self.url}))


class APITimeoutError(APIConnectionError):
    """An attempt ran past its timeout, or the whole call ran past its deadline."""

    def __init__(self, message: str = "Request timed out.", *, url: str | None = None) -> None:
        super().__init__(message, url=url)


class APIStatusError(InferenceError):
    """The server answered with a non-success status."""

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        model: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, status_code, model)
        self.message = message
        self.status_code = status_code
        self.model = model
        self.request_id = request_id
        self.body = body
        self.url = url

    def __str__(self) -> str:
        where = f" for model '{self.model}'" if self.model else ""
        rid = f" [request id {self.request_id}]" if self.request_id else ""
        return f"HTTP {self.status_code}{where}: {self.message}{rid}"

    def _kwargs(self) -> dict[str, Any]:
        return {
            "status_code": self.status_code,
            "model": self.model,
            "request_id": self.request_id,
            "body": self.body,
            "url": self.url,
        }

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), (self.message,), self._kwargs()))


class BadRequestError(APIStatusError):
    """400/422: the server rejected the request's content."""


class AuthenticationError(APIStatusError):
    """401: no token, or the server does not accept it."""


class PermissionDeniedError(APIStatusError):
    """403: the token is valid but may not use this model."""


class ModelNotFoundError(APIStatusError):
    """404: the model (or route) does not exist on this server."""


class EndpointGoneError(APIStatusError):
    """410 (or a 404 saying so): this host no longer serves the Inference API."""


class PayloadTooLargeError(APIStatusError):
    """413: the input is larger than the server accepts."""


class RateLimitError(APIStatusError):
    """429: too many requests; ``retry_after`` is the server's wait in seconds, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def _kwargs(self) -> dict[str, Any]:
        return {**super()._kwargs(), "retry_after": self.retry_after}


class ModelLoadingError(APIStatusError):
    """503 while the model loads; ``estimated_time`` is the server's estimate in seconds."""

    def __init__(self, message: str, *, estimated_time: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.estimated_time = estimated_time

    def _kwargs(self) -> dict[str, Any]:
        return {**super()._kwargs(), "estimated_time": self.estimated_time}


class ServerError(APIStatusError):
    """5xx other than a loading 503."""


class ResponseFormatError(InferenceError):
    """A 2xx body that matches none of the shapes known for the task."""

    def __init__(self, message: str, *, task: str | None = None, model: str | None = None) -> None:
        super().__init__(message, task, model)
        self.message = message
        self.task = task
        self.model = model

    def __str__(self) -> str:
        return f"{self.message} (task {self.task!r}, model {self.model!r})"

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), (self.message,), {"task": self.task, "model": self.model}))


class ResponseTooLargeError(InferenceError):
    """The answer grew past ``max_response_bytes`` (counted both as sent and as decompressed):
    reading stopped there instead of filling memory."""

    def __init__(self, message: str, *, limit: int, url: str | None = None) -> None:
        super().__init__(message, limit, url)
        self.message = message
        self.limit = limit
        self.url = url

    def __str__(self) -> str:
        return self.message if not self.url else f"{self.message} ({self.url})"

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), (self.message,), {"limit": self.limit, "url": self.url}))


class InvalidInputError(ValueError):
    """Input rejected before any request was sent; ``field`` names the offending argument."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field = field
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


def _rebuild(cls: type, args: tuple, kwargs: dict[str, Any]) -> Exception:
    return cls(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# Transport failures, translated once for both transports
# --------------------------------------------------------------------------------------------
_MESSAGE_LIMIT = 300


def _shorten(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """``text`` cut at a word boundary (never mid-word), with an ellipsis when cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,;:(") + " ..."


def _chain(exc: BaseException) -> Iterable[BaseException]:
    """``exc`` and everything it wraps: causes, contexts, and the exceptions transports keep in
    attributes (urllib3's ``reason``, aiohttp's ``os_error``) or in ``args``."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), getattr(current, "os_error", None)]
        linked += [arg for arg in current.args if isinstance(arg, BaseException)]
        todo += [x for x in linked if isinstance(x, BaseException)]


def _is_local(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _reason(exc: BaseException) -> str:
    """The most specific description in the chain: the innermost OS error if there is one."""
    for link in reversed(list(_chain(exc))):
        if isinstance(link, OSError) and (link.strerror or link.args):
            return f"{type(link).__name__}: {link.strerror or link}"
    return f"{type(exc).__name__}: {exc}"


def transport_error(exc: BaseException, url: str, *, timed_out: bool) -> APIConnectionError:
    """The error for a request that got no complete answer. A refused connection to a local
    URL says that no server is running there and how to start one."""
    if timed_out:
        return APITimeoutError(f"Request timed out ({_shorten(_reason(exc))})", url=url)
    refused = any(isinstance(x, ConnectionRefusedError) or getattr(x, "errno", None) == errno.ECONNREFUSED for x in _chain(exc))
    parts = urlsplit(url)
    if refused and _is_local(parts.hostname or ""):
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 80)
        return APIConnectionError(
            f"Connection refused by {parts.hostname}:{port}: no server is running there. "
            f"Start the local server with `hfbridge serve --port {port}` (or check base_url)",
            url=url,
        )
    return APIConnectionError(f"Connection error ({_shorten(_reason(exc))})", url=url)
