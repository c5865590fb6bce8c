"""Bounds that are not about time: connections per client, answer sizes (compressed and not),
event-stream lines; and what a failed connection says."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hfbridge import APIConnectionError, APITimeoutError, AsyncInferenceClient, InferenceClient, InvalidInputError
from hfbridge.errors import ResponseTooLargeError, _shorten, transport_error
from hfbridge.streaming import SSEDecoder
from tests.scripted_server import ConcurrencyProbe, Reply, ScriptedServer

from .faults import gzip_bomb

M = "org/model"
ROUTE = f"/models/{M}/text-classification"
OK = Reply(body=[[{"label": "POSITIVE", "score": 0.9}]])

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


def test_threads_sharing_a_client_never_open_more_connections_than_max_concurrency() -> None:
    probe = ConcurrencyProbe(OK, delay=0.002)
    with ScriptedServer() as server, InferenceClient(server.url, token=False, max_concurrency=16) as client:
        server.on(ROUTE, probe)
        with ThreadPoolExecutor(max_workers=64) as pool:
            results = list(pool.map(lambda i: client.text_classification(f"x{i}", model=M), range(1200)))
        connections = {r.peer for r in server.requests}
    assert len(results) == 1200 and all(r[0].label == "POSITIVE" for r in results)
    assert len(connections) <= 16, f"{len(connections)} connections for a pool of 16"
    assert probe.peak <= 16


def test_waiting_for_a_free_connection_is_bounded_by_the_timeout() -> None:
    with ScriptedServer() as server, InferenceClient(server.url, token=False, max_concurrency=1, timeout=0.3, max_retries=0) as client:
        server.on(ROUTE, Reply(body=OK.body, delay=1.5))
        holder = threading.Thread(target=lambda: pytest.raises(APITimeoutError, client.text_classification, "slow", model=M))
        holder.start()
        time.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            client.text_classification("waits", model=M)
        assert time.monotonic() - started < 1.0
        holder.join()


def _call(kind: str, url: str, limit: int) -> Any:
    if kind == "sync":
        with InferenceClient(url, token=False, max_response_bytes=limit, max_retries=0) as client:
            return client.text_classification("x", model=M)

    async def main() -> Any:
        async with AsyncInferenceClient(url, token=False, max_response_bytes=limit, max_retries=0) as client:
            return await client.text_classification("x", model=M)

    return asyncio.run(main())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_gzip_bomb_is_refused_early_in_bounded_memory(kind: str) -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 300 * 1024
    with ScriptedServer() as server:
        server.on(ROUTE, Reply(body=bomb, gzipped=True, headers={"Content-Type": "application/json"}))
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLargeError, match="after decompression") as info:
                _call(kind, server.url, 1024 * 1024)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert info.value.limit == 1024 * 1024
    assert peak < 24 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB for a 1 MiB limit (the bomb inflates to 256 MiB)"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_limit_is_per_client_and_answers_under_it_pass(kind: str) -> None:
    with ScriptedServer() as server:
        server.on(ROUTE, OK)
        assert _call(kind, server.url, 1000)[0].label == "POSITIVE"
        with pytest.raises(ResponseTooLargeError, match="Content-Length"):
            _call(kind, server.url, 10)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "64MB", True])
def test_max_response_bytes_must_be_a_positive_whole_number(bad: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        InferenceClient("http://127.0.0.1:9", max_response_bytes=bad)
    assert info.value.field == "max_response_bytes"


class _CountingPattern:
    """Wraps the decoder's line-end pattern to count the bytes each search may look at."""

    def __init__(self, pattern: Any) -> None:
        self.pattern = pattern
        self.scanned = 0

    def search(self, buffer: Any, pos: int) -> Any:
        self.scanned += len(buffer) - pos
        return self.pattern.search(buffer, pos)


@pytest.mark.parametrize("piece", [1, 7, 64])
def test_sse_decoding_looks_at_each_byte_a_bounded_number_of_times(piece: int, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = _CountingPattern(SSEDecoder._LINE_END)
    monkeypatch.setattr(SSEDecoder, "_LINE_END", counter)
    stream = b"".join(b"data: " + b"x" * n + b"\n\n" for n in (10, 50_000, 3, 200_000, 0))
    decoder = SSEDecoder()
    events = [e for i in range(0, len(stream), piece) for e in decoder.feed(stream[i : i + piece])]
    assert [len(e.data) for e in events] == [10, 50_000, 3, 200_000, 0]
    assert counter.scanned <= 3 * len(stream), f"{counter.scanned} bytes scanned for {len(stream)} fed"


def test_sse_lines_and_events_are_bounded() -> None:
    with pytest.raises(ResponseTooLargeError, match="line"):
        SSEDecoder(max_line_bytes=1000).feed(b"data: " + b"x" * 2000)
    with pytest.raises(ResponseTooLargeError, match="event"):  # many short data lines, no blank line
        SSEDecoder(max_line_bytes=1000).feed(b"data: xxxxxxxxxx\n" * 200)
    decoder = SSEDecoder(max_line_bytes=1000)
    assert len(decoder.feed(b"data: " + b"x" * 900 + b"\r\n\r\n" * 3)) == 1  # within the bound: fine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_refused_local_connection_says_how_to_start_the_server(kind: str) -> None:
    port = _free_port()
    with pytest.raises(APIConnectionError) as info:
        _call(kind, f"http://127.0.0.1:{port}", 1000)
    assert not isinstance(info.value, APITimeoutError)
    assert f"hfbridge serve --port {port}" in str(info.value) and "not running" in str(info.value).replace("no server is running", "not running")


@pytest.mark.parametrize(("url", "hint"), [
    ("http://127.0.0.1:8000/models/x", "hfbridge serve --port 8000"),
    ("http://localhost/models/x", "hfbridge serve --port 80"),
    ("http://[::1]:9000/x", "hfbridge serve --port 9000"),
    ("https://10.1.2.3:8443/x", None),  # not this machine: no advice about a local server
    ("https://router.huggingface.co/hf-inference/models/x", None),
])
def test_refused_connection_messages(url: str, hint: str | None) -> None:
    cause = ConnectionRefusedError(111, "Connection refused")
    wrapper = OSError("HTTPConnectionPool(host=...): Max retries exceeded (Caused by NewConnectionError(...))")
    wrapper.__cause__ = cause
    message = str(transport_error(wrapper, url, timed_out=False))
    if hint:
        assert hint in message and "no server is running" in message
    else:
        assert "hfbridge serve" not in message and "Connection refused" in message


def test_long_transport_messages_are_cut_between_words() -> None:
    text = "Connection reset by peer while reading the response headers of " + " ".join(f"word{i}" for i in range(200))
    short = _shorten(text)
    assert len(short) <= 304 and short.endswith(" ...")
    kept = short[: -len(" ...")]
    assert text.startswith(kept) and text[len(kept)] == " "  # the cut falls on a space
    assert _shorten("short text") == "short text"
