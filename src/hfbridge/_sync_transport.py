"""The sync client's transport: urllib3 connection pools where every exchange is bounded.

Why urllib3 itself and not requests over it: measured per call (``benchmarks/profile_call.py``),
requests spent more than the whole of hfbridge's own work on things a client built once does not
need again per request: reading the proxy and CA-bundle variables of the environment (it walks
``os.environ`` twice per request), ``.netrc`` look-ups, a cookie jar, hooks. Here the
environment is read once, when the transport is made (``HTTP(S)_PROXY``, ``ALL_PROXY``,
``NO_PROXY``, ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``, as requests reads them), and the
per-origin answer (which proxy, if any) is remembered. Redirects are followed here, as requests
followed them (up to 30; 301/302/303 turn a POST into a GET, 307/308 resend it; the
``Authorization`` header never goes to another origin).

urllib3 bounds each socket operation, not an exchange: a server that trickles its answer a few
bytes at a time never trips a read timeout. So every exchange here has a watch: one shared
watchdog thread shuts down the sockets of an exchange that runs past its time, which wakes the
blocked read at once, and the read's failure is reported as :class:`~hfbridge.APITimeoutError`.

The other bounds live here too: a slot per connection (``max_concurrency`` exchanges at once,
however many threads share the client, waiting for a free slot at most the attempt's time),
answer sizes (:class:`~hfbridge.limits.BodyLimit`; redirect bodies are never read), and, for
tool downloads, a public-only pool that checks the address of every connection it opens (and
ignores proxies: through one, the peer checked would be the proxy).
"""

from __future__ import annotations

import functools
import heapq
import http.client
import itertools
import os
import re
import socket
import threading
import time
import weakref
from typing import Any, Callable, Iterator
from urllib.parse import unquote, urljoin, urlsplit

import urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import errors as e
from .limits import READ_PIECE, BodyLimit
from .tool_inputs import check_public_address

__all__ = ["SyncTransport", "Exchange", "TRANSPORT_ERRORS", "translate"]

#: what urllib3 and the socket layer raise for a failed exchange
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)

#: what requests sent besides the caller's headers (the same set, so servers see no change)
DEFAULT_HEADERS = {
    "Accept-Encoding": ", ".join(re.split(r",\s*", urllib3.util.make_headers(accept_encoding=True)["accept-encoding"])),
    "Accept": "*/*",
    "Connection": "keep-alive",
}
MAX_REDIRECTS = 30
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    """A heap of watches and one daemon thread that fires each when its time comes.

    The thread sleeps until the earliest watch's time and is woken only when a new watch comes
    before it (or none was due): with equal timeouts, a new watch is never the earliest, so a
    call costs a heap push and pop, not a thread switch. Stopped watches are taken off the top
    by whoever stops them, and the heap is swept of stopped ones every ``SWEEP`` pushes."""

    SWEEP = 1024

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Fresh state (also in a forked child, which inherits the heap but not the thread)."""
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, int, _Watch]] = []
        self._order = itertools.count()
        self._pushes = 0
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
                self._drop_finished_top()
                return
            watch.at = time.monotonic() + max(seconds, 0.0)
            watch.generation += 1
            self._push(watch)

    def stop(self, watch: _Watch) -> bool:
        """Stop watching; True if the watch had fired already."""
        with self._cond:
            watch.done = True
            watch.sockets.clear()
            self._drop_finished_top()
            return watch.fired

    def add_socket(self, watch: _Watch, sock: socket.socket) -> None:
        with self._cond:
            if watch.done:
                return
            if watch.fired:
                _shutdown(sock)
            elif sock not in watch.sockets:
                watch.sockets.append(sock)

    @staticmethod
    def _live(entry: tuple[float, int, int, _Watch]) -> bool:
        return not entry[3].done and entry[2] == entry[3].generation

    def _drop_finished_top(self) -> None:
        heap = self._heap
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)

    def _push(self, watch: _Watch) -> None:
        self._pushes += 1
        if self._pushes >= self.SWEEP:
            self._pushes = 0
            self._heap = [entry for entry in self._heap if self._live(entry)]
            heapq.heapify(self._heap)
        earliest = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (watch.at, next(self._order), watch.generation, watch))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hfbridge-deadlines", daemon=True)
            self._thread.start()
        if earliest is None or watch.at < earliest:
            self._cond.notify()  # it sleeps until ``earliest``: too late for this one

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


#: bodies up to this size are sent together with their headers
_MERGED_BODY_BYTES = 1 << 20


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

    #: the header block held back to go out with the body in one send (see :meth:`request`)
    _held: bytes | None = None
    _merging = False

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        """urllib3 sends the header block and then the body, two ``sendall`` calls and two TCP
        segments for every request; a bytes body goes out with its headers in one (measured:
        the second send was a tenth of a small call's CPU)."""
        if self.sock is not None:  # type: ignore[attr-defined]  # a connection from the pool
            self._watch(self.sock)  # type: ignore[attr-defined]
        self._merging = isinstance(body, bytes) and 0 < len(body) <= _MERGED_BODY_BYTES and not kwargs.get("chunked")
        try:
            return super().request(method, url, body=body, headers=headers, **kwargs)  # type: ignore[misc]
        finally:
            held, self._held, self._merging = self._held, None, False
            if held is not None:  # nothing followed the headers: they still go out
                super().send(held)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        if self._merging:
            if self._held is None:
                self._held = bytes(data)
                return
            data, self._held, self._merging = self._held + bytes(data), None, False
        super().send(data)  # type: ignore[misc]

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


def _public_peer(address: str, host: str) -> None:
    check_public_address(address, host)


# --------------------------------------------------------------------------------------------
# Pools, and the environment read once
# --------------------------------------------------------------------------------------------
def _ca_bundle_path() -> str | None:
    """``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` as requests read them (None: certifi's)."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


@functools.lru_cache(maxsize=8)
def _tls_settings(path: str | None) -> dict[str, Any]:
    """TLS verification as requests did it: the bundle named (a file or a folder), else
    certifi's (requests' own default), loaded once per process into one shared context (loading
    a bundle costs milliseconds; a context is safe to share between threads)."""
    if path is None:
        try:
            import certifi
        except ImportError:  # pragma: no cover - the system's store then
            return {}
        path = certifi.where()
    if os.path.isdir(path):
        return {"ca_cert_dir": path}
    context = urllib3.util.ssl_.create_urllib3_context()
    context.load_verify_locations(cafile=path)
    return {"ssl_context": context}


def _proxy_headers(proxy: str) -> dict[str, str]:
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return urllib3.util.make_headers(proxy_basic_auth=credentials)


class _Route:
    """How one origin is reached: its manager, and for a direct one the host's pool."""

    __slots__ = ("manager", "host", "pool")

    def __init__(self, manager: urllib3.PoolManager, host: tuple[str | None, int | None, str | None] | None) -> None:
        self.manager = manager
        self.host = host
        self.pool: Any = None


class _Pools:
    """The pool managers of one transport: direct, and one per proxy the environment names.

    Which one an origin goes through is decided once per origin (the environment was read when
    the transport was made), so a request costs a dictionary look-up here."""

    def __init__(self, pool_size: int, *, public_only: bool = False) -> None:
        self.pool_size = pool_size
        self._classes = _pool_classes(_public_peer if public_only else None)
        import urllib.request  # here, not at import: a client made is the first to need it

        self._proxies: dict[str, str] = {} if public_only else urllib.request.getproxies()
        self._ca_bundle = _ca_bundle_path()
        self._lock = threading.Lock()
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        self._by_origin: dict[tuple[str, str], _Route] = {}

    def _manager(self, proxy: str | None) -> urllib3.PoolManager:
        manager = self._managers.get(proxy)
        if manager is None:
            # Not block=True: the transport's slots (as many as a pool holds) already make a
            # thread wait for a pooled connection, within its timeout; a blocking pool would
            # wait forever, and deadlock under vcrpy, whose stubs never return connections.
            settings: dict[str, Any] = dict(num_pools=8, maxsize=self.pool_size, block=False)
            if proxy is None:
                manager = urllib3.PoolManager(**settings)
            elif proxy.lower().startswith("socks"):
                from urllib3.contrib.socks import SOCKSProxyManager

                manager = SOCKSProxyManager(proxy, **settings)
            else:
                manager = urllib3.ProxyManager(proxy, proxy_headers=_proxy_headers(proxy), **settings)
            manager.pool_classes_by_scheme = self._classes
            self._managers[proxy] = manager
        return manager

    def _with_tls(self, manager: urllib3.PoolManager) -> None:
        """Verification settings for a manager's https pools, added before its first one is
        made (so a plain-http client never loads a CA bundle)."""
        tls = _tls_settings(self._ca_bundle)
        if any(key not in manager.connection_pool_kw for key in tls):
            manager.connection_pool_kw.update(tls)

    def _proxy_for(self, scheme: str, host: str) -> str | None:
        proxy = self._proxies.get(scheme) or self._proxies.get("all")
        if not proxy or not host:
            return None
        import urllib.request

        if "no" in self._proxies and urllib.request.proxy_bypass_environment(host, self._proxies):
            return None
        return proxy

    def _route(self, scheme: str, netloc: str, url: str) -> _Route:
        with self._lock:
            host = urlsplit(url).hostname or ""
            manager = self._manager(self._proxy_for(scheme.lower(), host) if self._proxies else None)
            direct = manager is self._managers.get(None)
            if scheme.lower() == "https" or not direct:
                self._with_tls(manager)  # through a proxy, an http URL may still tunnel TLS to it
            parsed = urllib3.util.parse_url(url)
            route = _Route(manager, (parsed.host, parsed.port, parsed.scheme) if direct else None)
            self._by_origin[(scheme, netloc)] = route
        return route

    def urlopen(self, method: str, url: str, **kw: Any) -> Any:
        """Send one request (no redirect followed) through the pools for ``url``'s origin.

        Without a proxy in the way, straight to the host's connection pool, found once per
        origin: what ``PoolManager.urlopen`` would redo per request (parse the URL, build the
        pool's key, look it up under a lock) is a third of urllib3's own time on a small call."""
        scheme, _, rest = url.partition("://")
        netloc, slash, path = rest.partition("/")
        route = self._by_origin.get((scheme, netloc)) or self._route(scheme, netloc, url)
        if route.host is None or "#" in url or "?" in netloc:
            return route.manager.urlopen(method, url, redirect=False, **kw)
        pool = route.pool
        if pool is None or pool.pool is None:  # not looked up yet, or evicted (closed) since
            pool = route.pool = route.manager.connection_from_host(*route.host)
        return pool.urlopen(method, slash + path or "/", assert_same_host=False, redirect=False, **kw)

    def clear(self) -> None:
        with self._lock:
            managers = list(self._managers.values())
            self._by_origin.clear()
        for manager in managers:
            manager.clear()

    def open_pools(self) -> int:
        """How many host pools are open (0 once closed)."""
        return sum(len(manager.pools) for manager in list(self._managers.values()))


# --------------------------------------------------------------------------------------------
# Exchanges
# --------------------------------------------------------------------------------------------
def translate(exc: BaseException, url: str, *, fired: bool, budget: float) -> e.APIConnectionError:
    if fired:
        return e.APITimeoutError(f"no complete answer within {budget:.3g}s", url=url)
    # urllib3's NewConnectionError (refused, unreachable, unresolvable) derives from its
    # ConnectTimeoutError for old callers' sake; it is no timeout (requests said so too)
    timed_out = (isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)) and not isinstance(exc, urllib3.exceptions.NewConnectionError)) \
        or "timed out" in str(exc).lower()
    return e.transport_error(exc, url, timed_out=timed_out)


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _keeps_credentials(old: str, new: str) -> bool:
    """Whether ``Authorization`` may follow a redirect from ``old`` to ``new`` (requests' rule:
    the same origin, or the same host moving from http on 80 to https on 443)."""
    was, now = _origin(old), _origin(new)
    if was == now:
        return True
    return was[1] == now[1] and was[0] == "http" and was[2] == 80 and now[0] == "https" and now[2] == 443


def _with_defaults(headers: dict[str, str]) -> dict[str, str]:
    present = {name.lower() for name in headers}
    sent = {name: value for name, value in DEFAULT_HEADERS.items() if name.lower() not in present}
    sent.update(headers)
    return sent


def _next_hop(status: int, method: str, url: str, location: str, headers: dict[str, str],
              body: bytes | None) -> tuple[str, str, dict[str, str], bytes | None]:
    """The request a redirect asks for: (method, url, headers, body), as requests chose them."""
    target = urljoin(url, location)
    if (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST"):
        method = "GET"
    if status not in (307, 308):
        body = None
        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "content-type", "transfer-encoding")}
    if not _keeps_credentials(url, target):
        headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
    return method, target, headers, body


class Exchange:
    """One response and what it holds: its watch and its connection slot, until ``finish``."""

    def __init__(self, transport: "SyncTransport", response: Any, url: str, watch: _Watch, budget: float) -> None:
        self.transport = transport
        self.response = response
        self.status = response.status
        self.headers = _lower(response.headers)
        self.url = url
        self.watch = watch
        self.budget = budget
        self._finished = False

    def read_all(self, limit: BodyLimit) -> bytes:
        return b"".join(self.iter_body(limit))

    def iter_body(self, limit: BodyLimit) -> Iterator[bytes]:
        """The (decompressed) body in pieces as they arrive, counted against ``limit``."""
        limit.check_declared(self.headers)
        raw = self.response
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
        _release(self.response)
        self.transport.slots.release()


def _release(response: Any) -> None:
    """Give the connection back: kept alive if the body was read to its end (urllib3 has then
    returned it already), else closed, so nobody reads the rest of an abandoned answer. (A
    replayed answer, vcrpy's stub, has no connection to give back.)"""
    try:
        response.close()
    finally:
        release = getattr(response, "release_conn", None)
        if release is not None:
            release()


class SyncTransport:
    """The pools and connection slots of a client, shared by its ``with_options`` copies;
    closed by ``close()``, or when the last of them is collected, or at interpreter exit.

    ``pool_manager``: a ``urllib3.PoolManager`` of the caller's to send through instead (used
    as it is, and not closed here)."""

    def __init__(self, pool_size: int, pool_manager: Any = None) -> None:
        if pool_manager is not None and not isinstance(pool_manager, urllib3.PoolManager):
            raise TypeError(
                f"session must be a urllib3.PoolManager, got {type(pool_manager).__name__}: the sync client sends "
                "through urllib3 directly (a requests.Session is no longer used)"
            )
        self.owned = pool_manager is None
        self.pool_size = pool_size
        self.pools = _Pools(pool_size)
        self._given = pool_manager
        self.slots = threading.BoundedSemaphore(pool_size)
        self._public: _Pools | None = None
        self._lock = threading.Lock()
        self._owned_pools = [self.pools]
        self._finalizer = weakref.finalize(self, _close_pools, self._owned_pools)

    def close(self) -> None:
        self._finalizer()

    def public_pools(self) -> _Pools:
        """Pools of their own for tool downloads: every connection's peer must be public."""
        with self._lock:
            if self._public is None:
                self._public = _Pools(min(self.pool_size, 4), public_only=True)
                self._owned_pools.append(self._public)
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
        included), following redirects. The caller reads the body through the exchange and
        must ``finish`` it."""
        started = time.monotonic()
        if not self.slots.acquire(timeout=max(timeout, 0.0)):
            raise e.APITimeoutError(f"no free connection within {timeout:.3g}s (all {self.pool_size} in use; see max_concurrency)", url=url)
        watch = WATCHDOG.start(timeout - (time.monotonic() - started))
        pools = self.public_pools() if public_only else self.pools
        sent = _with_defaults(headers)
        _current.watch = watch
        try:
            for _ in range(MAX_REDIRECTS + 1):
                left = max(timeout - (time.monotonic() - started), 0.001)
                send = pools.urlopen if self._given is None or public_only else functools.partial(self._given.urlopen, redirect=False)
                response = send(
                    method, url, body=content, headers=sent, retries=False,
                    timeout=urllib3.Timeout(connect=min(connect_timeout, left), read=left),
                    preload_content=False, decode_content=False,
                )
                location = response.headers.get("location") if response.status in _REDIRECTS else None
                if not location:
                    break
                _release(response)  # its body is never read
                method, url, sent, content = _next_hop(response.status, method, url, location, sent, content)
            else:
                raise http.client.HTTPException(f"exceeded {MAX_REDIRECTS} redirects")
        except BaseException as exc:
            fired = WATCHDOG.stop(watch)
            self.slots.release()
            if isinstance(exc, TRANSPORT_ERRORS):
                raise translate(exc, url, fired=fired, budget=timeout) from exc
            raise
        finally:
            _current.watch = None
        return Exchange(self, response, url, watch, timeout)

    def fetch(self, url: str, *, headers: dict[str, str], timeout: float, connect_timeout: float,
              limit: BodyLimit, public_only: bool) -> tuple[int, bytes]:
        """GET ``url`` whole: (status, body)."""
        exchange = self.exchange("GET", url, headers=headers, timeout=timeout, connect_timeout=connect_timeout, public_only=public_only)
        try:
            return exchange.status, exchange.read_all(limit)
        finally:
            exchange.finish()


def _close_pools(pools: list[_Pools]) -> None:
    for each in pools:
        each.clear()
