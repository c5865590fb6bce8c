"""A real HTTP/1.1 server on 127.0.0.1 whose answers each test scripts.

Used to test the clients' transports for real (sockets, keep-alive, chunked streams, timeouts,
dropped connections) without any model behind them. Every request it receives is recorded.

It is also the fault server of ``tests/faults``: a reply can trickle its headers or body a few
bytes at a time, end its body short, be gzip-encoded (a decompression bomb is just a gzip body),
or stream a body of any size without holding it in memory.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Union


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: seconds to wait before answering (a stalled server)
    delay: float = 0.0
    #: close the connection without answering
    drop: bool = False
    #: send these pieces with chunked encoding, ``chunk_delay`` apart
    chunks: list[bytes] | None = None
    chunk_delay: float = 0.0
    #: send the status line and headers ``trickle_size`` bytes at a time, this many seconds apart
    header_trickle: float = 0.0
    #: send the body ``trickle_size`` bytes at a time, this many seconds apart
    trickle: float = 0.0
    trickle_size: int = 1
    #: declare the whole body's length but send only this many bytes, then close
    truncate_to: int | None = None
    #: the body is already gzip data: say so in Content-Encoding
    gzipped: bool = False
    #: instead of ``body``: this many zero bytes, generated while sending
    zeros: int = 0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain")
        return json.dumps(self.body).encode(), "application/json"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: the client's (host, port): one per connection it opened
    peer: tuple[str, int] = ("", 0)

    def json(self) -> Any:
        return json.loads(self.body)


Script = Union[Reply, list, Callable[["Recorded"], Reply]]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (what fault and timeout tests do) is no error of the server's."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class ScriptedServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[Recorded] = []
        self._routes: dict[str, Script] = {}
        self._lock = threading.Lock()
        self.closed_early = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else every answer waits ~40 ms for a delayed ACK

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                  tuple(self.client_address[:2]))
                with server._lock:
                    server.requests.append(record)
                reply = server._next(record)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.chunks is not None:
                    self._stream(reply)
                    return
                data, ctype = reply.encoded()
                length = reply.zeros or len(data)
                head = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}", f"Content-Type: {ctype}"]
                head += [f"{k}: {v}" for k, v in reply.headers.items() if k.lower() != "content-type"]
                if reply.gzipped:
                    head.append("Content-Encoding: gzip")
                head.append(f"Content-Length: {length}")
                try:
                    self._send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"), reply.header_trickle, reply.trickle_size)
                    if reply.zeros:
                        block = bytes(1 << 16)
                        for start in range(0, reply.zeros, len(block)):
                            self.wfile.write(block[: reply.zeros - start])
                    elif reply.truncate_to is not None:
                        self._send(data[: reply.truncate_to], reply.trickle, reply.trickle_size)
                        self.close_connection = True
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                    else:
                        self._send(data, reply.trickle, reply.trickle_size)
                except (BrokenPipeError, ConnectionResetError, OSError):  # the client gave up (a timeout test)
                    server.closed_early.set()
                    self.close_connection = True

            def _send(self, data: bytes, pause: float, size: int) -> None:
                if not pause:
                    self.wfile.write(data)
                    return
                for start in range(0, len(data), size):
                    self.wfile.write(data[start : start + size])
                    self.wfile.flush()
                    time.sleep(pause)

            def _stream(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.headers.get("Content-Type", "text/event-stream"))
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for piece in reply.chunks or []:
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.flush()
                        if reply.chunk_delay:
                            time.sleep(reply.chunk_delay)
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    server.closed_early.set()
                    self.close_connection = True

            do_POST = _handle
            do_GET = _handle

        self._httpd = _QuietServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def on(self, path: str, script: Script) -> "ScriptedServer":
        """Answer ``path`` (exact, without query) with a reply, a list (in turn, the last
        repeating) or a function of the recorded request."""
        self._routes[path] = list(script) if isinstance(script, list) else script
        return self

    def _next(self, record: Recorded) -> Reply:
        path = record.path.split("?")[0]
        script = self._routes.get(path, self._routes.get("*"))
        if script is None:
            return Reply(404, {"error": f"no script for {path}"})
        if isinstance(script, list):
            with self._lock:
                return script.pop(0) if len(script) > 1 else script[0]
        if callable(script):
            return script(record)
        return script

    def start(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "ScriptedServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class ConcurrencyProbe:
    """A script that answers ``reply`` after ``delay`` seconds and records the most requests it
    was ever handling at once (``peak``)."""

    def __init__(self, reply: Reply, delay: float) -> None:
        self.reply = reply
        self.delay = delay
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, _: Recorded) -> Reply:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.delay)
        with self._lock:
            self.active -= 1
        return self.reply


def sse(*payloads: Any, done: bool = False, spaced: bool = True) -> list[bytes]:
    """Server-sent events, one chunk each: ``data: {json}\\n\\n``."""
    prefix = b"data: " if spaced else b"data:"
    chunks = [prefix + (p if isinstance(p, bytes) else json.dumps(p).encode()) + b"\n\n" for p in payloads]
    if done:
        chunks.append(prefix + b"[DONE]\n\n")
    return chunks
