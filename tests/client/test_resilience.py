"""Retries, timeouts, dropped connections, streams stopped early and where the token goes,
all over real sockets, sync and async."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from typing import Any

import pytest

from hfbridge import (
    APIConnectionError,
    APITimeoutError,
    AsyncInferenceClient,
    AuthenticationError,
    ModelLoadingError,
    RateLimitError,
    ServerError,
)
from tests.scripted_server import ConcurrencyProbe, Reply, ScriptedServer, sse

M = "org/model"
ROUTE = f"/models/{M}/text-classification"
OK = Reply(body=[[{"label": "POSITIVE", "score": 0.9}]])
TOKEN = "hf_TestTokenThatMustNeverLeak0123456789"


def test_503_loading_then_200_sends_wait_for_model(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, [Reply(503, {"error": f"Model {M} is currently loading", "estimated_time": 0.05}), OK])
    result = make_client(server.url).text_classification("x", model=M)
    assert result[0].label == "POSITIVE"
    first, second = server.requests
    assert "options" not in first.json()
    assert second.json()["options"] == {"wait_for_model": True}


def test_503_loading_in_the_hosted_layout_sends_the_header(server: ScriptedServer, make_client: Any) -> None:
    server.on(f"/models/{M}", [Reply(503, {"error": "loading", "estimated_time": 0.01}), OK])
    make_client(server.url, layout="hosted").text_classification("x", model=M)
    assert "x-wait-for-model" not in server.requests[0].headers
    assert server.requests[1].headers["x-wait-for-model"] == "true"


def test_loading_that_never_ends_raises_after_the_retries(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, Reply(503, {"error": "Model is currently loading", "estimated_time": 0.01}))
    with pytest.raises(ModelLoadingError) as info:
        make_client(server.url, max_retries=2).text_classification("x", model=M)
    assert info.value.estimated_time == 0.01 and len(server.requests) == 3


@pytest.mark.parametrize("retry_after", ["0.05", "date"])
def test_429_waits_for_retry_after(retry_after: str, server: ScriptedServer, make_client: Any) -> None:
    value = email.utils.formatdate(time.time() + 1, usegmt=True) if retry_after == "date" else retry_after
    server.on(ROUTE, [Reply(429, {"error": "Rate limit reached"}, headers={"Retry-After": value}), OK])
    started = time.monotonic()
    make_client(server.url).text_classification("x", model=M)
    assert len(server.requests) == 2
    if retry_after == "0.05":
        assert time.monotonic() - started < 2.0


def test_429_with_a_long_retry_after_raises_at_once(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, Reply(429, {"error": "Rate limit reached"}, headers={"Retry-After": "3600"}))
    with pytest.raises(RateLimitError) as info:
        make_client(server.url).text_classification("x", model=M)
    assert info.value.retry_after == 3600 and len(server.requests) == 1


def test_500s_are_retried_then_succeed(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, [Reply(500, {"error": "boom"}), Reply(502, "Bad Gateway"), OK])
    assert make_client(server.url).text_classification("x", model=M)[0].score == 0.9
    assert len(server.requests) == 3


def test_500s_exhaust_the_retries(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, Reply(500, {"error": "boom"}))
    with pytest.raises(ServerError) as info:
        make_client(server.url, max_retries=2).text_classification("x", model=M)
    assert "boom" in str(info.value) and M in str(info.value)
    assert len(server.requests) == 3


def test_dropped_connection_is_retried(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, [Reply(drop=True), OK])
    assert make_client(server.url).text_classification("x", model=M)[0].label == "POSITIVE"
    assert len(server.requests) == 2


def test_connection_that_always_drops_raises_a_connection_error(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, Reply(drop=True))
    with pytest.raises(APIConnectionError):
        make_client(server.url, max_retries=1).text_classification("x", model=M)
    assert len(server.requests) == 2


def test_nothing_listening_is_a_connection_error(make_client: Any) -> None:
    with pytest.raises(APIConnectionError):
        make_client("http://127.0.0.1:9", max_retries=0).text_classification("x", model=M)


def test_stalled_server_hits_the_timeout(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, Reply(body=[[{"label": "late", "score": 1.0}]], delay=3.0))
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        make_client(server.url, timeout=0.3, max_retries=1).text_classification("x", model=M)
    assert time.monotonic() - started < 2.5  # two attempts of 0.3 s plus one backoff, not 6 s


def test_client_errors_are_not_retried(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, Reply(401, {"error": "Invalid credentials in Authorization header"}))
    with pytest.raises(AuthenticationError):
        make_client(server.url).text_classification("x", model=M)
    assert len(server.requests) == 1


def test_stream_stopped_early_releases_the_connection(server: ScriptedServer, make_client: Any) -> None:
    tokens = [{"token": {"id": i, "text": f"t{i} ", "logprob": 0.0, "special": False}, "generated_text": None, "details": None} for i in range(200)]
    server.on(f"/models/{M}/text-generation", Reply(chunks=sse(*tokens), chunk_delay=0.01))
    server.on(ROUTE, OK)
    client = make_client(server.url)
    outs = client.collect("text_generation", "x", model=M, limit=2)
    assert [o.token.text for o in outs] == ["t0 ", "t1 "]
    assert server.closed_early.wait(5.0), "the server kept streaming to a consumer that had stopped"
    assert client.text_classification("x", model=M)[0].label == "POSITIVE"  # the client is still usable


def test_the_token_never_leaves_the_base_urls_origin(make_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(32)
    with ScriptedServer() as api, ScriptedServer() as elsewhere:
        elsewhere.on("/cat.png", Reply(body=png, headers={"Content-Type": "image/png"}))
        elsewhere.on("/landing", OK)
        api.on(f"/models/{M}/object-detection", Reply(body=[]))
        api.on(ROUTE, Reply(307, b"", headers={"Location": f"{elsewhere.url}/landing"}))
        caplog.set_level(logging.DEBUG)
        client = make_client(api.url, token=TOKEN)
        client.object_detection(f"{elsewhere.url}/cat.png", model=M)
        client.text_classification("x", model=M)  # redirected to another origin
        assert api.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
        assert api.requests[0].body == png  # fetched by the client, sent as raw bytes
        assert [r.path for r in elsewhere.requests] == ["/cat.png", "/landing"]
        assert all("authorization" not in r.headers for r in elsewhere.requests)
        assert TOKEN not in repr(client.client) and TOKEN not in repr(client.client.config)
        assert TOKEN not in caplog.text


def test_token_is_not_in_error_messages(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, Reply(403, {"error": f"token {TOKEN} may not use this model"}))
    with pytest.raises(Exception) as info:
        make_client(server.url, token=TOKEN).text_classification("x", model=M)
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


def test_async_concurrency_is_bounded() -> None:
    probe = ConcurrencyProbe(OK, delay=0.1)

    async def main(url: str) -> list[Any]:
        async with AsyncInferenceClient(url, token=False, max_concurrency=3) as client:
            return await asyncio.gather(*(client.text_classification(f"x{i}", model=M) for i in range(12)))

    with ScriptedServer() as server:
        server.on(ROUTE, probe)
        results = asyncio.run(main(server.url))
    assert len(results) == 12 and probe.peak <= 3 and probe.peak >= 2


def test_async_client_survives_being_used_from_two_event_loops() -> None:
    with ScriptedServer() as server:
        server.on(ROUTE, OK)
        client = AsyncInferenceClient(server.url, token=False)
        first = asyncio.run(client.text_classification("a", model=M))
        second = asyncio.run(client.text_classification("b", model=M))  # a new loop: a new pool
        assert first == second
