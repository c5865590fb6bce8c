"""A fast local stub of the Inference API's embedding route, so benchmarks time the client.

Serves precomputed bodies from a raw ASGI app under uvicorn (no framework, no model): the answer
for a batch of n texts is n 384-float vectors, encoded once up front.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from typing import Any

DIM = 384


def _bodies(max_batch: int) -> dict[int, bytes]:
    rng = random.Random(0)
    vectors = [[rng.uniform(-0.2, 0.2) for _ in range(DIM)] for _ in range(max_batch)]
    return {n: json.dumps(vectors[:n]).encode() for n in range(1, max_batch + 1)}


class StubServer:
    def __init__(self, max_batch: int = 64) -> None:
        import uvicorn

        bodies = _bodies(max_batch)

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            raw = b""
            while True:
                message = await receive()
                raw += message.get("body", b"")
                if not message.get("more_body"):
                    break
            inputs = json.loads(raw)["inputs"]
            body = bodies[1 if isinstance(inputs, str) else len(inputs)]
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off", backlog=4096))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "StubServer":
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(5)
