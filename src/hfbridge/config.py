"""Client settings resolved once: base URL, URL layout, token, timeouts and the retry defaults.

All defaults live here so that "what does hfbridge do if I say nothing" has one answer. A
:class:`ClientConfig` is immutable; ``with_options`` on a client makes a changed copy that shares
the connection pool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Mapping
from urllib.parse import urlsplit

from .errors import InvalidInputError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_SSE_LINE_BYTES",
    "LEGACY_HOSTED_HOST",
    "Layout",
    "Secret",
    "RetryPolicy",
    "ClientConfig",
    "resolve_token",
    "infer_layout",
    "ROUTER_OPENAI_BASE",
    "origin_of",
]

DEFAULT_BASE_URL = "https://router.huggingface.co/hf-inference"
#: the old host: it answers 404/410 "no longer supported" today; recordings from it still replay
LEGACY_HOSTED_HOST = "api-inference.huggingface.co"
ENV_BASE_URL = "HF_INFERENCE_ENDPOINT"
ENV_TOKENS = ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN")

DEFAULT_TIMEOUT = 120.0  # seconds per attempt: CPU inference of a long generation is slow
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_MAX_CONCURRENCY = 16
#: the most bytes one answer may have, compressed or decompressed: far above any real answer
#: (a 1024x1024 PNG is a few MiB, a batch of 32 token-level embeddings ~25 MiB) and far below
#: what a decompression bomb inflates to
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: the longest line one server-sent event may have (a final TGI event carries the whole text)
DEFAULT_MAX_SSE_LINE_BYTES = 1024 * 1024


class Layout(str, Enum):
    """Where each task's request goes (see README, "URL layouts")."""

    SPEC = "spec"  # /models/{id}/{task}, /models/{id}, /pipeline/{task}
    HOSTED = "hosted"  # /models/{id}; /models/{id}/pipeline/{task} for embeddings
    ENDPOINT = "endpoint"  # POST base_url itself (TGI, TEI, Inference Endpoints)
    #: any OpenAI-compatible base (the router's /v1, vLLM, TGI's /v1): {base}/chat/completions
    OPENAI = "openai"


class Secret:
    """A token that never shows itself in a repr, a str or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):  # pickling keeps the value; only its display is hidden
        return (Secret, (self._value,))


@dataclass(frozen=True)
class RetryPolicy:
    """How failed attempts are retried; see :mod:`hfbridge.retry` for the schedule itself."""

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    #: each backoff is multiplied by a random factor in [1 - jitter, 1]
    jitter: float = 0.25
    #: a single wait for a loading model never exceeds this, whatever ``estimated_time`` says
    max_loading_wait: float = 30.0
    #: a single wait on ``Retry-After`` never exceeds this
    max_retry_after: float = 60.0
    #: the whole call (every attempt and wait) never exceeds this many seconds; None: no deadline
    deadline: float | None = 600.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise InvalidInputError("max_retries", f"must be >= 0, got {self.max_retries}")
        if self.deadline is not None and self.deadline <= 0:
            raise InvalidInputError("deadline", f"must be > 0 seconds, got {self.deadline}")


def resolve_token(token: str | bool | None) -> Secret | None:
    """``token`` argument, else ``HF_TOKEN``, else ``HUGGINGFACEHUB_API_TOKEN``; False: none."""
    if token is False:
        return None
    if token is True or token is None:
        for name in ENV_TOKENS:
            value = os.environ.get(name)
            if value:
                return Secret(value.strip())
        return None
    if isinstance(token, Secret):
        return token
    if hasattr(token, "get_secret_value"):  # pydantic SecretStr from an adapter
        token = token.get_secret_value()
    if not isinstance(token, str):
        raise InvalidInputError("token", f"must be a string, True/None (from the environment) or False, got {type(token).__name__}")
    return Secret(token.strip()) if token.strip() else None


#: the Inference Providers router's OpenAI-compatible base
ROUTER_OPENAI_BASE = "https://router.huggingface.co/v1"


def infer_layout(base_url: str) -> Layout:
    """``openai`` for the router's ``/v1``, ``hosted`` for other huggingface.co hosts, else ``spec``.

    Only the router's ``/v1`` is recognised: on any other host a ``/v1`` path may belong to a
    server of another layout, so it must be chosen explicitly (a 404 there says so)."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host == "router.huggingface.co" and parts.path.rstrip("/") == "/v1":
        return Layout.OPENAI
    if host == "huggingface.co" or host.endswith(".huggingface.co"):
        return Layout.HOSTED
    return Layout.SPEC


def origin_of(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port)


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError("base_url", f"must be an http(s) URL with a host, got {base_url!r}")
    if parts.query or parts.fragment:
        raise InvalidInputError("base_url", "must not carry a query string or fragment")
    return base_url.rstrip("/")


@dataclass(frozen=True)
class ClientConfig:
    base_url: str = DEFAULT_BASE_URL
    token: Secret | None = None
    layout: Layout = Layout.HOSTED
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    headers: Mapping[str, str] = field(default_factory=dict)
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    @classmethod
    def resolve(
        cls,
        *,
        base_url: str | None = None,
        token: str | bool | None = None,
        layout: Layout | str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        max_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
        max_response_bytes: int | None = None,
    ) -> "ClientConfig":
        url = _check_base_url(base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL)
        if layout is None:
            resolved_layout = infer_layout(url)
        else:
            try:
                resolved_layout = Layout(layout)
            except ValueError:
                raise InvalidInputError(
                    "layout", f"must be one of {[m.value for m in Layout]}, got {layout!r}"
                ) from None
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = replace(policy, max_retries=max_retries)
        if deadline is not None:
            policy = replace(policy, deadline=deadline)
        if timeout is not None and timeout <= 0:
            raise InvalidInputError("timeout", f"must be > 0 seconds, got {timeout}")
        if max_response_bytes is not None and (isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int) or max_response_bytes < 1):
            raise InvalidInputError("max_response_bytes", f"must be a whole number of bytes >= 1, got {max_response_bytes!r}")
        if max_concurrency is not None and max_concurrency < 1:
            raise InvalidInputError("max_concurrency", f"must be >= 1, got {max_concurrency}")
        config = cls(
            base_url=url,
            token=resolve_token(token),
            layout=resolved_layout,
            timeout=timeout or DEFAULT_TIMEOUT,
            retry=policy,
            headers=dict(headers or {}),
            max_concurrency=max_concurrency or DEFAULT_MAX_CONCURRENCY,
            max_response_bytes=max_response_bytes or DEFAULT_MAX_RESPONSE_BYTES,
        )
        from .hints import warn_missing_token  # (hints reads this module's defaults)

        warn_missing_token(config, token)
        return config

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> "ClientConfig":
        retry = self.retry
        if max_retries is not None:
            retry = replace(retry, max_retries=max_retries)
        if deadline is not None:
            retry = replace(retry, deadline=deadline)
        if timeout is not None and timeout <= 0:
            raise InvalidInputError("timeout", f"must be > 0 seconds, got {timeout}")
        return replace(
            self,
            timeout=timeout or self.timeout,
            retry=retry,
            headers={**self.headers, **(headers or {})},
        )

    @property
    def is_legacy_host(self) -> bool:
        return (urlsplit(self.base_url).hostname or "").lower() == LEGACY_HOSTED_HOST

    def __repr__(self) -> str:
        token = "set" if self.token else "none"
        return (
            f"ClientConfig(base_url={self.base_url!r}, layout={self.layout.value!r}, token={token}, "
            f"timeout={self.timeout}, max_retries={self.retry.max_retries})"
        )
