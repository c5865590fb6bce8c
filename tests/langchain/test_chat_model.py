"""ChatHFInference against a scripted server: what it sends for every tool form and tool choice,
how answers and streamed fragments come back as LangChain messages, and bad input refused
before any request. (The model-in-the-loop behaviour is in test_chat_standard.py and
test_agents.py, against ``hfbridge serve``.)"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Iterator

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field
from typing_extensions import Annotated, TypedDict

from hfbridge import InvalidInputError
from hfbridge.langchain import ChatHFInference
from tests.scripted_server import Reply, ScriptedServer, sse

M = "org/chat"
ROUTE = f"/models/{M}/v1/chat/completions"


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


class GetTime(BaseModel):
    """The time in a time zone."""

    zone: str = Field(description="An IANA zone such as Europe/Paris")


class Convert(TypedDict):
    """Convert an amount between currencies."""

    amount: Annotated[float, ..., "How much"]
    currency: Annotated[str, ..., "ISO code"]


def lookup(term: str, limit: int = 3) -> list[str]:
    """Look a term up.

    Args:
        term: what to look up
        limit: most results
    """
    return []


OPENAI_DICT = {"type": "function", "function": {"name": "ping", "description": "Ping a host.",
                                                "parameters": {"type": "object", "properties": {"host": {"type": "string"}}}}}


def answer(content: str | None = None, calls: list[dict] | None = None, finish: str = "stop") -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    return {"id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": M,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}}


def call(name: str, args: dict, id: str = "call_1") -> dict:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}


def chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": M,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


USAGE_CHUNK = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": M, "choices": [],
               "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}}


def streamed_calls() -> list[bytes]:
    return sse(
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function", "function": {"name": "GetTime", "arguments": '{"zone": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": '"Europe/Paris"}'}}]}),
        chunk({}, "tool_calls"), USAGE_CHUNK, done=True)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def chat(server: ScriptedServer) -> Iterator[ChatHFInference]:
    model = ChatHFInference(base_url=server.url, model=M, token=None)
    yield model


def sent(server: ScriptedServer, i: int = -1) -> dict[str, Any]:
    return server.requests[i].json()


# --------------------------------------------------------------------------------------------
# bind_tools
# --------------------------------------------------------------------------------------------
def test_every_tool_form_is_sent_as_an_openai_tool(server: ScriptedServer, chat: ChatHFInference) -> None:
    server.on(ROUTE, Reply(body=answer("ok")))
    chat.bind_tools([get_weather, GetTime, Convert, lookup, OPENAI_DICT]).invoke("hi")
    tools = {t["function"]["name"]: t["function"] for t in sent(server)["tools"]}
    assert list(tools) == ["get_weather", "GetTime", "Convert", "lookup", "ping"]
    assert all(t["parameters"]["type"] == "object" for t in tools.values())
    assert tools["get_weather"]["parameters"]["required"] == ["city"]
    assert tools["GetTime"]["description"] == "The time in a time zone."
    assert set(tools["Convert"]["parameters"]["properties"]) == {"amount", "currency"}
    assert tools["lookup"]["parameters"]["properties"]["limit"]["type"] == "integer"
    assert tools["ping"] == OPENAI_DICT["function"]
    assert "tool_choice" not in sent(server)


@pytest.mark.parametrize(("choice", "wire"), [
    (None, None),
    ("auto", "auto"),
    ("none", "none"),
    ("any", "required"),
    ("required", "required"),
    (True, "required"),
    ("GetTime", {"type": "function", "function": {"name": "GetTime"}}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"type": "function", "function": {"name": "get_weather"}}),
])
def test_every_tool_choice(server: ScriptedServer, chat: ChatHFInference, choice: Any, wire: Any) -> None:
    server.on(ROUTE, Reply(body=answer(None, [call("get_weather", {"city": "Paris"})], "tool_calls")))
    chat.bind_tools([get_weather, GetTime], tool_choice=choice).invoke("hi")
    assert sent(server).get("tool_choice") == wire


def test_a_v1_message_sends_its_tool_calls_once(server: ScriptedServer, chat: ChatHFInference) -> None:
    server.on(ROUTE, Reply(body=answer("sunny")))
    calls = [{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]
    v1 = AIMessage(content=[{"type": "text", "text": "Let me look."}, {"type": "tool_call", **calls[0]}], tool_calls=calls, output_version="v1")
    chat.invoke([HumanMessage("weather?"), v1, ToolMessage("sunny", tool_call_id="c1")])
    assistant = sent(server)["messages"][1]
    assert assistant["content"] == [{"type": "text", "text": "Let me look."}]
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["get_weather"]


def test_the_small_model_policy_chooses_only_what_the_caller_left_open(server: ScriptedServer) -> None:
    server.on(ROUTE, Reply(body=answer("ok")))
    small = ChatHFInference(base_url=server.url, model=M, token=None, initial_tool_choice="GetTime", answer_after_tool_results=True)
    calls = [{"name": "GetTime", "args": {"zone": "UTC"}, "id": "c1"}]
    asked = [HumanMessage("what time is it?")]
    answered = [*asked, AIMessage("", tool_calls=calls), ToolMessage("12:00", tool_call_id="c1")]
    small.bind_tools([get_weather, GetTime]).invoke(asked)
    assert sent(server)["tool_choice"] == {"type": "function", "function": {"name": "GetTime"}}
    small.bind_tools([get_weather, GetTime]).invoke(answered)
    assert sent(server)["tool_choice"] == "none"
    small.bind_tools([get_weather, GetTime], tool_choice="auto").invoke(asked)  # the caller's choice wins
    assert sent(server)["tool_choice"] == "auto"
    small.invoke(asked)  # no tools bound: nothing to choose
    assert "tool_choice" not in sent(server)
    with pytest.raises(InvalidInputError, match="tool_choice"):  # a name that is not bound fails before sending
        small.bind_tools([get_weather]).invoke(asked)
    assert len(server.requests) == 4


def test_tool_calls_come_back_as_langchain_tool_calls_with_usage_and_metadata(server: ScriptedServer, chat: ChatHFInference) -> None:
    server.on(ROUTE, Reply(body=answer(None, [call("get_weather", {"city": "Paris"}), {"id": 7, "type": "function",
                                       "function": {"name": "GetTime", "arguments": {"zone": "UTC"}}}], "eos_token")))
    message = chat.bind_tools([get_weather, GetTime]).invoke("weather and time?")
    assert isinstance(message, AIMessage)
    assert [(c["name"], c["args"], c["id"]) for c in message.tool_calls] == [("get_weather", {"city": "Paris"}, "call_1"), ("GetTime", {"zone": "UTC"}, "7")]
    assert message.usage_metadata == {"input_tokens": 11, "output_tokens": 5, "total_tokens": 16}
    assert message.response_metadata["finish_reason"] == "tool_calls" and message.response_metadata["model_name"] == M


def test_arguments_that_are_not_json_become_invalid_tool_calls(server: ScriptedServer, chat: ChatHFInference) -> None:
    bad = {"id": "call_x", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Par'}}
    server.on(ROUTE, Reply(body=answer(None, [bad], "tool_calls")))
    message = chat.bind_tools([get_weather]).invoke("weather?")
    assert message.tool_calls == [] and message.invalid_tool_calls[0]["name"] == "get_weather"
    assert "not JSON" in message.invalid_tool_calls[0]["error"]


def test_streamed_tool_call_chunks_merge_into_the_same_calls_as_the_whole_answer(server: ScriptedServer, chat: ChatHFInference) -> None:
    whole_body = answer(None, [call("get_weather", {"city": "Paris"}), call("GetTime", {"zone": "Europe/Paris"}, "call_2")], "tool_calls")
    server.on(ROUTE, [Reply(chunks=streamed_calls()), Reply(body=whole_body)])
    bound = chat.bind_tools([get_weather, GetTime])
    chunks = list(bound.stream("weather and time?"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert any(c.tool_call_chunks for c in chunks)
    merged = chunks[0]
    for c in chunks[1:]:
        merged += c
    whole = bound.invoke("weather and time?")
    assert [(c["name"], c["args"], c["id"]) for c in merged.tool_calls] == [(c["name"], c["args"], c["id"]) for c in whole.tool_calls]
    assert chunks[-1].usage_metadata == {"input_tokens": 11, "output_tokens": 5, "total_tokens": 16}
    assert merged.response_metadata["finish_reason"] == "tool_calls"
    assert sent(server, 0)["stream_options"] == {"include_usage": True} and "stream_options" not in sent(server, 1)


def test_messages_of_every_langchain_type_are_converted(server: ScriptedServer, chat: ChatHFInference) -> None:
    server.on(ROUTE, Reply(body=answer("It is sunny.")))
    history = [
        SystemMessage("Use tools."),
        HumanMessage(content=[{"type": "text", "text": "Weather here?"},
                              {"type": "image", "source_type": "base64", "data": "iVBORw0KGgo=", "mime_type": "image/png"}]),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}]),
        ToolMessage("sunny", tool_call_id="call_1"),
    ]
    assert chat.invoke(history).content == "It is sunny."
    messages = sent(server)["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[1]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert json.loads(messages[2]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert messages[3] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


def test_fields_and_call_options_are_sent_and_stops_combined(server: ScriptedServer) -> None:
    server.on(ROUTE, Reply(body=answer("Hi")))
    chat = ChatHFInference(base_url=server.url, model=M, max_tokens=20, temperature=0.0, seed=7, stop=["\n\n"])
    chat.invoke("hi", stop=["User:"], top_p=0.5)
    body = sent(server)
    assert body["max_tokens"] == 20 and body["temperature"] == 0.0 and body["seed"] == 7 and body["top_p"] == 0.5
    assert body["stop"] == ["\n\n", "User:"]


def test_a_per_call_model_override_goes_to_that_model(server: ScriptedServer, chat: ChatHFInference) -> None:
    server.on("/models/org/other/v1/chat/completions", Reply(body=answer("Hi")))
    message = chat.invoke("hi", model="org/other")
    assert server.requests[-1].path == "/models/org/other/v1/chat/completions"
    assert chat._get_ls_params(model="org/other")["ls_model_name"] == "org/other"
    assert message.content == "Hi"


# --------------------------------------------------------------------------------------------
# with_structured_output
# --------------------------------------------------------------------------------------------
class Joke(BaseModel):
    """A joke."""

    setup: str
    punchline: str


JOKE = {"setup": "Why?", "punchline": "Because."}


@pytest.mark.parametrize("schema", [Joke, Joke.model_json_schema()], ids=["pydantic", "json_schema"])
@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_structured_output_by_each_method(server: ScriptedServer, chat: ChatHFInference, method: str, schema: Any) -> None:
    body = answer(None, [call("Joke", JOKE)], "tool_calls") if method == "function_calling" else answer(json.dumps(JOKE))
    server.on(ROUTE, Reply(body=body))
    result = chat.with_structured_output(schema, method=method).invoke("Tell me a joke")
    assert (result == Joke(**JOKE)) if schema is Joke else (result == JOKE)
    request = sent(server)
    if method == "json_schema":
        assert request["response_format"]["type"] == "json_schema"
        assert request["response_format"]["json_schema"]["schema"]["required"] == ["setup", "punchline"]
    elif method == "json_mode":
        assert request["response_format"] == {"type": "json_object"}
    else:
        assert request["tool_choice"] == {"type": "function", "function": {"name": "Joke"}}
        assert "response_format" not in request


def test_structured_output_streamed_yields_the_parsed_object(server: ScriptedServer, chat: ChatHFInference) -> None:
    text = json.dumps(JOKE)
    server.on(ROUTE, Reply(chunks=sse(*[chunk({"content": text[i:i + 5]}) for i in range(0, len(text), 5)], chunk({}, "stop"), done=True)))
    outs = list(chat.with_structured_output(Joke).stream("Tell me a joke"))
    assert outs and outs[-1] == Joke(**JOKE)


def test_include_raw_gives_the_message_the_parsed_object_and_the_error(server: ScriptedServer, chat: ChatHFInference) -> None:
    server.on(ROUTE, [Reply(body=answer(json.dumps(JOKE))), Reply(body=answer("not json"))])
    good = chat.with_structured_output(Joke, include_raw=True).invoke("joke")
    assert isinstance(good["raw"], AIMessage) and good["parsed"] == Joke(**JOKE) and good["parsing_error"] is None
    bad = chat.with_structured_output(Joke, include_raw=True).invoke("joke")
    assert bad["parsed"] is None and bad["parsing_error"] is not None and bad["raw"].content == "not json"


# --------------------------------------------------------------------------------------------
# async, callbacks, events
# --------------------------------------------------------------------------------------------
def test_async_invoke_stream_and_events(server: ScriptedServer, chat: ChatHFInference) -> None:
    server.on(ROUTE, [Reply(body=answer(None, [call("get_weather", {"city": "Paris"})], "tool_calls")), Reply(chunks=streamed_calls()),
                      Reply(chunks=sse(chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}, "stop"), USAGE_CHUNK, done=True))])
    bound = chat.bind_tools([get_weather, GetTime])

    async def run() -> tuple[Any, Any, list[Any]]:
        message = await bound.ainvoke("weather?")
        merged = None
        async for piece in bound.astream("weather and time?"):
            merged = piece if merged is None else merged + piece
        events = [e async for e in chat.astream_events("hello", version="v2")]
        return message, merged, events

    message, merged, events = asyncio.run(run())
    assert message.tool_calls[0]["args"] == {"city": "Paris"}
    assert [c["name"] for c in merged.tool_calls] == ["get_weather", "GetTime"]
    streamed = "".join(e["data"]["chunk"].content for e in events if e["event"] == "on_chat_model_stream")
    assert streamed == "Hello"
    assert any(e["event"] == "on_chat_model_end" for e in events)


def test_streaming_feeds_new_token_callbacks(server: ScriptedServer) -> None:
    server.on(ROUTE, Reply(chunks=sse(chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}, "stop"), USAGE_CHUNK, done=True)))

    class Tokens(BaseCallbackHandler):
        def __init__(self) -> None:
            self.tokens: list[str] = []

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            self.tokens.append(token)

    handler = Tokens()
    chat = ChatHFInference(base_url=server.url, model=M, streaming=True)
    message = chat.invoke("hi", config={"callbacks": [handler]})
    assert message.content == "Hello" and "".join(handler.tokens) == "Hello"
    assert message.usage_metadata["total_tokens"] == 16


# --------------------------------------------------------------------------------------------
# Bad input: refused before any request
# --------------------------------------------------------------------------------------------
def test_bad_tools_choices_and_schemas_are_refused_before_sending(server: ScriptedServer, chat: ChatHFInference) -> None:
    cases = [
        (lambda: chat.bind_tools([42]), "tools[0]"),
        (lambda: chat.bind_tools([get_weather], tool_choice="get_time"), "tool_choice"),
        (lambda: chat.bind_tools([], tool_choice="any"), "tool_choice"),
        (lambda: chat.with_structured_output({"type": "string"}), "schema"),
        (lambda: chat.with_structured_output(Joke, method="xml"), "method"),
        (lambda: chat.invoke("hi", top_q=0.3), "top_q"),
    ]
    for make, field in cases:
        with pytest.raises(InvalidInputError) as info:
            make()
        assert info.value.field == field, info.value
    assert server.requests == []
