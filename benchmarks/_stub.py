"""A fast stub of the Inference API on 127.0.0.1, so client benchmarks time the clients.

It runs in its own process (``StubServer`` starts it): a stub on a thread of the benchmark's
process would share the GIL with the client it serves and add its own CPU to the client's
``time.process_time``. It is a bare asyncio HTTP/1.1 server (keep-alive, Content-Length or
chunked bodies), no framework and no model; every answer is precomputed bytes. It answers each
client's request shape:

- ``POST .../chat/completions`` (hosted ``/models/{id}/v1/chat/completions``, TGI, OpenAI):
  one chat completion; a call of ``get_weather`` when the request offers tools and its last
  message is the user's (the first turn of a tool-calling round trip);
- ``POST`` to a path naming ``feature-extraction`` or ``sentence-similarity`` (spec
  ``/models/{id}/feature-extraction``, hosted ``/models/{id}/pipeline/feature-extraction``)
  or ending in ``/embed`` (TEI): one 384-float vector for a string input, a list of n for a
  list of n texts;
- any other ``POST`` (hosted ``/models/{id}``, spec ``/models/{id}/text-generation``, a TGI
  root): ``[{"generated_text": ...}]``;
- ``GET`` anything else: 404, as a server without TGI's ``/info`` answers.

It counts what it saw: ``GET /_stats`` answers the requests (by kind) and the TCP connections
that carried requests since ``POST /_reset``; those two calls are not counted.

    python benchmarks/_stub.py          # prints "READY http://127.0.0.1:PORT", serves until stdin closes
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import urllib.request
from typing import Any

try:
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a core dependency of hfbridge
    _loads = json.loads

DIM = 384
GENERATED_TEXT = " Paris is the capital and largest city of France, on the Seine."
CHAT_COMPLETION = {
    "id": "stub-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "stub",
    "system_fingerprint": "stub",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": GENERATED_TEXT.strip()},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 14, "total_tokens": 26},
}

#: the answer to a chat request that offers tools and ends with the user's message: one call
TOOL_CALL = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
TOOL_CALL_COMPLETION = {
    **CHAT_COMPLETION,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_stub_1", "type": "function", "function": TOOL_CALL}]}, "logprobs": None, "finish_reason": "tool_calls"}],
}


def _wants_a_call(body: bytes) -> bool:
    """Tools offered and the user spoke last: a tool-calling round trip's first turn."""
    if b'"tools"' not in body:
        return False
    try:
        messages = _loads(body)["messages"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(messages) and messages[-1].get("role") == "user"


def _vectors(count: int) -> list[bytes]:
    """``count`` distinct 384-d vectors, each already JSON-encoded (float32-like precision)."""
    rng = random.Random(0)
    return [json.dumps([round(rng.uniform(-0.2, 0.2), 8) for _ in range(DIM)]).encode() for _ in range(count)]


class _Answers:
    """Precomputed bodies; a list of n vectors is joined once per n and cached."""

    def __init__(self, distinct: int = 64) -> None:
        self.vectors = _vectors(distinct)
        self.lists: dict[int, bytes] = {}
        self.generation = json.dumps([{"generated_text": GENERATED_TEXT}]).encode()
        self.chat = json.dumps(CHAT_COMPLETION).encode()
        self.tool_call = json.dumps(TOOL_CALL_COMPLETION).encode()
        self.not_found = b'{"error": "not found"}'

    def embeddings(self, inputs: Any) -> bytes:
        if isinstance(inputs, str):
            return self.vectors[0]
        n = len(inputs)
        body = self.lists.get(n)
        if body is None:
            body = self.lists[n] = b"[" + b",".join(self.vectors[i % len(self.vectors)] for i in range(n)) + b"]"
        return body


class _Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        #: a connection is counted once per window, when it carries its first counted request,
        #: so the control calls' own connections and a kept-alive pool are both counted right
        self.epoch = getattr(self, "epoch", -1) + 1
        self.connections = 0
        self.requests = {"embeddings": 0, "generation": 0, "chat": 0, "other": 0}
        self.texts = 0

    def as_json(self) -> bytes:
        return json.dumps({"connections": self.connections, "requests": sum(self.requests.values()),
                           "by_kind": self.requests, "texts": self.texts}).encode()


def _reason(status: int) -> bytes:
    return {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}.get(status, b"OK")


class _Connection(asyncio.Protocol):
    def __init__(self, answers: _Answers, stats: _Stats) -> None:
        self.answers = answers
        self.stats = stats
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        #: the counting window this connection was last counted in (see _Stats.epoch)
        self.counted_in = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and self._one_request():
            pass

    def _one_request(self) -> bool:
        """Answer the first complete request in the buffer; False when none is complete yet."""
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return False
        lines = bytes(self.buffer[:head_end]).decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ", 2)[:2]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = head_end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            decoded = _dechunk(self.buffer, start)
            if decoded is None:
                return False
            body, end = decoded
        else:
            end = start + int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < end:
                return False
            body = bytes(self.buffer[start:end])
        del self.buffer[:end]
        status, payload = self._answer(method, target.split("?", 1)[0], body)
        keep_alive = headers.get("connection", "").lower() != "close"
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
            % (status, _reason(status), len(payload), b"" if keep_alive else b"connection: close\r\n")
            + payload
        )
        if not keep_alive:
            self.transport.close()
            self.transport = None
        return True

    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if path == "/_stats":
            return 200, self.stats.as_json()
        if path == "/_reset":
            self.stats.reset()
            return 200, b"{}"
        if self.counted_in != self.stats.epoch:
            self.counted_in = self.stats.epoch
            self.stats.connections += 1
        if method != "POST":
            self.stats.requests["other"] += 1
            return 404, self.answers.not_found
        if path.endswith("/chat/completions"):
            self.stats.requests["chat"] += 1
            return 200, self.answers.tool_call if _wants_a_call(body) else self.answers.chat
        if "feature-extraction" in path or "sentence-similarity" in path or path.endswith("/embed"):
            try:
                inputs = _loads(body)["inputs"]
            except (ValueError, KeyError, TypeError):
                return 400, b'{"error": "Error in `inputs`: a string or a list of strings is required"}'
            self.stats.requests["embeddings"] += 1
            self.stats.texts += 1 if isinstance(inputs, str) else len(inputs)
            return 200, self.answers.embeddings(inputs)
        self.stats.requests["generation"] += 1
        return 200, self.answers.generation

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _dechunk(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    body = bytearray()
    at = start
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";", 1)[0], 16)
        chunk_start = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", line_end)
            if trailer_end < 0:
                return None
            return bytes(body), trailer_end + 4
        if len(buffer) < chunk_start + size + 2:
            return None
        body += buffer[chunk_start : chunk_start + size]
        at = chunk_start + size + 2


async def _serve(port: int) -> None:
    answers, stats = _Answers(), _Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(answers, stats), "127.0.0.1", port, backlog=4096)
    print(f"READY http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stdin_closed = asyncio.Event()
    # the parent holds our stdin: when it exits (or closes it), so do we; no orphan stubs
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stdin_closed.set)), daemon=True).start()
    async with server:
        await stdin_closed.wait()


class ReadyProcess:
    """A server in a child process that prints ``READY <url>`` once it listens and stops when
    its stdin closes (so it never outlives the benchmark, even when that one is killed)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, what: str = "server") -> None:
        self.argv, self.env, self.what = argv, env, what
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> "ReadyProcess":
        self.process = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("READY "):
            self.__exit__()
            raise RuntimeError(f"the {self.what} did not start (it said {line!r})")
        self.url = line.split(" ", 1)[1]
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.process is None:
            return
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.process = None


class StubServer(ReadyProcess):
    """The stub in a child process: ``with StubServer() as stub: ... stub.url``.

    ``stats()`` and ``reset()`` read and clear its counters between timed runs."""

    def __init__(self, max_batch: int | None = None) -> None:  # max_batch: kept for older scripts
        super().__init__([sys.executable, os.path.abspath(__file__)], what="stub server")

    def __enter__(self) -> "StubServer":
        super().__enter__()
        return self

    def _control(self, method: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return self._control("GET", "/_stats")

    def reset(self) -> None:
        self._control("POST", "/_reset")


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
