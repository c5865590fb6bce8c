"""The token never shows, whatever its shape: not in a DEBUG log line, a repr, an error message or
attribute, a pickled error, a validation error of an adapter, nor a recorded cassette, even when
the server echoes the request (its Authorization header and body) back in its answers.

Tokens of two shapes no pattern would guess: an opaque ``tok-...`` and a JWT."""

from __future__ import annotations

import asyncio
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hfbridge import AsyncInferenceClient, InferenceClient, InferenceError, Task
from hfbridge.langchain import TOOL_CLASSES, HFInferenceEmbeddings, HFInferenceLLM, HFInferenceToolkit
from hfbridge.llama_index import HFInferenceEmbedding, HFInferenceToolSpec
from hfbridge.llama_index import HFInferenceLLM as LlamaIndexLLM
from hfbridge.testing import make_vcr
from tests.scripted_server import Recorded, Reply, ScriptedServer, sse

M = "org/model"
TOKENS = [
    "tok-3f9Q7xLm2Rk8Vn4Wp6Zb1Yc5Hd0Tg",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJoZmJyaWRnZSJ9.c2lnbmF0dXJlLW5ldmVyLXRvLWJlLXNlZW4",
]


def _echo(record: Recorded) -> Reply:
    """A server that puts the request in its answers: a 400 quoting the Authorization header and
    body, an error event in a stream, and the same in a header."""
    auth = record.headers.get("authorization", "")
    echo = f"rejected request; headers: Authorization: {auth}; body: {record.body.decode(errors='replace')}"
    headers = {"X-Echo": auth, "X-Error-Message": echo}
    if b'"stream":true' in record.body:
        return Reply(chunks=sse({"error": echo}), headers=headers)
    return Reply(400, {"error": echo, "request": {"authorization": auth}}, headers=headers)


def _leaks(token: str, *things: Any) -> list[str]:
    return [repr(t)[:120] for t in things if token in (t if isinstance(t, str) else repr(t))]


def _error_views(error: BaseException) -> list[Any]:
    return [str(error), repr(error), error.args, vars(error), pickle.dumps(error).decode("latin-1"),
            str(pickle.loads(pickle.dumps(error)))]


@pytest.fixture(params=TOKENS, ids=["opaque", "jwt"])
def token(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def echo_server() -> Any:
    with ScriptedServer() as server:
        server.on("*", _echo)
        yield server


def test_errors_of_an_echoing_server_and_debug_logs(token: str, echo_server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: hfbridge, urllib3, aiohttp, asyncio
    errors: list[BaseException] = []
    with InferenceClient(echo_server.url, token=token, max_retries=0) as client:
        for call in (lambda: client.feature_extraction("a", model=M),
                     lambda: list(client.text_generation("hi", model=M, stream=True))):
            with pytest.raises(InferenceError) as info:
                call()
            errors.append(info.value)

    async def run_async() -> None:
        async with AsyncInferenceClient(echo_server.url, token=token, max_retries=0) as client:
            with pytest.raises(InferenceError) as info:
                await client.feature_extraction("a", model=M)
            errors.append(info.value)
            with pytest.raises(InferenceError) as info:
                async for _ in client.text_generation("hi", model=M, stream=True):
                    pass
            errors.append(info.value)

    asyncio.run(run_async())
    assert echo_server.requests[0].headers["authorization"] == f"Bearer {token}"  # it was sent, and echoed
    assert "<redacted>" in str(errors[0]) and "<redacted>" in str(errors[1])
    for error in errors:
        assert not _leaks(token, *_error_views(error)), error
    assert token not in caplog.text


def test_adapters_errors_reprs_and_validation_errors(token: str, echo_server: ScriptedServer) -> None:
    url = echo_server.url
    adapters = [
        HFInferenceLLM(base_url=url, token=token, model=M, max_retries=0),
        HFInferenceEmbeddings(base_url=url, token=token, model=M, max_retries=0),
        TOOL_CLASSES[Task.TEXT_CLASSIFICATION](base_url=url, token=token, model=M, max_retries=0),
        HFInferenceToolkit(base_url=url, token=token, tasks=["text-classification"], max_retries=0),
        LlamaIndexLLM(base_url=url, token=token, model_name=M, max_retries=0),
        HFInferenceEmbedding(base_url=url, token=token, model_name=M, max_retries=0),
        HFInferenceToolSpec(url, token=token, tasks=["text-classification"], max_retries=0),
    ]
    views: list[Any] = [repr(a) for a in adapters] + [str(a) for a in adapters] + [repr(a.clients.sync) for a in adapters]
    views += [repr(t) for t in adapters[3].get_tools()]
    for call in (lambda: adapters[0].invoke("hi"), lambda: adapters[1].embed_query("a"), lambda: adapters[2].invoke({"text": "x"}),
                 lambda: adapters[4].complete("hi"), lambda: adapters[5].get_text_embedding("a"),
                 lambda: adapters[6].to_tool_list()[0].call(text="x")):
        with pytest.raises(InferenceError) as info:
            call()
        views += _error_views(info.value)
    for adapter in adapters:
        adapter.close()

    bad_settings = [  # each fails as a whole-model error, whose input pydantic prints
        lambda: HFInferenceLLM(base_url="ftp://x", token=token),
        lambda: HFInferenceEmbeddings(base_url="ftp://x", token=token),
        lambda: TOOL_CLASSES[Task.FILL_MASK](base_url="ftp://x", token=token),
        lambda: HFInferenceToolkit(base_url="https://router.huggingface.co/hf-inference", token=token, tasks=["fill-mask"]),
        lambda: LlamaIndexLLM(base_url="ftp://x", token=token),
        lambda: HFInferenceEmbedding(base_url="ftp://x", token=token),
    ]
    for make in bad_settings:
        with pytest.raises(ValidationError) as info:
            make()
        error = info.value
        assert "input_value" in str(error)  # the input is still shown, only the token is not
        views += [str(error), repr(error), str(error.errors()), error.json(), error.__context__, error.__cause__]
    assert not _leaks(token, *views)


def test_recorded_cassettes_hold_no_token(token: str, echo_server: ScriptedServer, tmp_path: Path) -> None:
    with ScriptedServer() as server:
        server.on("*", lambda r: Reply(body=[[{"label": f"saw {r.headers.get('authorization')}", "score": 1.0}]],
                                       headers={"X-Echo": r.headers.get("authorization", "")}))
        with make_vcr(tmp_path, "once").use_cassette("echo.yaml"):
            with InferenceClient(server.url, token=token) as client:
                labels = client.text_classification("x", model=M)
            with pytest.raises(InferenceError):
                InferenceClient(echo_server.url, token=token, max_retries=0).text_classification("x", model=M)
        assert token in labels[0].label  # the live answer did echo it
    raw = (tmp_path / "echo.yaml").read_text()
    assert "<HF_TOKEN>" in raw and token not in raw
    # and the scrubbed cassette still replays
    with make_vcr(tmp_path, "none").use_cassette("echo.yaml"):
        with InferenceClient(server.url, token=token) as client:
            assert client.text_classification("x", model=M)[0].label == "saw Bearer <HF_TOKEN>"
