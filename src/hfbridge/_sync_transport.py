"""The sync client's transport: a pooled ``requests.Session`` where every exchange is bounded.

requests bounds each socket operation, not an exchange: a server that trickles its answer a few
bytes at a time never trips a read timeout. So every exchange here has a watch: one shared
watchdog thread shuts down the sockets of an exchange that runs past its time, which wakes the
blocked read at once, and the read's failure is reported as :class:`~hfbridge.APITimeoutError`.

The other bounds live here too: a slot per connection (``max_concurrency`` exchanges at once,
however many threads share the client, waiting for a free slot at most the attempt's time),
answer sizes (:class:`~hfbridge.limits.BodyLimit`, also for redirects, whose bodies are never
read), and, for tool downloads, a public-only session that checks the address of every
connection it opens.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import os
import socket
import threading
import time
import weakref
from typing import Any, Callable, Iterator

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import errors as e
from .limits import READ_PIECE, BodyLimit
from .tool_inputs import check_public_address

__all__ = ["SyncTransport", "Exchange", "TRANSPORT_ERRORS", "translate"]

#: what requests, urllib3 and the socket layer raise for a failed exchange
TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


# --------------------------------------------------------------------------------------------
# The watchdog
# --------------------------------------------------------------------------------------------
class _Watch:
    """One exchange's time limit and the sockets it has used."""

    __slots__ = ("at", "sockets", "fired", "done", "generation", "__weakref__")

    def __init__(self, at: float) -> None:
        self.at = at
        self.sockets: list[socket.socket] = []
        self.fired = False
        self.done = False
        self.generation = 0


def _shutdown(sock: socket.socket) -> None:
    try:  # the plain socket method, also for a TLS socket: only the file descriptor is shut
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """A heap of watches and one daemon thread that fires each when its time comes."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Fresh state (also in a forked child, which inherits the heap but not the thread)."""
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, int, _Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def start(self, seconds: float) -> _Watch:
        watch = _Watch(time.monotonic() + max(seconds, 0.0))
        with self._cond:
            self._push(watch)
        return watch

    def extend(self, watch: _Watch, seconds: float | None) -> None:
        """Move the watch's time (None: stop watching, as for a stream without a deadline)."""
        with self._cond:
            if seconds is None:
                watch.done = True
                return
            watch.at = time.monotonic() + max(seconds, 0.0)
            watch.generation += 1
            self._push(watch)

    def stop(self, watch: _Watch) -> bool:
        """Stop watching; True if the watch had fired already."""
        with self._cond:
            watch.done = True
            watch.sockets.clear()
            return watch.fired

    def add_socket(self, watch: _Watch, sock: socket.socket) -> None:
        with self._cond:
            if watch.done:
                return
            if watch.fired:
                _shutdown(sock)
            elif sock not in watch.sockets:
                watch.sockets.append(sock)

    def _push(self, watch: _Watch) -> None:
        heapq.heappush(self._heap, (watch.at, next(self._order), watch.generation, watch))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hfbridge-deadlines", daemon=True)
            self._thread.start()
        self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                if not self._heap:
                    self._cond.wait()
                    continue
                at, _, generation, watch = self._heap[0]
                if watch.done or generation != watch.generation:
                    heapq.heappop(self._heap)
                    continue
                wait = at - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                watch.fired = True
                for sock in watch.sockets:
                    _shutdown(sock)


WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WATCHDOG._reset)
_current = threading.local()  # the watch of the exchange this thread is running


class _WatchedConnection:
    """Connection behaviour mixed into urllib3's classes: every socket an exchange uses is
    handed to its watch (new and reused connections alike), and a public-only session checks
    the peer address of every new connection before a byte is sent."""

    peer_check: Callable[[str, str], None] | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        if self.peer_check is not None:
            try:
                self.peer_check(sock.getpeername()[0], self.host)  # type: ignore[attr-defined]
            except BaseException:
                sock.close()
                raise
        self._watch(sock)
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._watch(self.sock)  # type: ignore[attr-defined]  # the TLS socket, once wrapped

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if self.sock is not None:  # type: ignore[attr-defined]  # a connection from the pool
            self._watch(self.sock)  # type: ignore[attr-defined]
        return super().request(*args, **kwargs)  # type: ignore[misc]

    @staticmethod
    def _watch(sock: socket.socket | None) -> None:
        watch = getattr(_current, "watch", None)
        if watch is not None and sock is not None:
            WATCHDOG.add_socket(watch, sock)


class _ConnectionClass:
    """A pool's ``ConnectionCls``, resolved when a connection is made: a watched subclass of
    urllib3's own class, unless someone patched another class in (vcrpy does while it records or
    replays; its stubs then run as they are, unwatched)."""

    def __init__(self, base_pool: type, attrs: dict[str, Any]) -> None:
        self._base_pool = base_pool
        self._attrs = attrs
        self._watched: dict[type, type] = {}

    def __get__(self, pool: Any, owner: type) -> type:
        current = self._base_pool.ConnectionCls
        if current.__module__ != "urllib3.connection":
            return current
        if current not in self._watched:
            self._watched[current] = type(f"Watched{current.__name__}", (_WatchedConnection, current), dict(self._attrs))
        return self._watched[current]


def _pool_classes(peer_check: Callable[[str, str], None] | None) -> dict[str, type]:
    attrs = {"peer_check": staticmethod(peer_check) if peer_check else None}
    return {
        scheme: type(f"Watched{pool.__name__}", (pool,), {"ConnectionCls": _ConnectionClass(pool, attrs)})
        for scheme, pool in (("http", HTTPConnectionPool), ("https", HTTPSConnectionPool))
    }


class _WatchedAdapter(HTTPAdapter):
    def __init__(self, pool_size: int, peer_check: Callable[[str, str], None] | None = None) -> None:
        self._pool_classes = _pool_classes(peer_check)
        # Not pool_block: the transport's slots (as many as the pool holds) already make a thread
        # wait for a pooled connection, within its timeout; a blocking pool would wait forever,
        # and deadlock under vcrpy, whose stubs never return connections to the pool.
        super().__init__(pool_connections=4, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if hasattr(manager, "pool_classes_by_scheme"):
            manager.pool_classes_by_scheme = self._pool_classes
        return manager


def _leave_redirect_bodies_unread(response: requests.Response, **_: Any) -> None:
    """requests reads a redirect's body (unbounded) before following it; mark it read instead,
    so the connection is closed rather than fed a body nobody needs."""
    if response.is_redirect:
        response._content = b""  # noqa: SLF001 - requests' own "already read" marker


def _public_peer(address: str, host: str) -> None:
    check_public_address(address, host)


def new_session(pool_size: int, *, public_only: bool = False) -> requests.Session:
    session = requests.Session()
    adapter = _WatchedAdapter(pool_size, _public_peer if public_only else None)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.hooks["response"].append(_leave_redirect_bodies_unread)
    if public_only:
        session.trust_env = False  # through a proxy, the peer checked would be the proxy
    return session


# --------------------------------------------------------------------------------------------
# Exchanges
# --------------------------------------------------------------------------------------------
def translate(exc: BaseException, url: str, *, fired: bool, budget: float) -> e.APIConnectionError:
    if fired:
        return e.APITimeoutError(f"no complete answer within {budget:.3g}s", url=url)
    timed_out = isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)) or "timed out" in str(exc).lower()
    return e.transport_error(exc, url, timed_out=timed_out)


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


class Exchange:
    """One response and what it holds: its watch and its connection slot, until ``finish``."""

    def __init__(self, transport: "SyncTransport", response: requests.Response, watch: _Watch, budget: float) -> None:
        self.transport = transport
        self.response = response
        self.status = response.status_code
        self.headers = _lower(response.headers)
        self.url = response.url
        self.watch = watch
        self.budget = budget
        self._finished = False

    def read_all(self, limit: BodyLimit) -> bytes:
        return b"".join(self.iter_body(limit))

    def iter_body(self, limit: BodyLimit) -> Iterator[bytes]:
        """The (decompressed) body in pieces as they arrive, counted against ``limit``."""
        limit.check_declared(self.headers)
        raw = self.response.raw
        try:
            for piece in raw.stream(READ_PIECE, decode_content=True):
                limit.add(len(piece), raw.tell())
                yield piece
        except TRANSPORT_ERRORS as exc:
            raise translate(exc, self.url, fired=self.watch.fired, budget=self.budget) from exc
        if self.watch.fired:  # shut down mid-body: what looked like the end was the watchdog
            raise e.APITimeoutError(f"no complete answer within {self.budget:.3g}s", url=self.url)

    def keep_alive_for(self, seconds: float | None) -> None:
        """A stream's body: bounded per read by the socket timeout, and as a whole by what is
        left of the call's deadline (None: per read only)."""
        self.budget = seconds if seconds is not None else self.budget
        WATCHDOG.extend(self.watch, seconds)

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        WATCHDOG.stop(self.watch)
        self.response.close()
        self.transport.slots.release()


def _close_sessions(sessions: list[requests.Session]) -> None:
    for session in sessions:
        session.close()


class SyncTransport:
    """The session and connection slots of a client, shared by its ``with_options`` copies;
    closed by ``close()``, or when the last of them is collected, or at interpreter exit."""

    def __init__(self, pool_size: int, session: requests.Session | None = None) -> None:
        self.owned = session is None
        self.pool_size = pool_size
        self.session = session or new_session(pool_size)
        self.slots = threading.BoundedSemaphore(pool_size)
        self._public: requests.Session | None = None
        self._lock = threading.Lock()
        self._owned_sessions = [self.session] if self.owned else []
        self._finalizer = weakref.finalize(self, _close_sessions, self._owned_sessions)

    def close(self) -> None:
        self._finalizer()

    def public_session(self) -> requests.Session:
        """A session of its own for tool downloads: every connection's peer must be public."""
        with self._lock:
            if self._public is None:
                self._public = new_session(min(self.pool_size, 4), public_only=True)
                self._owned_sessions.append(self._public)
            return self._public

    def exchange(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        timeout: float,
        connect_timeout: float,
        content: bytes | None = None,
        public_only: bool = False,
    ) -> Exchange:
        """Send and receive the headers within ``timeout`` seconds (waiting for a free slot
        included). The caller reads the body through the exchange and must ``finish`` it."""
        started = time.monotonic()
        if not self.slots.acquire(timeout=max(timeout, 0.0)):
            raise e.APITimeoutError(f"no free connection within {timeout:.3g}s (all {self.pool_size} in use; see max_concurrency)", url=url)
        watch = WATCHDOG.start(timeout - (time.monotonic() - started))
        session = self.public_session() if public_only else self.session
        _current.watch = watch
        try:
            left = max(timeout - (time.monotonic() - started), 0.001)
            response = session.request(method, url, data=content, headers=headers, stream=True,
                                       timeout=(min(connect_timeout, left), left), allow_redirects=True)
        except BaseException as exc:
            fired = WATCHDOG.stop(watch)
            self.slots.release()
            if isinstance(exc, TRANSPORT_ERRORS):
                raise translate(exc, url, fired=fired, budget=timeout) from exc
            raise
        finally:
            _current.watch = None
        return Exchange(self, response, watch, timeout)

    def fetch(self, url: str, *, headers: dict[str, str], timeout: float, connect_timeout: float,
              limit: BodyLimit, public_only: bool) -> tuple[int, bytes]:
        """GET ``url`` whole: (status, body)."""
        exchange = self.exchange("GET", url, headers=headers, timeout=timeout, connect_timeout=connect_timeout, public_only=public_only)
        try:
            return exchange.status, exchange.read_all(limit)
        finally:
            exchange.finish()
