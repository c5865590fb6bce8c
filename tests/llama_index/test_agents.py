"""A LlamaIndex agent on hfbridge: ``FunctionAgent`` with HFInferenceChat (SmolLM2-135M on
``hfbridge serve``) holding hfbridge's own task tools, completing a request that needs a tool.
Replays cassettes recorded from the embedded server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult

from hfbridge.llama_index import HFInferenceChat, HFInferenceToolSpec
from hfbridge.samples import SPEECH_TRANSCRIPT, sample_speech

from .conftest import BASE_URL, LLM_MODEL

pytestmark = pytest.mark.hf_cassette

ASK = "Transcribe the audio file speech.flac and tell me what the man said."
SYSTEM = "You are a helpful assistant with tools. When a tool has answered, tell the user what it returned, quoting it."


@pytest.mark.parametrize("streaming", [True, False], ids=["streamed", "whole"])
def test_a_function_agent_calls_the_speech_tool_and_answers_with_its_words(streaming: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "speech.flac").write_bytes(sample_speech())
    monkeypatch.chdir(tmp_path)
    llm = HFInferenceChat(base_url=BASE_URL, model_name=LLM_MODEL, temperature=0, max_tokens=96, answer_after_tool_results=True)
    spec = HFInferenceToolSpec(BASE_URL, models={"automatic-speech-recognition": "openai/whisper-tiny.en"},
                               tasks=["automatic-speech-recognition", "text-to-speech", "summarization"], allowed_dirs=[str(tmp_path)])
    # one call at a time, said explicitly: llama-index-core 0.14.5's non-streamed turn does not
    # pass the agent's allow_parallel_tool_calls on (0.14.25 does), so only this sends one request
    # at both ends of the supported range
    agent = FunctionAgent(tools=spec.to_tool_list(), llm=llm, system_prompt=SYSTEM, initial_tool_choice="required",
                          streaming=streaming, allow_parallel_tool_calls=False)

    async def run() -> tuple[Any, list[ToolCallResult]]:
        handler = agent.run(ASK)
        results = [event async for event in handler.stream_events() if isinstance(event, ToolCallResult)]
        return await handler, results

    try:
        answer, results = asyncio.run(run())
    finally:
        spec.close()
        llm.close()
    (result,) = results
    assert result.tool_name == "automatic_speech_recognition" and result.tool_kwargs == {"audio": "speech.flac"}
    assert "universe" in result.tool_output.content.lower() and not result.tool_output.is_error
    words = [w for w in SPEECH_TRANSCRIPT.split() if len(w) > 3]
    assert all(w in str(answer).lower() for w in words), (str(answer), words)
