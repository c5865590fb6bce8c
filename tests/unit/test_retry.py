"""The retry schedule and Retry-After parsing, as tables (pure: no sleeping, no sockets)."""

from __future__ import annotations

import email.utils
from typing import Any

import pytest

from hfbridge import errors as e
from hfbridge.config import RetryPolicy
from hfbridge.retry import Send, Sleep, backoff_delay, parse_retry_after, retry_flow

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": " 20 "}, 20.0),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after": email.utils.formatdate(NOW + 7, usegmt=True)}, 7.0),
        ({"retry-after": email.utils.formatdate(NOW - 60, usegmt=True)}, 0.0),
        ({"retry-after": "Fri, 29 Sep 2023 16:26:57 GMT"}, 0.0),  # long past
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    result = parse_retry_after(headers, now=NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1.0 if "GMT" in headers.get("retry-after", "") else 1e-9)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def drive(policy: RetryPolicy, outcomes: list[Any], *, timeout: float = 10.0, attempt_cost: float = 0.0) -> tuple[list[Any], BaseException | None]:
    """Run the flow against scripted outcomes; returns the actions taken and the final error."""
    clock = FakeClock()
    flow = retry_flow(policy, timeout=timeout, clock=clock, rand=lambda: 0.0)
    actions: list[Any] = []
    outcomes = list(outcomes)
    try:
        action = next(flow)
        while True:
            actions.append(action)
            if isinstance(action, Sleep):
                clock.t += action.seconds
                action = next(flow)
            else:
                clock.t += attempt_cost
                action = flow.send(outcomes.pop(0))
    except StopIteration:
        return actions, None
    except e.InferenceError as exc:
        return actions, exc


def loading(estimated: float | None = 2.0) -> e.ModelLoadingError:
    return e.ModelLoadingError("Model X is currently loading", estimated_time=estimated, status_code=503)


def limited(after: float | None) -> e.RateLimitError:
    return e.RateLimitError("slow down", retry_after=after, status_code=429)


def server_error() -> e.ServerError:
    return e.ServerError("boom", status_code=500)


def test_success_first_time_sends_once() -> None:
    actions, error = drive(RetryPolicy(), [None])
    assert actions == [Send(0, 10.0, False)] and error is None


def test_loading_waits_estimated_time_then_asks_to_wait_for_model() -> None:
    actions, error = drive(RetryPolicy(), [loading(2.0), None])
    assert actions == [Send(0, 10.0, False), Sleep(2.0, actions[1].reason), Send(1, 10.0, True)]
    assert error is None


def test_loading_wait_is_capped() -> None:
    actions, _ = drive(RetryPolicy(max_loading_wait=5.0), [loading(300.0), None])
    assert actions[1].seconds == 5.0


def test_rate_limit_honours_retry_after() -> None:
    actions, _ = drive(RetryPolicy(), [limited(3.0), None])
    assert [type(a) for a in actions] == [Send, Sleep, Send] and actions[1].seconds == 3.0


def test_rate_limit_longer_than_the_cap_is_raised_at_once() -> None:
    actions, error = drive(RetryPolicy(max_retry_after=10.0), [limited(120.0)])
    assert isinstance(error, e.RateLimitError) and len(actions) == 1


def test_rate_limit_without_retry_after_backs_off() -> None:
    actions, _ = drive(RetryPolicy(backoff_initial=0.5), [limited(None), None])
    assert actions[1].seconds == 0.5


def test_server_errors_back_off_exponentially_then_give_up() -> None:
    policy = RetryPolicy(max_retries=3, backoff_initial=0.5, backoff_max=8.0)
    actions, error = drive(policy, [server_error()] * 4)
    sleeps = [a.seconds for a in actions if isinstance(a, Sleep)]
    assert sleeps == [0.5, 1.0, 2.0]
    assert [a.attempt for a in actions if isinstance(a, Send)] == [0, 1, 2, 3]
    assert isinstance(error, e.ServerError)


def test_connection_errors_and_timeouts_are_retried() -> None:
    actions, error = drive(RetryPolicy(), [e.APIConnectionError("reset"), e.APITimeoutError("slow"), None])
    assert error is None and sum(isinstance(a, Send) for a in actions) == 3


@pytest.mark.parametrize("status_error", [e.BadRequestError, e.AuthenticationError, e.ModelNotFoundError, e.PermissionDeniedError])
def test_client_errors_are_not_retried(status_error: type) -> None:
    actions, error = drive(RetryPolicy(), [status_error("no", status_code=400)])
    assert isinstance(error, status_error) and len(actions) == 1


def test_zero_retries_means_one_attempt() -> None:
    actions, error = drive(RetryPolicy(max_retries=0), [server_error()])
    assert len(actions) == 1 and isinstance(error, e.ServerError)


def test_deadline_cuts_the_attempt_timeout_and_stops_retrying() -> None:
    policy = RetryPolicy(max_retries=50, backoff_initial=1.0, backoff_max=1.0, deadline=5.0)
    actions, error = drive(policy, [server_error()] * 50, timeout=10.0, attempt_cost=1.0)
    sends = [a for a in actions if isinstance(a, Send)]
    assert sends[0].timeout == 5.0  # cut to the deadline
    assert all(later.timeout < earlier.timeout for earlier, later in zip(sends, sends[1:]))
    assert isinstance(error, e.InferenceError)
    assert len(sends) < 5  # never loops past the deadline


def test_no_retry_when_too_little_time_would_be_left_after_the_wait() -> None:
    # 1 s attempts, 1 s backoffs, a 2.1 s deadline: after the first attempt and a wait only
    # 0.1 s would be left, less than a quarter of the timeout: the server's error is raised now
    policy = RetryPolicy(max_retries=10, backoff_initial=1.0, backoff_max=1.0, jitter=0.0, deadline=2.1)
    actions, error = drive(policy, [server_error()] * 10, timeout=1.0, attempt_cost=1.0)
    assert [type(a).__name__ for a in actions] == ["Send"]
    assert isinstance(error, e.ServerError)


def test_backoff_jitter_stays_within_its_band() -> None:
    policy = RetryPolicy(backoff_initial=1.0, backoff_max=30.0, jitter=0.25)
    for n in range(6):
        top = min(2**n, 30.0)
        assert backoff_delay(policy, n, 0.0) == top
        assert backoff_delay(policy, n, 0.999) == pytest.approx(top * (1 - 0.25 * 0.999))


def test_the_flow_never_loops_forever_on_endless_loading() -> None:
    actions, error = drive(RetryPolicy(max_retries=4), [loading(1.0)] * 100)
    assert isinstance(error, e.ModelLoadingError)
    assert sum(isinstance(a, Send) for a in actions) == 5
