"""HFInferenceLLM for LlamaIndex: complete/chat, streaming, async, abandoned streams."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload, LlamaDebugHandler

from hfbridge import InvalidInputError
from hfbridge.llama_index import HFInferenceLLM

from .conftest import BASE_URL, LLM_MODEL

pytestmark = pytest.mark.hf_cassette

PROMPT = "The capital of France is"
MESSAGES = [ChatMessage(role=MessageRole.SYSTEM, content="You answer briefly."), ChatMessage(role=MessageRole.USER, content="Name a primary colour.")]


def make(**fields: Any) -> HFInferenceLLM:
    fields.setdefault("max_new_tokens", 10)
    return HFInferenceLLM(base_url=BASE_URL, model_name=LLM_MODEL, **fields)


def test_metadata() -> None:
    meta = make(max_new_tokens=77, context_window=4096).metadata
    assert (meta.model_name, meta.num_output, meta.context_window, meta.is_chat_model) == (LLM_MODEL, 77, 4096, False)


def test_complete_and_stream_complete_agree() -> None:
    llm = make()
    text = llm.complete(PROMPT).text
    pieces = list(llm.stream_complete(PROMPT))
    assert text.strip() and pieces[-1].text == text
    assert "".join(p.delta for p in pieces) == text


def test_chat_and_stream_chat() -> None:
    llm = make()
    reply = llm.chat(MESSAGES)
    assert reply.message.role == MessageRole.ASSISTANT and reply.message.content.strip()
    streamed = list(llm.stream_chat(MESSAGES))
    assert streamed[-1].message.content == reply.message.content


async def test_async_variants_match_sync() -> None:
    llm = make()
    assert (await llm.acomplete(PROMPT)).text == llm.complete(PROMPT).text
    pieces = [p async for p in await llm.astream_complete(PROMPT)]
    assert pieces[-1].text == llm.complete(PROMPT).text
    assert (await llm.achat(MESSAGES)).message.content == llm.chat(MESSAGES).message.content
    chats = [c async for c in await llm.astream_chat(MESSAGES)]
    assert chats[-1].message.content == llm.chat(MESSAGES).message.content


def test_stop_sequences() -> None:
    llm = make(max_new_tokens=20, stop=[","])
    text = llm.complete("Count from one to ten: one, two, three,").text
    assert "," not in text


def test_abandoned_stream_then_another_call_on_the_same_llm() -> None:
    llm = make(max_new_tokens=30)
    stream = llm.stream_complete("Write a long story about a dragon:")
    first = next(stream)
    assert first.delta
    stream.close()  # abandoned after one token
    assert llm.complete(PROMPT).text.strip()  # the shared client is still usable


async def test_abandoned_async_stream_then_another_call() -> None:
    llm = make(max_new_tokens=30)
    stream = await llm.astream_complete("Write a long story about a dragon:")
    async for piece in stream:
        assert piece.delta
        break
    await stream.aclose()
    assert (await llm.acomplete(PROMPT)).text.strip()


def test_callbacks_see_every_call() -> None:
    debug = LlamaDebugHandler()
    llm = make(callback_manager=CallbackManager([debug]))
    llm.complete(PROMPT)
    llm.chat(MESSAGES)
    starts = [start.payload for start, _ in debug.get_event_pairs(CBEventType.LLM)]
    assert any(EventPayload.PROMPT in p for p in starts)  # complete()
    assert any(EventPayload.MESSAGES in p for p in starts)  # chat() (which completes inside)


def test_empty_prompt_is_refused_before_sending() -> None:
    with pytest.raises(InvalidInputError):
        HFInferenceLLM(base_url="http://127.0.0.1:9", max_retries=0).complete("")
