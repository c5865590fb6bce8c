"""HFInferenceChat against a scripted server: chat and streams sync and async, tool calls in
and out, structured prediction, a FunctionAgent loop, callbacks. (The real model in the loop
is in test_agents.py against ``hfbridge serve``.)"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Iterator

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from hfbridge import InvalidInputError
from hfbridge.llama_index import HFInferenceChat
from tests.scripted_server import Reply, ScriptedServer, sse

M = "org/chat"
ROUTE = f"/models/{M}/v1/chat/completions"


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"It is sunny in {city}."


def get_time(zone: str) -> str:
    """The time in a time zone."""
    return "noon"


WEATHER = FunctionTool.from_defaults(get_weather)
TIME = FunctionTool.from_defaults(get_time)


def answer(content: str | None = None, calls: list[dict] | None = None, finish: str = "stop") -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": M,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}


def call(name: str, args: dict, id: str = "call_1") -> dict:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": M,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def streamed_call() -> list[bytes]:
    return sse(
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls"),
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}, done=True)


def streamed_text(text: str) -> list[bytes]:
    return sse(chunk({"role": "assistant", "content": text[:4]}), chunk({"content": text[4:]}, "stop"), done=True)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def llm(server: ScriptedServer) -> HFInferenceChat:
    return HFInferenceChat(base_url=server.url, model_name=M)


def sent(server: ScriptedServer, i: int = -1) -> dict[str, Any]:
    return server.requests[i].json()


def test_metadata_says_function_calling_chat_model(llm: HFInferenceChat) -> None:
    meta = llm.metadata
    assert meta.is_function_calling_model and meta.is_chat_model and meta.model_name == M


def test_chat_and_streams_sync_and_async(server: ScriptedServer, llm: HFInferenceChat) -> None:
    server.on(ROUTE, [Reply(body=answer("Hello there")), Reply(chunks=streamed_text("Hello there")),
                      Reply(body=answer("Hello there")), Reply(chunks=streamed_text("Hello there"))])
    messages = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Hi")]
    assert llm.chat(messages).message.content == "Hello there"
    deltas = [r.delta for r in llm.stream_chat(messages)]
    assert "".join(deltas) == "Hello there"

    async def run() -> tuple[str, str]:
        whole = (await llm.achat(messages)).message.content
        last = None
        async for last in await llm.astream_chat(messages):
            pass
        return whole, last.message.content

    assert asyncio.run(run()) == ("Hello there", "Hello there")
    assert sent(server, 0)["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def test_complete_goes_through_chat(server: ScriptedServer, llm: HFInferenceChat) -> None:
    server.on(ROUTE, Reply(body=answer("Paris.")))
    assert llm.complete("Capital of France?").text == "Paris."
    assert sent(server)["messages"] == [{"role": "user", "content": "Capital of France?"}]


def test_chat_with_tools_sends_the_tools_and_reads_the_calls(server: ScriptedServer, llm: HFInferenceChat) -> None:
    server.on(ROUTE, Reply(body=answer(None, [call("get_weather", {"city": "Paris"}), call("get_time", {"zone": "UTC"}, "call_2")], "tool_calls")))
    response = llm.chat_with_tools([WEATHER, TIME], user_msg="Weather in Paris?")
    body = sent(server)
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "get_time"]
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is False
    (selection,) = llm.get_tool_calls_from_response(response)  # parallel calls not allowed: the first one
    assert (selection.tool_id, selection.tool_name, selection.tool_kwargs) == ("call_1", "get_weather", {"city": "Paris"})
    both = llm.chat_with_tools([WEATHER, TIME], user_msg="Both?", allow_parallel_tool_calls=True)
    assert [s.tool_name for s in llm.get_tool_calls_from_response(both)] == ["get_weather", "get_time"]
    assert "parallel_tool_calls" not in sent(server)


@pytest.mark.parametrize(("kwargs", "wire"), [
    ({"tool_required": True}, "required"),
    ({"tool_choice": "get_time"}, {"type": "function", "function": {"name": "get_time"}}),
    ({"tool_choice": "none"}, "none"),
])
def test_tool_choice_and_tool_required(server: ScriptedServer, llm: HFInferenceChat, kwargs: dict, wire: Any) -> None:
    server.on(ROUTE, Reply(body=answer(None, [call("get_time", {"zone": "UTC"})], "tool_calls")))
    llm.chat_with_tools([WEATHER, TIME], user_msg="Time?", **kwargs)
    assert sent(server)["tool_choice"] == wire


def test_a_tool_choice_naming_no_tool_is_refused_before_sending(server: ScriptedServer, llm: HFInferenceChat) -> None:
    with pytest.raises(InvalidInputError) as info:
        llm.chat_with_tools([WEATHER], user_msg="Time?", tool_choice="get_time")
    assert info.value.field == "tool_choice" and server.requests == []


def test_no_tool_call_is_an_error_only_when_one_was_expected(server: ScriptedServer, llm: HFInferenceChat) -> None:
    server.on(ROUTE, Reply(body=answer("I do not need a tool.")))
    response = llm.chat_with_tools([WEATHER], user_msg="Hi")
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError):
        llm.get_tool_calls_from_response(response)


def test_streaming_with_tools_ends_with_the_whole_call(server: ScriptedServer, llm: HFInferenceChat) -> None:
    server.on(ROUTE, Reply(chunks=streamed_call()))
    responses = list(llm.stream_chat_with_tools([WEATHER], user_msg="Weather in Paris?"))
    (selection,) = llm.get_tool_calls_from_response(responses[-1])
    assert selection.tool_kwargs == {"city": "Paris"}
    assert responses[-1].additional_kwargs["total_tokens"] == 13
    assert sent(server)["stream"] is True


def test_tool_results_and_images_are_sent_back_in_the_openai_shape(server: ScriptedServer, llm: HFInferenceChat) -> None:
    server.on(ROUTE, Reply(body=answer("Sunny.")))
    history = [
        ChatMessage(role=MessageRole.USER, blocks=[TextBlock(text="Where is this?"), ImageBlock(url="https://example.com/a.png")]),
        ChatMessage(role=MessageRole.ASSISTANT, content="", additional_kwargs={"tool_calls": [call("get_weather", {"city": "Paris"})]}),
        ChatMessage(role=MessageRole.TOOL, content="It is sunny in Paris.", additional_kwargs={"tool_call_id": "call_1", "name": "get_weather"}),
    ]
    assert llm.chat(history).message.content == "Sunny."
    messages = sent(server)["messages"]
    assert messages[0]["content"] == [{"type": "text", "text": "Where is this?"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    assert messages[1] == {"role": "assistant", "tool_calls": [call("get_weather", {"city": "Paris"})]}
    assert messages[2] == {"role": "tool", "content": "It is sunny in Paris.", "tool_call_id": "call_1", "name": "get_weather"}


class City(BaseModel):
    """A city and its country."""

    name: str
    country: str


def test_structured_predict_and_as_structured_llm_return_the_pydantic_object(server: ScriptedServer, llm: HFInferenceChat) -> None:
    from llama_index.core.prompts import PromptTemplate

    server.on(ROUTE, Reply(body=answer(None, [call("City", {"name": "Paris", "country": "France"})], "tool_calls")))
    city = llm.structured_predict(City, PromptTemplate("Name the capital of {country}."), country="France")
    assert city == City(name="Paris", country="France")
    assert sent(server)["tool_choice"] == "required" and sent(server)["tools"][0]["function"]["name"] == "City"
    structured = llm.as_structured_llm(City)
    response = structured.chat([ChatMessage(role="user", content="Capital of France?")])
    assert response.raw == City(name="Paris", country="France")


def test_a_function_agent_runs_the_tool_and_answers(server: ScriptedServer, llm: HFInferenceChat) -> None:
    server.on(ROUTE, [Reply(chunks=streamed_call()), Reply(chunks=streamed_text("It is sunny in Paris."))])
    agent = FunctionAgent(tools=[WEATHER], llm=llm)

    async def run() -> Any:
        return await agent.run("What is the weather in Paris?")

    result = asyncio.run(run())
    assert str(result) == "It is sunny in Paris."
    second = sent(server, 1)["messages"]
    assert second[-1] == {"role": "tool", "content": "It is sunny in Paris.", "tool_call_id": "call_1"}
    assert second[-2]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_the_callback_decorators_report_llm_events(server: ScriptedServer) -> None:
    server.on(ROUTE, Reply(body=answer("Hi")))
    debug = LlamaDebugHandler()
    llm = HFInferenceChat(base_url=server.url, model_name=M, callback_manager=CallbackManager([debug]))
    llm.chat([ChatMessage(role="user", content="Hi")])
    (start, end) = debug.get_event_pairs(CBEventType.LLM)[0]
    assert end.payload["response"].message.content == "Hi"
