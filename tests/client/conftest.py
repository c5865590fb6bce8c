"""Clients against a real scripted HTTP server on 127.0.0.1, sync and async through one face."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest

from hfbridge import AsyncInferenceClient, InferenceClient
from tests.scripted_server import ScriptedServer


class Runner:
    """Calls a sync or an async client the same way, so every test runs against both.

    The async client runs on one event loop per runner (as an application would)."""

    def __init__(self, kind: str, base_url: str, **settings: Any) -> None:
        self.kind = kind
        if kind == "sync":
            self.client: Any = InferenceClient(base_url, **settings)
            self.loop = None
        else:
            self.loop = asyncio.new_event_loop()
            self.client = AsyncInferenceClient(base_url, **settings)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if self.loop is None:
            return method
        return lambda *args, **kwargs: self.loop.run_until_complete(method(*args, **kwargs))

    def collect(self, name: str, *args: Any, limit: int | None = None, **kwargs: Any) -> list[Any]:
        """Consume a stream (``limit``: stop early after that many outputs)."""
        method = getattr(self.client, name)
        if self.loop is None:
            out = []
            stream = method(*args, stream=True, **kwargs)
            for item in stream:
                out.append(item)
                if limit is not None and len(out) >= limit:
                    stream.close()
                    break
            return out

        async def run() -> list[Any]:
            out = []
            stream = method(*args, stream=True, **kwargs)
            async for item in stream:
                out.append(item)
                if limit is not None and len(out) >= limit:
                    await stream.aclose()
                    break
            return out

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        if self.loop is None:
            self.client.close()
        else:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_client(kind: str) -> Iterator[Any]:
    runners: list[Runner] = []

    def make(base_url: str, **settings: Any) -> Runner:
        settings.setdefault("token", False)
        runner = Runner(kind, base_url, **settings)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.close()
