"""Dynamic batching for the encoder tasks: concurrent requests to one model share forward passes.

Why: on a CPU an encoder's forward pass over 32 short texts costs a few times one text's, not
32 times (all-MiniLM-L6-v2, one thread: ~60 texts/s at batch 1, ~165 at batch 32). Run one
request at a time, 32 clients sending one text each get the batch-1 rate, and each waits for
the 31 before it. So, as TEI does (``core/src/queue.rs``), requests queue per model and one
thread per model merges them into forward passes. Measured (``benchmarks/results/
encoder_batching.md``): 32 clients x 1 text went from 29-31% of the raw model's batch-32 rate
(p99 1.1-1.3 s) to 96-102% (p99 0.4-0.5 s).

* **Rows.** A request becomes a :class:`~.backends.Plan` on the model's batch thread: rows (a
  text, a window of a long text, a premise-hypothesis pair), each row's length in tokens, and a
  ``finish`` that makes the request's answer from its rows' outputs. Planning runs under the
  model's lock, as every other use of the model's tokenizer does (a fast tokenizer is not safe
  to call from two threads at once).
* **Bounds** (:class:`BatchSettings`, ``hfbridge serve --encode-max-batch-tokens/--encode-max-batch-size/
  --encode-max-batch-wait-ms``). :func:`take` takes rows first come first served while the batch stays
  within ``max_batch_size`` rows and ``max_batch_tokens`` *padded* tokens (rows x longest row,
  what a padded forward pass computes and holds in memory). A request larger than that is split
  over consecutive batches (its rows longest first, so short rows are not padded to a long one);
  a single row over the token budget runs alone.
* **Waiting** (:func:`wait_time`). A batch starts at once when the queue fills one, or when it
  holds as many requests as the previous batch served (the concurrency seen last is back);
  otherwise the oldest request waits at most ``max_batch_wait_ms`` for company. A lone client's
  previous batch held one request, so it never waits; 32 clients whose answers have just gone
  out are given a few milliseconds to send their next requests, instead of the first of them
  running alone while the other 31 queue behind it.
* **Different parameters in one batch.** Requests are not grouped by parameters: an encoder's
  output for a row depends only on the row's tokens, so every per-request parameter is applied
  per request, before the forward pass (``truncate`` decides the tokens; a bad value fails at
  planning) or after it in ``finish`` (pooling, normalize, dimensions, score function, top_k,
  targets, aggregation...). Grouping would only split batches, and a rare parameter would wait
  for a partner that may never come.
* **Isolation.** A request whose plan fails (bad input) fails alone, before it joins a batch. A
  forward pass that raises is rerun request by request, so only the request that breaks it
  fails. A ``finish`` that raises fails its own request.
* **Cancellation.** A request whose client disconnects (or whose server stops) leaves the
  queue; rows of it already in a running forward pass are computed and dropped.

The scheduling rules (:func:`take`, :func:`wait_time`) are pure functions of the queue's shape;
:class:`Batcher` is the thread around them and :class:`Batchers` the app's table of them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Sequence

from .backends import Backend, Plan
from .cancellation import Cancelled, Jobs
from .options import ServeOptions, knob

__all__ = ["BatchSettings", "BatchStats", "Batcher", "Batchers", "take", "padded_tokens", "wait_time"]

logger = logging.getLogger("hfbridge.server")

#: batches each batcher remembers for :meth:`Batcher.stats` (``recent``)
_RECENT = 256



@dataclass(frozen=True)
class BatchSettings(ServeOptions):
    """How the encoder tasks' requests are merged into forward passes; every field is also an
    ``hfbridge serve`` option (``max_batch_tokens`` is ``--encode-max-batch-tokens``)."""

    PREFIX = "encode-"  # apart from the generation batch's options of the same names
    max_batch_tokens: int = knob(16384, "most padded tokens (rows x longest row) in one encoder forward pass; "
                                         "a longer single input runs alone")
    max_batch_size: int = knob(32, "most rows (texts, windows, text-label pairs) in one encoder forward pass")
    max_batch_wait_ms: float = knob(10.0, "most milliseconds a request waits for others to share its forward pass "
                                           "(only while the previous pass was shared)")

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            low_ok = value >= 0 if spec.name == "max_batch_wait_ms" else value > 0
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low_ok:
                raise ValueError(f"{spec.name} must be a number {'>= 0' if spec.name == 'max_batch_wait_ms' else '> 0'}, got {value!r}")



# --------------------------------------------------------------------------------------------
# The rules (pure)
# --------------------------------------------------------------------------------------------
def take(queue: Sequence[Sequence[int]], max_rows: int, max_tokens: int) -> list[int]:
    """How many rows the next batch takes from each queued request, first come first served.

    ``queue`` holds each request's remaining row lengths in the order they are taken (longest
    first). The batch grows while ``rows <= max_rows`` and ``rows x longest <= max_tokens``;
    the first row is always taken, so a row over the token budget runs alone. The answer lists
    the first requests only (the last may be taken in part: it is split)."""
    counts: list[int] = []
    rows = longest = 0
    for lengths in queue:
        taken = 0
        for length in lengths:
            wider = max(longest, length)
            if rows and (rows + 1 > max_rows or (rows + 1) * wider > max_tokens):
                return counts + [taken] if taken else counts
            rows, longest, taken = rows + 1, wider, taken + 1
        counts.append(taken)
    return counts


def padded_tokens(lengths: Sequence[int]) -> int:
    """What a padded forward pass over rows of these lengths computes: rows x longest."""
    return len(lengths) * max(lengths, default=0)


def wait_time(queue: Sequence[Sequence[int]], oldest_wait: float, last_batch_requests: int, settings: BatchSettings) -> float:
    """Seconds to wait before the next batch starts; 0: start it now.

    Now when the queue fills a batch (``max_batch_size`` rows, or :func:`take` leaves rows
    behind), or when it holds as many
    requests as the previous batch served; otherwise when the oldest request (waiting
    ``oldest_wait`` seconds already) has waited ``max_batch_wait_ms``."""
    if not queue:
        return 0.0
    taken = sum(take(queue, settings.max_batch_size, settings.max_batch_tokens))
    full = taken >= settings.max_batch_size or taken < sum(len(lengths) for lengths in queue)
    if full or len(queue) >= max(1, last_batch_requests):
        return 0.0
    return max(0.0, settings.max_batch_wait_ms / 1000.0 - oldest_wait)


# --------------------------------------------------------------------------------------------
# The batch thread of one model
# --------------------------------------------------------------------------------------------
class _Request:
    """One request in a batcher's queue."""

    def __init__(self, prepare: Callable[[], Plan], loop: asyncio.AbstractEventLoop) -> None:
        self.prepare = prepare
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.arrived = time.monotonic()
        self.plan: Plan | None = None
        #: row indices, longest first, and how many of them batches have taken
        self.order: list[int] = []
        self.taken = 0
        self.outputs: list[Any] = []
        self.missing = 0
        #: answered, failed or cancelled: nothing more happens to it
        self.done = False
        #: whether some batch of its rows held another request's rows too
        self.shared = False

    def remaining(self) -> list[int]:
        assert self.plan is not None
        return [self.plan.lengths[i] for i in self.order[self.taken:]]

    def resolve(self, result: Any = None, error: BaseException | None = None) -> None:
        """Answer the awaiting coroutine (from the batch thread); once only."""
        if self.done:
            return
        self.done = True

        def settle() -> None:
            if self.future.done():  # the client left, or the server is stopping
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        try:
            self.loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the event loop has closed: nobody is waiting
            pass


@dataclass
class BatchStats:
    """What a batcher has done: operators read it at ``GET /stats``, tests assert on it."""

    batches: int = 0
    rows: int = 0
    #: requests answered (any outcome) and those whose rows shared a forward pass with another's
    requests: int = 0
    shared_requests: int = 0
    largest_batch_rows: int = 0
    largest_batch_requests: int = 0
    largest_padded_tokens: int = 0
    #: batches over the token budget: a single row longer than the budget, run alone
    over_budget_alone: int = 0
    #: requests split over more than one batch
    split_requests: int = 0
    failed_requests: int = 0
    cancelled_requests: int = 0
    #: forward passes that raised and were rerun request by request
    reruns: int = 0
    #: the last batches, oldest first: {"rows", "requests", "padded_tokens"}
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=_RECENT))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recent"] = list(self.recent)
        return data


class Batcher:
    """The queue and batch thread of one model: requests in, forward passes of merged rows out.

    ``lock`` is the model's lock, shared with every other use of the model (its other tasks,
    ``/rerank``): each planning step and each forward pass holds it."""

    def __init__(self, name: str, backend: Backend, lock: threading.Lock, settings: BatchSettings) -> None:
        self.name = name
        self.backend = backend
        self.lock = lock
        self.settings = settings
        self.stats = BatchStats()
        self._queue: collections.deque[_Request] = collections.deque()
        self._wake = threading.Condition()
        self._closed = False
        self._last_batch_requests = 1
        self._thread = threading.Thread(target=self._run, name=f"hfbridge-batch-{name}", daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        """Requests queued (planned or not) and not yet answered."""
        with self._wake:
            return len(self._queue)

    def submit(self, prepare: Callable[[], Plan]) -> _Request:
        """Queue a request (on the event loop); ``prepare`` makes its plan on the batch thread."""
        request = _Request(prepare, asyncio.get_running_loop())
        with self._wake:
            if self._closed:
                raise Cancelled()
            self._queue.append(request)
            self._wake.notify()
        return request

    def cancel(self, request: _Request) -> None:
        """The request's client is gone: it leaves the queue (rows of it in a running forward
        pass are dropped when the pass ends)."""
        request.future.cancel()  # on the event loop's thread, as the future wants
        with self._wake:
            if request.done:
                return
            request.done = True
            self.stats.cancelled_requests += 1
            if request in self._queue:
                self._queue.remove(request)

    def close(self) -> None:
        """Stop the thread; queued requests end as cancelled."""
        with self._wake:
            self._closed = True
            pending = list(self._queue)
            self._queue.clear()
            self._wake.notify()
        for request in pending:
            request.resolve(error=Cancelled())

    # ---- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                new = [r for r in self._queue if r.plan is None]
            if new:
                self._plan(new)
                continue  # plan whatever arrived meanwhile too, before choosing a batch
            with self._wake:
                queue = [r for r in self._queue if r.plan is not None and not r.done]
                if not queue:  # only answered or abandoned requests were left: drop them
                    self._queue = collections.deque(r for r in self._queue if not r.done)
                    continue
                shapes = [r.remaining() for r in queue]
                delay = wait_time(shapes, time.monotonic() - queue[0].arrived, self._last_batch_requests, self.settings)
                if delay > 0:
                    self._wake.wait(delay)  # a new request wakes it early
                    continue
                batch = self._take(queue, shapes)
            self._forward(batch)

    def _plan(self, requests: list[_Request]) -> None:
        with self.lock:
            for request in requests:
                if request.done:
                    continue
                try:
                    plan = request.prepare()
                except Exception as exc:  # the request's own failure (bad input): it fails alone
                    self._fail(request, exc)
                    continue
                request.order = sorted(range(len(plan.rows)), key=lambda i: -plan.lengths[i])
                request.outputs = [None] * len(plan.rows)
                request.missing = len(plan.rows)
                request.plan = plan
                if not plan.rows:  # nothing to compute (an empty list of texts)
                    self._finish(request)
        with self._wake:
            for request in requests:
                if request.done and request in self._queue:
                    self._queue.remove(request)

    def _take(self, queue: list[_Request], shapes: list[list[int]]) -> list[tuple[_Request, list[int]]]:
        """The next batch as (request, row indices); taken requests leave the queue once all
        their rows are taken. Called holding ``_wake``."""
        counts = take(shapes, self.settings.max_batch_size, self.settings.max_batch_tokens)
        batch = []
        for request, count in zip(queue, counts):
            indices = request.order[request.taken:request.taken + count]
            if request.taken == 0 and count < len(request.order):
                self.stats.split_requests += 1
            request.taken += count
            if request.taken == len(request.order):
                self._queue.remove(request)
            batch.append((request, indices))
        return batch

    def _forward(self, batch: list[tuple[_Request, list[int]]]) -> None:
        rows = [request.plan.rows[i] for request, indices in batch for i in indices]  # type: ignore[union-attr]
        lengths = [request.plan.lengths[i] for request, indices in batch for i in indices]  # type: ignore[union-attr]
        for request, _ in batch:
            request.shared = request.shared or len(batch) > 1
        with self.lock:
            try:
                outputs = self.backend.forward(rows)
            except Exception as exc:
                outputs = None
                failure: Exception = exc
            self._count(batch, rows, lengths)  # before any answer goes out, so a client that reads /stats sees its batch
            if outputs is None:
                if len(batch) == 1:
                    self._fail(batch[0][0], failure)
                else:
                    self.stats.reruns += 1
                    logger.warning("a batched forward pass of %s failed (%s); rerunning it request by request", self.name, failure)
                    for request, indices in batch:
                        self._forward_alone(request, indices)
            else:
                start = 0
                for request, indices in batch:
                    self._store(request, indices, outputs[start:start + len(indices)])
                    start += len(indices)

    def _forward_alone(self, request: _Request, indices: list[int]) -> None:
        try:
            outputs = self.backend.forward([request.plan.rows[i] for i in indices])  # type: ignore[union-attr]
        except Exception as exc:
            self._fail(request, exc)
            return
        self._store(request, indices, outputs)

    def _store(self, request: _Request, indices: list[int], outputs: list[Any]) -> None:
        if request.done:  # cancelled while its rows ran
            return
        for index, output in zip(indices, outputs):
            request.outputs[index] = output
        request.missing -= len(indices)
        if request.missing == 0:
            self._finish(request)

    def _finish(self, request: _Request) -> None:
        assert request.plan is not None
        try:
            answer = request.plan.finish(request.outputs)
        except Exception as exc:
            self._fail(request, exc)
            return
        self.stats.requests += 1
        self.stats.shared_requests += request.shared
        request.resolve(answer)

    def _fail(self, request: _Request, exc: BaseException) -> None:
        with self._wake:
            if request in self._queue:
                self._queue.remove(request)
        if request.done:
            return
        self.stats.requests += 1
        self.stats.failed_requests += 1
        request.resolve(error=exc)

    def _count(self, batch: list[tuple[_Request, list[int]]], rows: list[Any], lengths: list[int]) -> None:
        stats = self.stats
        padded = padded_tokens(lengths)
        requests = len(batch)
        stats.batches += 1
        stats.rows += len(rows)
        stats.largest_batch_rows = max(stats.largest_batch_rows, len(rows))
        stats.largest_batch_requests = max(stats.largest_batch_requests, requests)
        stats.largest_padded_tokens = max(stats.largest_padded_tokens, padded)
        if padded > self.settings.max_batch_tokens:
            stats.over_budget_alone += 1
        stats.recent.append({"rows": len(rows), "requests": requests, "padded_tokens": padded})
        self._last_batch_requests = requests


# --------------------------------------------------------------------------------------------
# The app's batchers, one per model
# --------------------------------------------------------------------------------------------
class Batchers:
    """One :class:`Batcher` per model, started on the model's first batched request."""

    def __init__(self, settings: BatchSettings, lock_of: Callable[[str], threading.Lock], jobs: Jobs) -> None:
        self.settings = settings
        self._lock_of = lock_of
        self._jobs = jobs
        self._batchers: dict[str, Batcher] = {}
        self._guard = threading.Lock()
        self._closed = False

    @staticmethod
    def takes(backend: Any, task: Any) -> bool:
        """Whether ``backend`` answers ``task`` as a plan the batcher can merge."""
        return task in getattr(backend, "batched_tasks", ())

    def batcher(self, model_id: str, backend: Backend) -> Batcher:
        with self._guard:
            if self._closed:
                raise Cancelled()
            batcher = self._batchers.get(model_id)
            if batcher is None or batcher.backend is not backend:  # first use, or the model was reloaded
                if batcher is not None:
                    batcher.close()
                batcher = self._batchers[model_id] = Batcher(model_id, backend, self._lock_of(model_id), self.settings)
            return batcher

    async def run(self, model_id: str, backend: Backend, prepare: Callable[[], Plan], receive: Callable[[], Any]) -> Any:
        """The answer of ``prepare()``'s plan, computed in shared forward passes. Raises
        :class:`Cancelled` when the client disconnects first (its request leaves the queue),
        :class:`~.backends.BackendInputError` for its bad input."""
        batcher = self.batcher(model_id, backend)
        request = batcher.submit(prepare)
        try:
            return await self._jobs.wait(request.future, receive)
        finally:
            if not request.future.done() or request.future.cancelled():  # the client left, or the server stops
                batcher.cancel(request)

    def stats(self) -> dict[str, Any]:
        with self._guard:
            batchers = dict(self._batchers)
        return {"settings": asdict(self.settings), "models": {mid: b.stats.as_dict() for mid, b in batchers.items()}}

    def close(self) -> None:
        with self._guard:
            self._closed = True
            batchers = list(self._batchers.values())
        for batcher in batchers:
            batcher.close()


