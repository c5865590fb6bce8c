"""Who may call, and how often: bearer tokens (401/403) and a per-token rate limit (429)."""

from __future__ import annotations

import hmac
import math
import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Mapping, Sequence

from .parsing import HTTPProblem

__all__ = ["TokenGuard", "RateLimiter", "parse_rate", "TOKENS_ENV", "read_token_file", "tokens_from_env"]

#: accepted tokens from the environment (comma or whitespace separated), out of the process list
TOKENS_ENV = "HFBRIDGE_SERVE_TOKENS"


class TokenGuard:
    """Accepts ``Authorization: Bearer <token>`` for one of the configured tokens (none: open)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._tokens = [t for t in tokens if t]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def check(self, headers: Mapping[str, str]) -> str | None:
        """The caller's token (None when the server is open); raises 401/403."""
        if not self._tokens:
            return None
        value = headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPProblem(401, "Authorization header is required: send 'Authorization: Bearer <token>'")
        token = token.strip()
        if not any(hmac.compare_digest(token, known) for known in self._tokens):
            raise HTTPProblem(403, "Invalid token: it is not accepted by this server")
        return token


def read_token_file(path: str | Path) -> list[str]:
    """One token per line; blank lines and ``#`` comments are skipped. Raises OSError (the
    file cannot be read) or ValueError (it holds no token)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    tokens = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not tokens:
        raise ValueError(f"{path} holds no token (one per line; # starts a comment)")
    return tokens


def tokens_from_env(environ: Mapping[str, str]) -> list[str]:
    """The tokens in ``$HFBRIDGE_SERVE_TOKENS``. Unlike ``--token`` arguments, which every
    local user can read in the process list, a process's environment is readable only by its
    own user (and a token file only as its permissions allow)."""
    value = environ.get(TOKENS_ENV, "").strip()
    return re.split(r"[\s,]+", value) if value else []


def parse_rate(text: str) -> int:
    """``"N/min"`` (also ``N/m``, ``N/minute``) to N requests per minute."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(min|m|minute)\s*", text or "")
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"rate limit must look like '60/min', got {text!r}")
    return int(match.group(1))


class RateLimiter:
    """A sliding one-minute window per key (the token, or the client address on an open server)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - 60.0:
                hits.popleft()
            if len(hits) >= self.per_minute:
                wait = max(1, math.ceil(hits[0] + 60.0 - now))
                raise HTTPProblem(
                    429,
                    f"Rate limit reached: {self.per_minute} requests per minute. Retry in {wait} s.",
                    headers={"Retry-After": str(wait)},
                )
            hits.append(now)
