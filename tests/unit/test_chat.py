"""Chat completions, pure: request bodies in every layout, tool-call variants, streamed fragments."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, Field

from hfbridge import InvalidInputError, assemble_chat_stream, schemas as s
from hfbridge.config import Layout, infer_layout
from hfbridge.protocol import Call, StreamProcessor
from hfbridge.shapes import NormalizeContext, normalize
from hfbridge.config import ClientConfig
from hfbridge.tasks import Task, get_task

from .capture import CaptureClient

M = "org/model"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]


def body_of(request: Any) -> dict[str, Any]:
    return json.loads(request.content)


# --------------------------------------------------------------------------------------------
# Routes and bodies in every layout
# --------------------------------------------------------------------------------------------
LAYOUTS = [
    # (base_url, layout, model, url, model in the body)
    ("http://127.0.0.1:8000", "spec", M, f"http://127.0.0.1:8000/models/{M}/v1/chat/completions", M),
    ("http://127.0.0.1:8000", "spec", None, "http://127.0.0.1:8000/v1/chat/completions", None),
    ("https://router.huggingface.co/hf-inference", None, M, f"https://router.huggingface.co/hf-inference/models/{M}/v1/chat/completions", M),
    ("https://xyz.endpoints.huggingface.cloud", "endpoint", None, "https://xyz.endpoints.huggingface.cloud/v1/chat/completions", None),
    ("https://router.huggingface.co/v1", None, M, "https://router.huggingface.co/v1/chat/completions", M),
    ("http://127.0.0.1:8080/v1", "openai", M, "http://127.0.0.1:8080/v1/chat/completions", M),
]


@pytest.mark.parametrize(("base", "layout", "model", "url", "body_model"), LAYOUTS)
def test_chat_with_tools_in_every_layout(base: str, layout: str | None, model: str | None, url: str, body_model: str | None) -> None:
    client = CaptureClient(base_url=base, layout=layout, token=False)
    request = client.chat_completion(
        MESSAGES, model=model, tools=[WEATHER], tool_choice="get_weather",
        response_format={"type": "json_object"}, max_tokens=16, seed=3, stop="\n\n",
    )
    assert request.url == url
    body = body_of(request)
    assert body.pop("model", None) == body_model
    assert body == {
        "messages": MESSAGES,
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_object"},
        "max_tokens": 16,
        "seed": 3,
        "stop": ["\n\n"],
    }


def test_the_router_v1_base_is_the_openai_layout_and_other_v1_bases_are_not() -> None:
    assert infer_layout("https://router.huggingface.co/v1") is Layout.OPENAI
    assert infer_layout("https://router.huggingface.co/hf-inference") is Layout.HOSTED
    assert infer_layout("http://127.0.0.1:8000/v1") is Layout.SPEC  # chosen explicitly, or a 404 hint


@pytest.mark.parametrize(("provider", "sent"), [("fastest", f"{M}:fastest"), ("cheapest", f"{M}:cheapest"), ("together", f"{M}:together"), (None, M)])
def test_provider_travels_as_a_model_suffix(provider: str | None, sent: str) -> None:
    client = CaptureClient(base_url="https://router.huggingface.co/v1", token="hf_x")
    request = client.chat_completion(MESSAGES, model=M, provider=provider)
    assert body_of(request)["model"] == sent
    assert request.headers["Authorization"] == "Bearer hf_x"


def test_a_provider_suffix_outside_the_router_layout_is_refused() -> None:
    client = CaptureClient(base_url="http://127.0.0.1:8000", token=False)
    with pytest.raises(InvalidInputError) as info:
        client.chat_completion(MESSAGES, model=f"{M}:fastest")
    assert info.value.field == "model" and "openai" in info.value.problem
    with pytest.raises(InvalidInputError) as info:
        client.chat_completion(MESSAGES, model=M, provider="fastest")
    assert info.value.field == "model"


def test_the_openai_layout_serves_chat_only_and_needs_a_model() -> None:
    client = CaptureClient(base_url="https://router.huggingface.co/v1", token=False)
    with pytest.raises(InvalidInputError) as info:
        client.chat_completion(MESSAGES)
    assert info.value.field == "model"
    with pytest.raises(InvalidInputError) as info:
        client.text_classification("x", model=M)
    assert info.value.field == "layout"


def test_streaming_chat_sends_stream_and_stream_options() -> None:
    client = CaptureClient(base_url="http://127.0.0.1:8000", token=False)
    request = client.chat_completion(MESSAGES, model=M, stream=True, stream_options={"include_usage": True}, logprobs=True, top_logprobs=2)
    body = body_of(request)
    assert request.stream and request.headers["Accept"] == "text/event-stream"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["logprobs"] is True and body["top_logprobs"] == 2


def test_messages_of_every_role_and_content_parts_are_sent_as_given() -> None:
    messages = [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                                                               "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
        ("user", "Thanks"),
    ]
    body = body_of(CaptureClient(base_url="http://127.0.0.1:8000", token=False).chat_completion(messages, model=M))
    assert body["messages"][:4] == [
        {"role": "system", "content": "Use tools."},
        messages[1],
        {"role": "assistant", "tool_calls": messages[2]["tool_calls"]},
        messages[3],
    ]
    assert body["messages"][4] == {"role": "user", "content": "Thanks"}


def test_tool_forms_all_become_the_openai_shape() -> None:
    class GetWeather(BaseModel):
        """The weather in a city."""

        city: str = Field(description="City name")

    client = CaptureClient(base_url="http://127.0.0.1:8000", token=False)
    bare = WEATHER["function"]
    typed = s.Tool.model_validate(WEATHER)
    tools = body_of(client.chat_completion(MESSAGES, model=M, tools=[WEATHER, GetWeather], tool_choice="required"))["tools"]
    assert tools[0] == WEATHER
    assert tools[1]["function"]["name"] == "GetWeather"
    assert tools[1]["function"]["description"] == "The weather in a city."
    assert tools[1]["function"]["parameters"]["properties"]["city"]["description"] == "City name"
    for form in (bare, typed):
        sent = body_of(client.chat_completion(MESSAGES, model=M, tools=[form]))["tools"]
        assert sent == [WEATHER]


def test_a_pydantic_class_as_response_format_is_a_strict_json_schema() -> None:
    class Answer(BaseModel):
        city: str
        celsius: float

    body = body_of(CaptureClient(base_url="http://127.0.0.1:8000", token=False).chat_completion(MESSAGES, model=M, response_format=Answer))
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Answer" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == Answer.model_json_schema()


@pytest.mark.parametrize("fmt", [
    {"type": "text"},
    {"type": "json_object"},
    {"type": "json_object", "value": {"type": "object"}},  # TGI
    {"type": "json", "value": {"type": "object"}},  # TGI
    {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": True}},
    {"type": "json_schema", "value": {"name": "a", "schema": {"type": "object"}}},  # TGI
    {"type": "regex", "value": "[0-9]+"},
])
def test_every_response_format_dialect_is_accepted_and_sent_unchanged(fmt: dict) -> None:
    body = body_of(CaptureClient(base_url="http://127.0.0.1:8000", token=False).chat_completion(MESSAGES, model=M, response_format=fmt))
    assert body["response_format"] == fmt


BAD = [
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools.0.function.name"),
    ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools.0.function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]}, "tools.0.function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "{}"}}]}, "tools.0.function.parameters"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "required": ["x"], "properties": {}}}}]},
     "tools.0.function.parameters"),
    ({"tools": [WEATHER, WEATHER]}, "tools"),
    ({"tools": []}, "tools"),
    ({"tools": ["get_weather"]}, "tools[0]"),
    ({"tools": [WEATHER], "tool_choice": "lookup"}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tool_choice": 3}, "tool_choice"),
    ({"response_format": {"type": "xml"}}, "response_format.type"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": []}}}, "response_format.json_schema.schema"),
    ({"response_format": {"type": "regex", "value": "("}}, "response_format.value"),
    ({"response_format": "json"}, "response_format"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"provider": "Not a provider!"}, "provider"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"frequency_penalty": 5.0}, "frequency_penalty"),
]


@pytest.mark.parametrize(("kwargs", "field"), BAD, ids=[f for _, f in BAD])
def test_bad_chat_arguments_are_refused_naming_the_field(kwargs: dict, field: str) -> None:
    client = CaptureClient(base_url="https://router.huggingface.co/v1", token=False)
    with pytest.raises(InvalidInputError) as info:
        client.chat_completion(MESSAGES, model=M, **kwargs)
    assert info.value.field == field, info.value
    assert client.calls == []


BAD_MESSAGES = [
    ([{"role": "tool", "content": "18 C"}], "messages[0].tool_call_id"),
    ([{"role": "robot", "content": "hi"}], "messages[0].role"),
    ([{"content": "hi"}], "messages[0].role"),
    ([{"role": "assistant"}], "messages[0].content"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}], "messages[0].content.0.image_url.url"),
    ([{"role": "user", "content": [{"type": "audio", "audio": "x"}]}], "messages[0].content.0.type"),
    ([{"role": "assistant", "tool_calls": [{"id": "1", "function": {"arguments": "{}"}}]}], "messages[0].tool_calls.0.function.name"),
    ([], "messages"),
]


@pytest.mark.parametrize(("messages", "field"), BAD_MESSAGES, ids=[f for _, f in BAD_MESSAGES])
def test_bad_messages_are_refused_naming_the_field(messages: list, field: str) -> None:
    client = CaptureClient(base_url="http://127.0.0.1:8000", token=False)
    with pytest.raises(InvalidInputError) as info:
        client.chat_completion(messages, model=M)
    assert info.value.field == field, info.value


def test_conversational_is_chat_completion_by_its_spec_name() -> None:
    client = CaptureClient(base_url="http://127.0.0.1:8000", token=False)
    a = client.conversational(MESSAGES, model=M, tools=[WEATHER], max_tokens=5)
    b = client.chat_completion(MESSAGES, model=M, tools=[WEATHER], max_tokens=5)
    assert (a.url, a.content) == (b.url, b.content)


# --------------------------------------------------------------------------------------------
# Answers: the OpenAI shape and the variants servers send
# --------------------------------------------------------------------------------------------
def parse_chat(data: Any, **parameters: Any) -> s.ChatCompletion:
    return normalize(NormalizeContext(Task.CONVERSATIONAL, M, MESSAGES, parameters), data)


def answer(message: dict, finish: str | None = "stop", **extra: Any) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": M,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], **extra}


OPENAI_CALL = {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
VARIANTS = [
    ("openai", OPENAI_CALL, "call_abc"),
    ("integer id (TGI)", {"id": 0, "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}, "0"),
    ("arguments as an object", {"id": "x", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}, "description": None}}, "x"),
    ("no id, no type", {"function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}, "call_0"),
    ("TGI's _name inside the arguments", {"id": 1, "type": "function", "function": {"arguments": {"_name": "get_weather", "city": "Paris"}}}, "1"),
]


@pytest.mark.parametrize(("raw", "expected_id"), [(v, i) for _, v, i in VARIANTS], ids=[n for n, _, _ in VARIANTS])
def test_tool_calls_of_every_dialect_come_back_in_the_openai_shape(raw: dict, expected_id: str) -> None:
    result = parse_chat(answer({"role": "assistant", "content": None, "tool_calls": [raw]}, finish="eos_token"))
    (call,) = result.message.tool_calls
    assert call.id == expected_id and call.type == "function"
    assert call.function.name == "get_weather"
    assert isinstance(call.function.arguments, str) and json.loads(call.function.arguments) == {"city": "Paris"}
    assert result.choices[0].finish_reason == "tool_calls"


def test_a_single_tool_call_object_where_a_list_belongs_is_accepted() -> None:
    result = parse_chat(answer({"role": "assistant", "tool_calls": OPENAI_CALL}, finish="tool_calls"))
    assert [c.id for c in result.message.tool_calls] == ["call_abc"]


def test_a_text_completion_object_and_usage_and_logprobs_are_read() -> None:
    data = answer({"role": "assistant", "content": "Hi"}, finish="eos_token", usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4})
    data["object"] = "text_completion"
    data["choices"][0]["logprobs"] = {"content": [{"token": "Hi", "logprob": -0.5, "top_logprobs": [{"token": "Hi", "logprob": -0.5}, {"token": "Hey", "logprob": -1.2}]}]}
    result = parse_chat(data)
    assert result.object == "chat.completion"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage.total_tokens == 4
    assert [t.token for t in result.choices[0].logprobs.content[0].top_logprobs] == ["Hi", "Hey"]
    assert result.message.tool_calls is None


def test_an_empty_tool_call_list_means_no_call() -> None:
    result = parse_chat(answer({"role": "assistant", "content": "Hi", "tool_calls": []}))
    assert result.message.tool_calls is None and result.choices[0].finish_reason == "stop"


def test_client_side_stop_cuts_chat_content() -> None:
    result = parse_chat(answer({"role": "assistant", "content": "One.\n\nTwo."}, finish="length"), stop=["\n\n"])
    assert result.message.content == "One." and result.choices[0].finish_reason == "stop"


# --------------------------------------------------------------------------------------------
# Streams: tool calls in fragments, usage chunks
# --------------------------------------------------------------------------------------------
def chunk(delta: dict, finish: str | None = None, **extra: Any) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": M,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def fragment(index: int, *, id: Any = None, name: str | None = None, arguments: str | None = None) -> dict:
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    out: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        out.update(id=id, type="function")
    return out


INTERLEAVED = [
    chunk({"role": "assistant", "content": None, "tool_calls": [fragment(0, id="call_a", name="get_weather", arguments="")]}),
    chunk({"tool_calls": [fragment(0, arguments='{"ci')]}),
    chunk({"tool_calls": [fragment(1, id=7, name="get_time", arguments='{"zone": "Europe/')]}),  # integer id
    chunk({"tool_calls": [fragment(0, arguments='ty": "Par')]}),
    chunk({"tool_calls": [fragment(1, arguments='Paris"}')]}),
    chunk({"tool_calls": [fragment(0, arguments='is"}')]}),
    chunk({}, finish="eos_token"),
    {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": M, "choices": [],
     "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}},
]


def sse(*payloads: Any) -> bytes:
    return b"".join(b"data: " + (p if isinstance(p, bytes) else json.dumps(p).encode()) + b"\n\n" for p in payloads)


def stream_outputs(data: bytes, step: int, **parameters: Any) -> list[Any]:
    call = Call(spec=get_task(Task.CONVERSATIONAL), model=M, inputs=MESSAGES, parameters=parameters, stream=True)
    processor = StreamProcessor(ClientConfig(), call, 200)
    out: list[Any] = []
    for i in range(0, len(data), step):
        out += processor.feed(data[i : i + step])
        if processor.finished:
            return out
    return out + processor.end()


@pytest.mark.parametrize("step", [1, 5, 64, 100_000])
def test_tool_calls_streamed_in_interleaved_fragments_are_assembled(step: int) -> None:
    outs = stream_outputs(sse(*INTERLEAVED, b"[DONE]"), step, stream_options={"include_usage": True})
    assert all(isinstance(o, s.ChatCompletionChunk) for o in outs)
    result = assemble_chat_stream(outs)
    calls = result.message.tool_calls
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("7", "get_time", {"zone": "Europe/Paris"}),
    ]
    assert result.choices[0].finish_reason == "tool_calls"
    assert result.usage.total_tokens == 30  # the usage chunk with empty choices arrived


def test_streamed_and_whole_answers_assemble_to_the_same_calls() -> None:
    whole = parse_chat(answer({"role": "assistant", "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "7", "type": "function", "function": {"name": "get_time", "arguments": '{"zone": "Europe/Paris"}'}},
    ]}, finish="tool_calls"))
    streamed = assemble_chat_stream(stream_outputs(sse(*INTERLEAVED, b"[DONE]"), 7))
    assert [c.model_dump() for c in streamed.message.tool_calls] == [c.model_dump() for c in whole.message.tool_calls]


def test_without_include_usage_the_stream_ends_at_the_finish_reason() -> None:
    outs = stream_outputs(sse(*INTERLEAVED), 10_000)
    assert outs[-1].choices[0].finish_reason == "tool_calls"
    assert all(o.choices for o in outs)  # the usage chunk after the finish was not waited for


def test_a_client_side_stop_in_a_stream_still_collects_the_usage_chunk() -> None:
    pieces = [chunk({"role": "assistant", "content": "One."}), chunk({"content": "\n\nTwo"}), chunk({"content": " more"}, finish="length"),
              {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}}]
    outs = stream_outputs(sse(*pieces, b"[DONE]"), 3, stop=["\n\n"], stream_options={"include_usage": True})
    result = assemble_chat_stream(outs)
    assert result.message.content == "One." and result.choices[0].finish_reason == "stop"
    assert result.usage.completion_tokens == 3


def test_assembly_accepts_plain_dicts_and_keeps_logprobs() -> None:
    first = chunk({"role": "assistant", "content": "Hi"})
    first["choices"][0]["logprobs"] = {"content": [{"token": "Hi", "logprob": -0.1, "top_logprobs": []}]}
    result = assemble_chat_stream([first, chunk({"content": "!"}, finish="stop")])
    assert result.message.content == "Hi!" and result.choices[0].logprobs.content[0].token == "Hi"
    assert result.message.tool_calls is None


# --------------------------------------------------------------------------------------------
# Text generation: TGI's parameters typed, the server's final text, stops on the generated part
# --------------------------------------------------------------------------------------------
def test_tgi_parameters_are_typed_and_sent() -> None:
    class Out(BaseModel):
        answer: str

    client = CaptureClient(base_url="https://xyz.endpoints.huggingface.cloud", layout="endpoint", token=False)
    body = body_of(client.text_generation(
        "Hi", grammar=Out, truncate=100, typical_p=0.9, watermark=True, best_of=2, do_sample=True,
        decoder_input_details=True, top_n_tokens=3, frequency_penalty=0.5, details=True,
    ))
    assert body["parameters"] == {
        "grammar": {"type": "json", "value": Out.model_json_schema()}, "truncate": 100, "typical_p": 0.9,
        "watermark": True, "best_of": 2, "do_sample": True, "decoder_input_details": True, "top_n_tokens": 3,
        "frequency_penalty": 0.5, "details": True,
    }
    regex = body_of(client.text_generation("Hi", grammar={"type": "regex", "value": "[0-9]{3}"}))
    assert regex["parameters"]["grammar"] == {"type": "regex", "value": "[0-9]{3}"}


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"grammar": {"type": "xml", "value": "x"}}, "parameters.grammar.type"),
    ({"grammar": {"type": "regex", "value": "(["}}, "parameters.grammar.value"),
    ({"grammar": {"type": "json", "value": {"type": "strnig"}}}, "parameters.grammar.value"),
    ({"grammar": "json"}, "grammar"),
    ({"typical_p": 1.5}, "parameters.typical_p"),
    ({"best_of": 2}, "best_of"),
    ({"best_of": 2, "do_sample": True, "stream": True}, "best_of"),
    ({"top_n_tokens": 50}, "parameters.top_n_tokens"),
    ({"truncate": 0}, "parameters.truncate"),
])
def test_bad_tgi_parameters_are_refused(kwargs: dict, field: str) -> None:
    client = CaptureClient(base_url="http://127.0.0.1:8000", token=False)
    with pytest.raises(InvalidInputError) as info:
        client.text_generation("Hi", model=M, **kwargs)
    assert info.value.field == field, info.value


def test_typed_details_are_read() -> None:
    data = [{"generated_text": "Paris", "details": {
        "finish_reason": "eos_token", "generated_tokens": 1, "seed": 4,
        "prefill": [{"id": 1, "text": "Capital", "logprob": None}],
        "tokens": [{"id": 9, "text": "Paris", "logprob": -0.2, "special": False}],
        "top_tokens": [[{"id": 9, "text": "Paris", "logprob": -0.2, "special": False}, {"id": 8, "text": "Lyon", "logprob": -2.0, "special": False}]],
        "best_of_sequences": [{"generated_text": "Lyon", "finish_reason": "length", "generated_tokens": 1, "seed": 5}],
    }}]
    result = normalize(NormalizeContext(Task.TEXT_GENERATION, M, "Capital:", {}), data)
    assert result.details.prefill[0].text == "Capital"
    assert result.details.top_tokens[0][1].text == "Lyon"
    assert result.details.best_of_sequences[0].generated_text == "Lyon"


@pytest.mark.parametrize(("server_text", "return_full_text", "expected"), [
    ("Q: What is the capital?\nA: Paris\nQ: next", None, "Q: What is the capital?\nA: Paris"),  # server default: full text
    ("Q: What is the capital?\nA: Paris\nQ: next", True, "Q: What is the capital?\nA: Paris"),
    (" Paris\nQ: next", False, " Paris"),
    (" Paris\nQ: next", None, " Paris"),  # a server that answers only the generated text
])
def test_stop_sequences_apply_to_the_generated_text_only(server_text: str, return_full_text: bool | None, expected: str) -> None:
    prompt = "Q: What is the capital?\nA:"
    params = {"stop": ["\n"]} | ({} if return_full_text is None else {"return_full_text": return_full_text})
    result = normalize(NormalizeContext(Task.TEXT_GENERATION, M, prompt, params), [{"generated_text": server_text}])
    assert result.generated_text == expected


def tgi_event(i: int, text: str, final: str | None = None, special: bool = False) -> dict:
    return {"index": i, "token": {"id": i, "text": text, "logprob": -0.1, "special": special}, "generated_text": final,
            "details": {"finish_reason": "eos_token", "generated_tokens": i + 1} if final is not None else None}


def text_stream(data: bytes, prompt: str, **parameters: Any) -> list[Any]:
    call = Call(spec=get_task(Task.TEXT_GENERATION), model=M, inputs=prompt, parameters=parameters, stream=True)
    processor = StreamProcessor(ClientConfig(), call, 200)
    out = processor.feed(data)
    return out if processor.finished else out + processor.end()


def test_a_streamed_generation_ends_with_the_servers_own_text() -> None:
    # The server adds the prompt and drops the special token from its final text.
    events = [tgi_event(0, " Paris"), tgi_event(1, "</s>", final="Capital: Paris", special=True)]
    outs = text_stream(sse(*events), "Capital:")
    assert outs[-1].generated_text == "Capital: Paris"
    assert [o.token.text for o in outs] == [" Paris", "</s>"]


def test_a_streamed_final_text_is_cut_at_a_stop_in_its_generated_part_only() -> None:
    events = [tgi_event(0, " Paris"), tgi_event(1, ".", final="Q: x?\nA: Paris.\nQ: y")]
    outs = text_stream(sse(*events), "Q: x?\nA:", stop=["\nQ:"])
    assert outs[-1].generated_text == "Q: x?\nA: Paris."
    assert outs[-1].details.finish_reason == "stop_sequence"
