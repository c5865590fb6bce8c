"""The async client's transport: aiohttp sessions, one per event loop, that always get closed.

A session belongs to the loop it was made in (its connections are bound to it), so the client
keeps one per loop. Each is closed whichever way its loop's life ends:

* the loop finishes the way ``asyncio.run``, ``asyncio.Runner`` and pytest-asyncio finish one
  (``shutdown_asyncgens``): a sentinel async generator started in that loop is closed then, and
  closes the session while the loop still runs;
* the client (and every ``with_options`` copy) is collected, or the interpreter exits: the
  session is closed at once if its loop allows it (running here, or idle), handed to its loop if
  that runs in another thread, and if the loop is already closed its sockets are closed by hand;
* ``aclose()`` / ``close()`` / ``async with``, for those who want to be explicit.

So no "Unclosed client session", "Unclosed connector" or socket ``ResourceWarning`` reaches a
user, whatever happens to the adapter that owns the client.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, AsyncIterator

if TYPE_CHECKING:
    import asyncio

    import aiohttp

__all__ = ["LoopPools", "LoopState"]


def _new_session(*, public_only: bool = False) -> Any:
    from ._aiohttp_io import new_session  # aiohttp is imported here, at the first session

    return new_session(public_only=public_only)


# --------------------------------------------------------------------------------------------
# Closing a session whatever state its loop is in
# --------------------------------------------------------------------------------------------
def _close_sockets_by_hand(connector: aiohttp.BaseConnector) -> None:
    """For a loop that is closed already: its transports can no longer close themselves."""
    protocols = [proto for conns in getattr(connector, "_conns", {}).values() for proto, _ in conns]
    protocols += list(getattr(connector, "_acquired", ()))
    for proto in protocols:
        transport = getattr(proto, "transport", None)
        inner = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
        for layer in (transport, inner):
            sock = getattr(layer, "_sock", None)
            if sock is not None:
                sock.close()
                layer._sock = None  # noqa: SLF001 - else the transport warns when collected


def _close_now(sessions: list[aiohttp.ClientSession]) -> None:
    """Close synchronously (in the loop's thread, or with the loop closed)."""
    for session in sessions:
        connector = session.connector
        if connector is None or connector.closed:
            continue
        loop = getattr(connector, "_loop", None)
        if loop is None or loop.is_closed():
            _close_sockets_by_hand(connector)
        connector._close()  # noqa: SLF001 - the synchronous half of connector.close()


async def _close_gracefully(sessions: list[aiohttp.ClientSession]) -> None:
    for session in sessions:
        await session.close()


class LoopState:
    """One event loop's session(s) and concurrency bound, and what closes them."""

    def __init__(self, registry: dict[int, "LoopState"], loop: asyncio.AbstractEventLoop,
                 session: aiohttp.ClientSession, max_concurrency: int, *, owned: bool) -> None:
        self._registry = registry
        self._loop = weakref.ref(loop)
        self.session = session
        import asyncio  # made inside a running loop: asyncio is imported already

        self.semaphore = asyncio.Semaphore(max_concurrency)
        self.owned = owned
        self.closed = False
        self._public: aiohttp.ClientSession | None = None
        self._sentinel: Any = None
        self._ending = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop()

    def public_session(self) -> aiohttp.ClientSession:
        """A session of its own for tool downloads, connecting only to public addresses."""
        if self._public is None:
            self._public = _new_session(public_only=True)
        return self._public

    def _sessions(self) -> list[aiohttp.ClientSession]:
        own = [self.session] if self.owned else []
        return own + ([self._public] if self._public is not None else [])

    async def watch_loop_end(self) -> None:
        """Start the sentinel: the loop closes it in ``shutdown_asyncgens``, and it closes us."""
        sentinel = _until_loop_ends(self)
        await sentinel.asend(None)
        self._sentinel = sentinel

    def _forget(self) -> None:
        loop = self.loop
        if loop is not None and self._registry.get(id(loop)) is self:
            del self._registry[id(loop)]
        sentinel, self._sentinel = self._sentinel, None
        if sentinel is not None and not self._ending:
            # run it to its end now (it awaits nothing once closed), so it is never handed to a
            # loop's finaliser later, maybe after that loop has closed
            closer = sentinel.aclose()
            try:
                closer.send(None)
            except (StopIteration, RuntimeError):
                pass

    async def aclose(self) -> None:
        """Close in the running loop (this state's own)."""
        if self.closed:
            return
        self.closed = True
        self._forget()
        await _close_gracefully(self._sessions())

    def close_now(self) -> None:
        """Close from anywhere: any thread, a finaliser, interpreter exit."""
        if self.closed:
            return
        self.closed = True
        self._forget()
        sessions = self._sessions()
        if not sessions:
            return
        loop = self.loop
        import asyncio

        try:
            running_here = asyncio.get_running_loop()
        except RuntimeError:
            running_here = None
        if loop is not None and not loop.is_closed():
            if loop.is_running() and loop is not running_here:
                try:
                    loop.call_soon_threadsafe(_close_now, sessions)
                    return
                except RuntimeError:  # closed meanwhile
                    pass
            elif not loop.is_running() and running_here is None:
                try:
                    loop.run_until_complete(_close_gracefully(sessions))
                    return
                except RuntimeError:
                    pass
        _close_now(sessions)


async def _until_loop_ends(state: LoopState) -> AsyncIterator[None]:
    try:
        yield
    finally:
        state._ending = True
        await state.aclose()


def _close_all(registry: dict[int, LoopState], lock: threading.Lock) -> None:
    with lock:
        states = list(registry.values())
    for state in states:
        state.close_now()


class LoopPools:
    """The client's per-loop states, shared by its ``with_options`` copies and closed when the
    last of them is collected (or at interpreter exit) if nobody closed them before."""

    def __init__(self, max_concurrency: int, session: aiohttp.ClientSession | None = None) -> None:
        self._max_concurrency = max_concurrency
        self._given = session
        self._states: dict[int, LoopState] = {}
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_all, self._states, self._lock)

    async def state(self) -> LoopState:
        import asyncio

        loop = asyncio.get_running_loop()
        state = self._states.get(id(loop))
        if state is not None and state.loop is loop and not state.closed:
            return state
        if state is not None:  # a closed loop whose id a new loop reuses
            state.close_now()
        state = LoopState(self._states, loop, self._given or _new_session(), self._max_concurrency, owned=self._given is None)
        with self._lock:
            self._states[id(loop)] = state
        await state.watch_loop_end()
        return state

    async def aclose(self) -> None:
        """Close the running loop's state gracefully and every other one at once."""
        import asyncio

        running = asyncio.get_running_loop()
        with self._lock:
            states = list(self._states.values())
        for state in states:
            if state.loop is running:
                await state.aclose()
            else:
                state.close_now()

    def close(self) -> None:
        _close_all(self._states, self._lock)
