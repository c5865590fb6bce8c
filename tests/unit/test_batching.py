"""The batcher's rules as tables (pure), and its thread driven with a fake backend: bounds,
splitting, order, isolation of failures."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hfbridge.server.backends import Backend, BackendInputError, Plan
from hfbridge.server.batching import BatchSettings, Batcher, padded_tokens, take, wait_time


@pytest.mark.parametrize(("queue", "rows", "tokens", "expected"), [
    ([], 8, 100, []),
    ([[10], [10], [10]], 8, 100, [1, 1, 1]),  # all fit
    ([[10], [10], [10]], 2, 100, [1, 1]),  # the row bound
    ([[40, 30, 20], [10]], 8, 100, [2]),  # 3 rows x 40 > 100: the first request is split
    ([[10], [40, 5]], 8, 100, [1, 1]),  # padded: 2 rows x 40 fit, 3 x 40 do not (the 5 waits)
    ([[500], [10]], 8, 100, [1]),  # a row over the budget runs alone
    ([[10], [500]], 8, 100, [1]),  # ... and never joins others
    ([[30, 30, 30, 30]], 8, 100, [3]),
])
def test_take(queue: list[list[int]], rows: int, tokens: int, expected: list[int]) -> None:
    counts = take(queue, rows, tokens)
    assert counts == expected
    taken = [length for lengths, n in zip(queue, counts) for length in lengths[:n]]
    assert len(taken) <= rows and (padded_tokens(taken) <= tokens or len(taken) == 1)


SETTINGS = BatchSettings(max_batch_tokens=100, max_batch_size=4, max_batch_wait_ms=10)


@pytest.mark.parametrize(("queue", "waited", "last", "expected"), [
    ([[5]], 0.0, 1, 0.0),  # a lone client never waits
    ([[5]], 0.0, 8, 0.010),  # after a shared batch, company is awaited...
    ([[5]], 0.004, 8, 0.006),  # ... for what is left of the bound
    ([[5]], 0.050, 8, 0.0),  # ... and no longer
    ([[5]] * 8, 0.0, 8, 0.0),  # the concurrency seen last is back
    ([[5]] * 4, 0.0, 8, 0.0),  # a full batch (4 rows) starts at once
    ([[60], [60]], 0.0, 8, 0.0),  # so does one full by tokens
    ([], 0.0, 8, 0.0),
])
def test_wait_time(queue: list[list[int]], waited: float, last: int, expected: float) -> None:
    assert wait_time(queue, waited, last, SETTINGS) == pytest.approx(expected)


@pytest.mark.parametrize("kwargs", [{"max_batch_tokens": 0}, {"max_batch_size": -1}, {"max_batch_wait_ms": -1}, {"max_batch_size": True}])
def test_settings_refuse_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BatchSettings(**kwargs)


class Doubler(Backend):
    """Rows are numbers; the forward pass doubles them and records each pass. A row of -1
    breaks the pass; a text "bad" is bad input."""

    def __init__(self) -> None:
        self.passes: list[list[int]] = []

    def predict(self, task: Any, inputs: Any, parameters: dict[str, Any]) -> Any:
        raise NotImplementedError

    def plan(self, values: list[int]) -> Plan:  # type: ignore[override]
        if "bad" in values:
            raise BackendInputError("inputs", "bad input")
        return Plan(list(values), [abs(v) for v in values], lambda outputs: outputs)

    def forward(self, rows: list[Any]) -> list[Any]:
        self.passes.append(list(rows))
        if -1 in rows:
            raise RuntimeError("broken row")
        return [2 * r for r in rows]


def _run(backend: Doubler, settings: BatchSettings, requests: list[list[Any]]) -> list[Any]:
    lock = threading.Lock()

    async def main() -> list[Any]:
        batcher = Batcher("fake", backend, lock, settings)
        try:
            with lock:  # the model is busy: everything queues first
                submitted = [batcher.submit(lambda values=values: backend.plan(values)) for values in requests]
            return await asyncio.gather(*(r.future for r in submitted), return_exceptions=True)
        finally:
            batcher.close()

    return asyncio.run(main())


def test_the_batcher_splits_keeps_order_and_isolates_failures() -> None:
    backend = Doubler()
    settings = BatchSettings(max_batch_tokens=30, max_batch_size=3, max_batch_wait_ms=0)
    answers = _run(backend, settings, [[1, 2], ["bad"], [3, 9, 4, 5], [-1], [6]])
    assert answers[0] == [2, 4] and answers[2] == [6, 18, 8, 10] and answers[4] == [12]  # in order
    assert isinstance(answers[1], BackendInputError)  # failed at planning, before any pass
    assert isinstance(answers[3], RuntimeError)  # broke its pass, and failed alone
    merged = [p for p in backend.passes if len(p) > 1]
    assert merged and all(len(p) <= 3 and padded_tokens([abs(v) for v in p]) <= 30 for p in merged)
    assert all("bad" not in p for p in backend.passes)
