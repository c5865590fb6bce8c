"""The retry policy, written once as a generator and driven by both transports.

The generator yields :class:`Send` ("make an attempt with this timeout") or :class:`Sleep`
("wait this long"), and is sent back the outcome of each attempt: ``None`` for success or the
:class:`~hfbridge.errors.InferenceError` it produced. It returns on success and raises the error
that ends the call. It never sleeps or sends itself, so the schedule is a plain table in tests
(the shape of httpx's ``auth_flow``).

What is retried:

* 503 while a model loads: wait ``estimated_time`` (capped), then retry with ``wait_for_model``.
* 429: wait ``Retry-After`` (seconds or an HTTP date); a wait longer than the cap is not worth
  taking and the error is raised at once.
* other 5xx, connection errors and timeouts: exponential backoff with jitter.

It never loops forever: ``max_retries`` bounds the attempts and ``deadline`` the total time
(each attempt's timeout is cut to what is left, and a retry is not worth its wait when too
little would be left after it: the error at hand is raised instead of a pointless timeout).
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Callable, Generator, Mapping

from . import errors as e
from .config import RetryPolicy

__all__ = ["Send", "Sleep", "retry_flow", "parse_retry_after", "backoff_delay", "is_retryable"]


@dataclass(frozen=True)
class Send:
    attempt: int  # 0 for the first
    timeout: float
    wait_for_model: bool = False


@dataclass(frozen=True)
class Sleep:
    seconds: float
    reason: str = ""


Action = "Send | Sleep"

#: a retry needs at least this share of the attempt timeout left after its wait (at most
#: MIN_ATTEMPT_SECONDS), else the error at hand is raised rather than a hopeless attempt made
MIN_ATTEMPT_SHARE = 0.25
MIN_ATTEMPT_SECONDS = 1.0


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date).

    ``headers`` has lower-case keys. Unparseable values give None; dates in the past give 0.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    current = time.time() if now is None else now
    return max(parsed.timestamp() - current, 0.0)


def backoff_delay(policy: RetryPolicy, retry_index: int, rand: float) -> float:
    """``initial * 2**n``, capped, times a jitter factor in ``[1 - jitter, 1]`` (``rand`` in [0, 1))."""
    base = min(policy.backoff_initial * (2**retry_index), policy.backoff_max)
    return base * (1.0 - policy.jitter * rand)


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, (e.ModelLoadingError, e.RateLimitError, e.ServerError, e.APIConnectionError))


def retry_flow(
    policy: RetryPolicy,
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
    wait_for_model: bool = False,
) -> Generator["Send | Sleep", "e.InferenceError | None", None]:
    start = clock()

    def remaining() -> float | None:
        if policy.deadline is None:
            return None
        return policy.deadline - (clock() - start)

    attempt = 0
    while True:
        left = remaining()
        if left is not None and left <= 0:
            raise e.APITimeoutError(f"the call's deadline of {policy.deadline:g}s passed before attempt {attempt + 1}")
        attempt_timeout = timeout if left is None else min(timeout, left)
        error = yield Send(attempt, attempt_timeout, wait_for_model)
        if error is None:
            return
        if not is_retryable(error) or attempt >= policy.max_retries:
            raise error
        if isinstance(error, e.ModelLoadingError):
            wait = error.estimated_time if error.estimated_time is not None else backoff_delay(policy, attempt, rand())
            wait = min(max(wait, 0.0), policy.max_loading_wait)
            wait_for_model = True
            reason = f"model loading (estimated {error.estimated_time})"
        elif isinstance(error, e.RateLimitError) and error.retry_after is not None:
            if error.retry_after > policy.max_retry_after:
                raise error
            wait, reason = error.retry_after, "rate limited (Retry-After)"
        else:
            wait, reason = backoff_delay(policy, attempt, rand()), type(error).__name__
        left = remaining()
        if left is not None and wait + min(MIN_ATTEMPT_SHARE * timeout, MIN_ATTEMPT_SECONDS) >= left:
            raise error
        attempt += 1
        if wait > 0:
            yield Sleep(wait, reason)
