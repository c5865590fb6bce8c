"""Stopping work nobody waits for: a client that went away, or a server shutting down.

Inference runs on worker threads, which cannot be interrupted from outside. Each job gets a
``threading.Event`` instead; the event loop sets it when the client disconnects (or on
shutdown), and the long loops of the backends (a token loop, a chunked transcription) call
:func:`raise_if_cancelled` between steps, so an abandoned generation stops within one token and
releases its model for the next caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Executor
from typing import Any, Callable, Iterator

__all__ = ["Cancelled", "Jobs", "raise_if_cancelled", "is_cancelled", "current_event"]

_current = threading.local()


class Cancelled(BaseException):
    """Raised inside a job whose client went away or whose server is stopping.

    A BaseException, like ``asyncio.CancelledError``: the libraries' and backends' own
    ``except Exception`` handlers must not mistake it for a failure and carry on."""


def is_cancelled() -> bool:
    """Whether the job this thread runs has been cancelled (False outside a job)."""
    event = getattr(_current, "event", None)
    return event is not None and event.is_set()


def current_event() -> threading.Event | None:
    """The event that cancels the job this thread runs (None outside a job), for work that
    another thread does on the job's behalf (a generation decoded in a shared batch)."""
    return getattr(_current, "event", None)


def raise_if_cancelled() -> None:
    """Called by backends between steps of long work."""
    if is_cancelled():
        raise Cancelled()


class Jobs:
    """The jobs in flight, so that each can be cancelled alone or all at once (shutdown)."""

    def __init__(self) -> None:
        self._events: set[threading.Event] = set()
        self._lock = threading.Lock()
        #: jobs stopped by a cancellation before their end (observable by operators and tests)
        self.cancelled = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    @contextlib.contextmanager
    def running(self, event: threading.Event) -> Iterator[None]:
        """Marks the calling worker thread as running the job that ``event`` cancels."""
        with self._lock:
            self._events.add(event)
        _current.event = event
        try:
            yield
        except Cancelled:
            with self._lock:
                self.cancelled += 1
            raise
        finally:
            _current.event = None
            with self._lock:
                self._events.discard(event)

    def cancel_all(self) -> None:
        with self._lock:
            for event in self._events:
                event.set()

    async def run(self, executor: Executor, work: Callable[[], Any], receive: Callable[[], Any]) -> Any:
        """``work()`` on ``executor``, cancelled if the client disconnects first (``receive``
        is the request's ASGI receive, whose body has been read: its next message is
        ``http.disconnect``) or if the awaiting task is cancelled (shutdown).

        Raises :class:`Cancelled` when the client went away: there is no one to answer.
        """
        event = threading.Event()

        def job() -> Any:
            with self.running(event):
                raise_if_cancelled()  # it waited in the queue; its client may be gone already
                return work()

        future = asyncio.get_running_loop().run_in_executor(executor, job)
        try:
            await _done_or_gone(future, receive)
        finally:
            if not future.done():
                event.set()
                future.add_done_callback(_consume)
        if not future.done():
            raise Cancelled()
        return future.result()


    async def wait(self, future: "asyncio.Future[Any]", receive: Callable[[], Any]) -> Any:
        """``future``'s result, awaited on the event loop (work queued elsewhere: a batcher),
        unless the client disconnects first: then the future is cancelled, the job counted
        as cancelled and :class:`Cancelled` raised."""
        await _done_or_gone(future, receive)
        if not future.done():
            future.cancel()
            with self._lock:
                self.cancelled += 1
            raise Cancelled()
        return future.result()


async def _done_or_gone(future: "asyncio.Future[Any]", receive: Callable[[], Any]) -> None:
    """Returns when ``future`` is done or the request's client has disconnected, whichever is first."""
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({future, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()


async def _disconnected(receive: Callable[[], Any]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _consume(future: "asyncio.Future[Any]") -> None:
    """A cancelled job's outcome has no reader; retrieving it keeps asyncio from logging
    'exception was never retrieved'."""
    if not future.cancelled():
        future.exception()
