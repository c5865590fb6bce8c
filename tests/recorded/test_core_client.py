"""The core client against recordings of ``hfbridge serve``: every task, sync and async,
streaming, and the error answers (400, 404, 503-then-200, 429) as the real server gives them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from hfbridge import (
    AsyncInferenceClient,
    BadRequestError,
    BinaryOutput,
    InferenceClient,
    ModelNotFoundError,
    RateLimitError,
    RetryPolicy,
    Task,
)
from hfbridge import schemas as s
from hfbridge.tasks import TASKS
from hfbridge.testing import DEFAULT_REPLAY_BASE_URL

from ..langchain.test_tools import ALL_EXAMPLES as EXAMPLES

pytestmark = pytest.mark.hf_cassette

BASE_URL = os.environ.get("HFBRIDGE_BASE_URL", DEFAULT_REPLAY_BASE_URL)
#: servers of their own, started only while recording (their answers are in the cassettes)
LOADING_URL = "http://127.0.0.1:8766"
LIMITED_URL = "http://127.0.0.1:8767"

ARGS: dict[Task, dict[str, Any]] = {**EXAMPLES, Task.CONVERSATIONAL: {"messages": "What is the capital of France?", "max_tokens": 12}}
ARGS[Task.TEXT_GENERATION] = {"prompt": "The capital of France is", "max_new_tokens": 6}

CHECKS: dict[Task, Callable[[Any], bool]] = {
    Task.TEXT_GENERATION: lambda r: isinstance(r, s.TextGenerationResult) and r.generated_text,
    Task.CONVERSATIONAL: lambda r: "Paris" in r.choices[0].message.content,
    Task.FEATURE_EXTRACTION: lambda r: len(r) == 384,
    Task.SENTENCE_SIMILARITY: lambda r: r[0] > r[1],
    Task.AUTOMATIC_SPEECH_RECOGNITION: lambda r: "universe" in r.text.lower(),
    Task.TEXT_TO_IMAGE: lambda r: isinstance(r, BinaryOutput) and r.to_pil().size == (64, 64),
    Task.TEXT_TO_SPEECH: lambda r: isinstance(r, BinaryOutput) and bytes(r[:4]) == b"fLaC",
    Task.DOCUMENT_QUESTION_ANSWERING: lambda r: len(r) == 1 and isinstance(r[0], s.DocumentQuestionAnsweringResult),
    Task.VISUAL_QUESTION_ANSWERING: lambda r: len(r) == 5 and r[0].score >= r[-1].score,
    Task.ZERO_SHOT_IMAGE_CLASSIFICATION: lambda r: sorted(c.label for c in r) == ["cat", "tree", "woman"],
    Task.AUDIO_TO_AUDIO: lambda r: bytes(r[0].audio()[:4]) == b"fLaC",
    Task.IMAGE_TO_IMAGE: lambda r: isinstance(r, BinaryOutput) and r.to_pil().size == (64, 64),  # the input's size
    Task.TABULAR_CLASSIFICATION: lambda r: r == ["setosa"],  # real: trained on the iris flowers
    Task.TABULAR_REGRESSION: lambda r: len(r) == 1 and isinstance(r[0], float),
    Task.TEXT_RANKING: lambda r: len(r) == 1 and r[0].index == 1,  # real MiniLM: the Eiffel Tower text first
}


def _positional(task: Task, args: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    args = dict(args)
    if task is Task.CONVERSATIONAL:
        return (args.pop("messages"),), args
    return (), args


@pytest.mark.parametrize("task", list(Task), ids=lambda t: t.value)
def test_every_task_sync_and_async(task: Task) -> None:
    positional, keywords = _positional(task, ARGS[task])
    with InferenceClient(BASE_URL) as client:
        sync_result = getattr(client, TASKS[task].method)(*positional, **keywords)

    async def run() -> Any:
        async with AsyncInferenceClient(BASE_URL) as aclient:
            return await getattr(aclient, TASKS[task].method)(*positional, **keywords)

    async_result = asyncio.run(run())
    assert CHECKS.get(task, lambda r: r is not None)(sync_result), sync_result
    if task is Task.CONVERSATIONAL:  # ids and timestamps differ per answer; the text does not
        assert async_result.choices[0].message.content == sync_result.choices[0].message.content
    else:
        assert async_result == sync_result


def test_streaming_sync_and_async() -> None:
    with InferenceClient(BASE_URL) as client:
        tokens = [o.token.text for o in client.text_generation("Once upon a time", max_new_tokens=8, stream=True)]
        chat = [c.choices[0].delta.content or "" for c in client.conversational("Say hello.", max_tokens=8, stream=True)]

    async def run() -> tuple[list[str], list[str]]:
        async with AsyncInferenceClient(BASE_URL) as aclient:
            atokens = [o.token.text async for o in aclient.text_generation("Once upon a time", max_new_tokens=8, stream=True)]
            achat = [c.choices[0].delta.content or "" async for c in aclient.conversational("Say hello.", max_tokens=8, stream=True)]
            return atokens, achat

    assert len(tokens) > 1 and asyncio.run(run()) == (tokens, chat)
    assert "".join(chat).strip()


def test_400_and_404_answers() -> None:
    with InferenceClient(BASE_URL) as client:
        with pytest.raises(BadRequestError) as bad:
            client.fill_mask("There is no mask token here.")
        assert bad.value.status_code == 400 and "mask token" in str(bad.value)
        with pytest.raises(ModelNotFoundError) as missing:
            client.fill_mask("Paris is the [MASK].", model="nobody/no-such-model")
        assert "nobody/no-such-model" in str(missing.value)


@pytest.fixture
def own_server(hf_recording: bool, tmp_path: Path) -> Iterator[Callable[..., None]]:
    started: list[Any] = []

    def start(url: str, **settings: Any) -> None:
        if not hf_recording:
            return  # replaying: the cassette holds the answers
        from hfbridge.server.app import ServerSettings
        from hfbridge.server.runner import EmbeddedServer

        port = int(url.rsplit(":", 1)[1])
        started.append(EmbeddedServer(ServerSettings(cache_dir=tmp_path / "cache", **settings), port=port).start())

    yield start
    for server in started:
        server.stop()


def test_503_while_loading_then_200(own_server: Callable[..., None]) -> None:
    own_server(LOADING_URL)  # an empty cache: the first request finds the model unloaded
    quick = RetryPolicy(max_loading_wait=0.5)
    with InferenceClient(LOADING_URL, retry=quick) as client:
        labels = client.text_classification("I like you")
    assert {label.label for label in labels} <= {"NEGATIVE", "POSITIVE"}


def test_429_with_retry_after(own_server: Callable[..., None]) -> None:
    own_server(LIMITED_URL, tokens=["hf_recording_only_token_000000000000"], rate_limit=1)
    with InferenceClient(LIMITED_URL, token="hf_recording_only_token_000000000000", retry=RetryPolicy(max_retry_after=5)) as client:
        client.fill_mask("Paris is the [MASK].", wait_for_model=True)
        with pytest.raises(RateLimitError) as limited:
            client.fill_mask("Berlin is the [MASK].")
    assert limited.value.retry_after is not None and limited.value.retry_after > 5
