"""Running several calls at once, the same way in the core and in the adapters.

The sync side maps a function over items on a few threads (results in input order, the first
failure raised); the async side gathers under the client's own bound. Both step aside while
a vcrpy cassette is in use: it cannot record requests made from several threads at once (vcrpy
issue 849), its count of what a replay played is not thread-safe either, and concurrent answers
would land in a recording in whichever order they came.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator, Sequence

if TYPE_CHECKING:
    import asyncio

__all__ = ["RECORDING_SERIALLY", "recording_gate", "recording_lock", "map_in_threads", "chunks"]

#: set while a vcrpy cassette is in use (the pytest plugin sets it; recording or replaying):
#: thread pools run one call at a time meanwhile, and async calls pass :func:`recording_gate`
#: one at a time, in the order they asked
RECORDING_SERIALLY = threading.Event()
_recording_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def recording_gate() -> AsyncIterator[None]:
    """While a cassette records, one async call at a time, in the order they asked (our own
    batches and the frameworks' gathers alike: LlamaIndex batches embeddings that way); a no-op
    otherwise."""
    if not RECORDING_SERIALLY.is_set():
        yield
        return
    import asyncio

    lock = _recording_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        yield


_recording_lock = threading.RLock()  # re-entrant: one thread may hold two streams open


@contextlib.contextmanager
def recording_lock() -> Iterator[None]:
    """The same for sync calls from the frameworks' own threads (LangChain's ``batch`` runs
    ``_generate`` on a thread pool): one exchange at a time while a cassette records."""
    if not RECORDING_SERIALLY.is_set():
        yield
        return
    with _recording_lock:
        yield


def map_in_threads(fn: Callable[[Any], Any], items: Sequence[Any], max_workers: int) -> list[Any]:
    """``[fn(x) for x in items]`` on at most ``max_workers`` threads, results in input order.

    The first failure (in input order) is raised once the calls before it are done; calls not
    started yet are cancelled. Each call runs in a copy of the caller's context, so context
    variables (LangChain's callbacks and tracing, LlamaIndex's spans) reach the worker threads."""
    if len(items) <= 1 or max_workers <= 1 or RECORDING_SERIALLY.is_set():
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items)), thread_name_prefix="hfbridge") as pool:
        futures: list[Future[Any]] = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    """``items`` in consecutive lists of at most ``size``."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
