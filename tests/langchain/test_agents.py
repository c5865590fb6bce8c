"""A LangChain agent on hfbridge: ``create_agent`` with ChatHFInference (SmolLM2-135M on
``hfbridge serve``) holding hfbridge's own task tools, completing a request that needs a tool.
Replays cassettes recorded from the embedded server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage

from hfbridge.langchain import ChatHFInference, HFInferenceToolkit
from hfbridge.langchain.agents import ToolThenAnswer
from hfbridge.samples import SPEECH_TRANSCRIPT, sample_speech

from .conftest import BASE_URL, LLM_MODEL

pytestmark = pytest.mark.hf_cassette

ASK = "Transcribe the audio file speech.flac and tell me what the man said."
SYSTEM = "You are a helpful assistant with tools. When a tool has answered, tell the user what it returned, quoting it."


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "speech.flac").write_bytes(sample_speech())
    monkeypatch.chdir(tmp_path)  # the user names the file as it is in their folder
    model = ChatHFInference(base_url=BASE_URL, model=LLM_MODEL, temperature=0, max_tokens=96)
    toolkit = HFInferenceToolkit(base_url=BASE_URL, models={"automatic-speech-recognition": "openai/whisper-tiny.en"},
                                 tasks=["automatic-speech-recognition", "text-to-speech", "summarization"], allowed_dirs=[str(tmp_path)])
    yield create_agent(model, toolkit.get_tools(), system_prompt=SYSTEM, middleware=[ToolThenAnswer()])
    toolkit.close()
    model.close()


def _check(messages: list) -> None:
    (call,) = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    assert call["name"] == "automatic_speech_recognition" and call["args"] == {"audio": "speech.flac"}
    (result,) = [m for m in messages if isinstance(m, ToolMessage)]
    assert "universe" in result.content.lower()
    answer = messages[-1]
    assert isinstance(answer, AIMessage) and not answer.tool_calls
    # the words the man said, from the transcript, are in the agent's answer
    words = [w for w in SPEECH_TRANSCRIPT.lower().replace(",", "").replace(".", "").split() if len(w) > 3]
    assert all(w in answer.content.lower() for w in words), (answer.content, words)


def test_the_agent_calls_the_speech_tool_and_answers_with_its_words(agent) -> None:
    _check(agent.invoke({"messages": [("user", ASK)]})["messages"])


def test_the_same_agent_async(agent) -> None:
    async def run() -> list:
        return (await agent.ainvoke({"messages": [("user", ASK)]}))["messages"]

    _check(asyncio.run(run()))
