"""Bodies and connections are bounded in size and in time: an over-limit body is refused as soon
as it passes the limit (chunked too), and a client that sends its headers or body too slowly is
answered 408 and disconnected. Raw sockets, so that nothing between the test and the server
buffers, retries or completes a request on its own."""

from __future__ import annotations

import select
import socket
import time
from typing import Any

from .conftest import SMALL_LIMITS

LIMIT = SMALL_LIMITS["max_body_bytes"]
#: the limit's own margin: what may sit in socket buffers and uvicorn's read-ahead (64 KiB) when
#: the server stops reading
SLACK = 8 * 1024 * 1024


def _connect(server: Any) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything until the server closes (or ``timeout``), tolerating a reset after its answer."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def _head(path: str, extra: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}\r\n".encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_a_declared_length_over_the_limit_is_413_before_the_body(limited_server: Any) -> None:
    with _connect(limited_server) as sock:
        sock.sendall(_head("/pipeline/feature-extraction", f"Content-Length: {LIMIT + 1}\r\n"))
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower()
    assert f"{LIMIT:,} bytes".encode() in answer


def test_a_chunked_body_over_the_limit_is_413(limited_server: Any) -> None:
    with _connect(limited_server) as sock:
        sock.sendall(_head("/pipeline/feature-extraction", "Transfer-Encoding: chunked\r\n"))
        piece = b"x" * 65536
        for _ in range(LIMIT // len(piece) + 1):
            sock.sendall(_chunk(piece))
        sock.sendall(b"0\r\n\r\n")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"larger than this server accepts" in answer and b"--max-body-bytes" in answer


def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(limited_server: Any) -> None:
    """Before, a 96 MiB chunked body was read in full before its 413 for a 64 MiB limit."""
    total = 64 * LIMIT
    piece = _chunk(b"x" * 65536)
    sent, answer = 0, b""
    with _connect(limited_server) as sock:
        sock.sendall(_head("/pipeline/feature-extraction", "Transfer-Encoding: chunked\r\n"))
        sock.settimeout(2)
        try:
            while sent < total:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered mid-body
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass  # it stopped reading (and closed): nothing more goes in
        answer = _read_all(sock)
    assert sent < LIMIT + SLACK < total, f"{sent:,} bytes were taken for a {LIMIT:,}-byte limit"
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_slow_headers_are_408_and_closed(limited_server: Any) -> None:
    timeout = SMALL_LIMITS["header_timeout"]
    with _connect(limited_server) as sock:
        sock.sendall(b"POST /pipeline/fill-mask HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        started = time.monotonic()
        answer = _read_all(sock, timeout=timeout + 10)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408") and b"headers did not arrive" in answer, answer[:200]
    assert waited < timeout + 10  # closed by the server, not by this test giving up


def test_a_connection_that_sends_nothing_is_closed(limited_server: Any) -> None:
    with _connect(limited_server) as sock:
        answer = _read_all(sock, timeout=SMALL_LIMITS["header_timeout"] + 10)
    assert answer.startswith(b"HTTP/1.1 408")


def test_headers_trickled_within_the_deadline_are_served(limited_server: Any) -> None:
    """The clock covers one request's head; a kept-alive connection gets a fresh one per request."""
    with _connect(limited_server) as sock:
        for _ in range(2):
            for part in (b"GET /health HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n", b"\r\n"):
                sock.sendall(part)
                time.sleep(SMALL_LIMITS["header_timeout"] / 5)
            sock.settimeout(10)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200") and b'"ok"' in answer
            time.sleep(SMALL_LIMITS["header_timeout"] * 1.5)  # idle between requests: keep-alive's business


def test_a_slow_body_is_408_and_closed(limited_server: Any) -> None:
    timeout = SMALL_LIMITS["body_timeout"]
    with _connect(limited_server) as sock:
        sock.sendall(_head("/pipeline/fill-mask", "Content-Length: 100\r\n") + b'{"inputs": ')
        answer = _read_all(sock, timeout=timeout + 10)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"body did not arrive within" in answer and b"connection: close" in answer.lower()


def test_a_chunked_body_that_stalls_is_408(limited_server: Any) -> None:
    with _connect(limited_server) as sock:
        sock.sendall(_head("/pipeline/fill-mask", "Transfer-Encoding: chunked\r\n") + _chunk(b'{"inputs": '))
        answer = _read_all(sock, timeout=SMALL_LIMITS["body_timeout"] + 10)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
