"""Chat completions with tools over real sockets, sync and async: the dialects servers send,
streams of tool-call fragments assembled, the OpenAI-compatible layout."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hfbridge import AsyncInferenceClient, InferenceClient, aassemble_chat_stream, assemble_chat_stream
from tests.scripted_server import Reply, ScriptedServer, sse

M = "org/model"
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ASK = [{"role": "user", "content": "Weather in Paris?"}]


def tgi_tool_answer() -> dict[str, Any]:
    """A tool call as TGI answers it: integer id, arguments as an object, no finish reason of its own."""
    return {"id": "", "object": "text_completion", "created": 1, "model": M, "system_fingerprint": "2.0.0-native",
            "choices": [{"index": 0, "logprobs": None, "finish_reason": "eos_token", "message": {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": 0, "type": "function", "function": {"description": None, "name": "get_weather", "arguments": {"city": "Paris"}}}],
            }}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}}


def test_a_tgi_tool_call_is_read_in_the_openai_shape(server: ScriptedServer, make_client: Any) -> None:
    server.on(f"/models/{M}/v1/chat/completions", Reply(body=tgi_tool_answer()))
    result = make_client(server.url).chat_completion(ASK, model=M, tools=[TOOL], tool_choice="required")
    (call,) = result.message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == ("0", "get_weather", '{"city": "Paris"}')
    assert result.choices[0].finish_reason == "tool_calls" and result.object == "chat.completion"
    sent = server.requests[-1].json()
    assert sent["tools"] == [TOOL] and sent["tool_choice"] == "required"


def fragments() -> list[bytes]:
    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": M,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    pieces = ['{"ci', 'ty": "Pa', 'ris"}']
    events = [chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})]
    events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces]
    events += [chunk({}, "tool_calls"), {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": M, "choices": [],
                                         "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}]
    return sse(*events, done=True)


def test_streamed_tool_calls_assemble_sync_and_async(server: ScriptedServer) -> None:
    server.on("/v1/chat/completions", Reply(chunks=fragments()))
    base = f"{server.url}/v1"
    kwargs: dict[str, Any] = dict(model=M, tools=[TOOL], stream=True, stream_options={"include_usage": True})
    with InferenceClient(base, layout="openai", token=False) as client:
        sync_result = assemble_chat_stream(client.chat_completion(ASK, **kwargs))

    async def run() -> Any:
        async with AsyncInferenceClient(base, layout="openai", token=False) as aclient:
            return await aassemble_chat_stream(aclient.chat_completion(ASK, **kwargs))

    async_result = asyncio.run(run())
    for result in (sync_result, async_result):
        (call,) = result.message.tool_calls
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
        assert result.choices[0].finish_reason == "tool_calls" and result.usage.total_tokens == 12
    assert [r.path for r in server.requests] == ["/v1/chat/completions", "/v1/chat/completions"]
    assert server.requests[0].json()["model"] == M and server.requests[0].json()["stream_options"] == {"include_usage": True}


def test_a_streamed_generation_returns_the_servers_final_text(server: ScriptedServer, make_client: Any) -> None:
    def tok(i: int, text: str, final: str | None = None, special: bool = False) -> dict:
        return {"index": i, "token": {"id": i, "text": text, "logprob": -0.1, "special": special},
                "generated_text": final, "details": None}

    # The server's final text has the prompt in front (return_full_text) and no special token.
    server.on(f"/models/{M}/text-generation", Reply(chunks=sse(tok(0, " Paris"), tok(1, "<|im_end|>", "Capital: Paris", special=True))))
    outs = make_client(server.url).collect("text_generation", "Capital:", model=M, return_full_text=True)
    assert outs[-1].generated_text == "Capital: Paris"
