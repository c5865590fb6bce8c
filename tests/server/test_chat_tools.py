"""Tool calling, structured output and grammars over HTTP: ``hfbridge serve`` on 127.0.0.1 with
the real SmolLM2 (135M parameters: it often picks odd arguments, but the grammar guarantees
their shape, which is what these tests check)."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import jsonschema
import pytest
import requests

from hfbridge.schemas import ChatCompletion, ChatCompletionChunk, TextGenerationResult, TextGenerationStreamOutput
from hfbridge.server import constraints

pytestmark = pytest.mark.slow

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": {"type": "object", "properties": properties, "required": required}}}


# Strings are bounded (maxLength) so a call always fits in MAX_TOKENS even at one token per
# character (digits are): the schema, not luck, ends every call.
TOOLS = {
    "get_weather": _tool("get_weather", "Current weather in a city",
                         {"city": {"type": "string", "maxLength": 20}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                         ["city", "unit"]),
    "convert_currency": _tool("convert_currency", "Convert an amount of money",
                              {"amount": {"type": "number", "minimum": 0}, "from": {"type": "string", "enum": ["USD", "EUR", "GBP", "JPY"]},
                               "to": {"type": "string", "enum": ["USD", "EUR", "GBP", "JPY"]}}, ["amount", "from", "to"]),
    "set_timer": _tool("set_timer", "Start a countdown timer",
                       {"minutes": {"type": "integer", "minimum": 1, "maximum": 120}, "label": {"type": "string", "maxLength": 12}},
                       ["minutes"]),
    "search_web": _tool("search_web", "Search the web", {"query": {"type": "string", "maxLength": 24}}, ["query"]),
}
CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Sydney", "Toronto", "Mumbai", "Berlin", "Nairobi"]
PROMPTS = (
    [(f"What's the weather like in {city} right now?", "get_weather") for city in CITIES[:5]]
    + [(f"Is it cold in {city}? Tell me in fahrenheit.", "get_weather") for city in CITIES[5:]]
    + [(f"How much is {n} {a} in {b}?", "convert_currency") for n, a, b in
       [(10, "dollars", "euros"), (250, "pounds", "yen"), (3.5, "euros", "dollars"), (1000, "yen", "pounds"), (42, "USD", "GBP"),
        (7, "EUR", "JPY"), (19.99, "dollars", "pounds"), (500, "euros", "yen"), (60, "GBP", "USD"), (1, "JPY", "EUR")]]
    + [(f"Set a timer for {m} minutes{label}.", "set_timer") for m, label in
       [(5, ""), (10, " for the pasta"), (25, " called focus"), (1, ""), (90, " for the bread"), (15, ""), (3, " for tea"),
        (45, " for the laundry"), (120, ""), (8, " for eggs")]]
    + [(f"Search the web for {q}.", "search_web") for q in
       ["the tallest building", "cheap flights to Rome", "python tutorials", "the best pizza in Naples", "news about Mars",
        "how to fix a bike", "jazz concerts tonight", "the capital of Peru", "vegan recipes", "football scores"]]
    + [("I need to know if I should take an umbrella in Berlin.", "get_weather"), ("Convert 12 euros to yen please.", "convert_currency"),
       ("Remind me in 20 minutes.", "set_timer"), ("Look up the history of chess.", "search_web"),
       ("Quick: weather for Lima in celsius.", "get_weather"), ("What are 300 dollars in euros?", "convert_currency"),
       ("Countdown of 2 minutes please.", "set_timer"), ("Find articles about electric cars.", "search_web"),
       ("Temperature in Oslo?", "get_weather"), ("Find me a good book about the ocean.", "search_web")]
)
MAX_TOKENS = 64


def _post(server: Any, path: str, body: dict[str, Any], **kw: Any) -> requests.Response:
    return requests.post(f"{server.url}{path}", json=body, timeout=300, **kw)


def _chat(server: Any, messages: Any, **body: Any) -> dict[str, Any]:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    response = _post(server, "/v1/chat/completions", {"model": SMOL, "messages": messages, "max_tokens": MAX_TOKENS, **body})
    assert response.status_code == 200, response.text
    ChatCompletion.model_validate(response.json())
    return response.json()


def _stream(server: Any, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with _post(server, path, {**body, "stream": True}, stream=True) as response:
        assert response.status_code == 200, response.text
        events = []
        for line in response.iter_lines():
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                events.append(json.loads(line[6:]))
    assert not any("error" in e for e in events), events
    return events


def _assembled(chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str, str | None]:
    """(tool calls, content, finish_reason) from a chat stream, assembled as a client would."""
    calls: dict[int, dict[str, Any]] = {}
    content, finish = "", None
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for fragment in delta.get("tool_calls") or []:
                call = calls.setdefault(fragment["index"], {"id": None, "name": "", "arguments": ""})
                call["id"] = fragment.get("id") or call["id"]
                call["name"] += fragment.get("function", {}).get("name") or ""
                call["arguments"] += fragment.get("function", {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return [calls[i] for i in sorted(calls)], content, finish


def _check_call(answer: dict[str, Any], expected: str | None = None) -> dict[str, Any]:
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls", answer
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert isinstance(call["id"], str) and call["id"] and call["type"] == "function"
    name = call["function"]["name"]
    assert name in TOOLS and (expected is None or name == expected)
    arguments = json.loads(call["function"]["arguments"])
    jsonschema.validate(arguments, TOOLS[name]["function"]["parameters"])
    return {"name": name, "arguments": arguments}


class TestToolCalls:
    def test_fifty_prompts_all_call_a_tool_with_valid_arguments(self, smol_server: Any) -> None:
        """Even prompts let the model choose (``required``); odd ones name the tool."""
        assert len(PROMPTS) == 50
        tools = list(TOOLS.values())
        chosen = []
        for i, (prompt, tool) in enumerate(PROMPTS):
            choice = "required" if i % 2 == 0 else {"type": "function", "function": {"name": tool}}
            answer = _chat(smol_server, prompt, tools=tools, tool_choice=choice)
            chosen.append(_check_call(answer, None if i % 2 == 0 else tool)["name"])
            assert answer["usage"]["completion_tokens"] <= MAX_TOKENS
        assert len(set(chosen)) > 1  # the choice really is the model's

    def test_streamed_calls_agree_with_the_answer_for_a_seed(self, smol_server: Any) -> None:
        body = {"model": SMOL, "messages": [{"role": "user", "content": "How much is 12 euros in dollars?"}],
                "tools": list(TOOLS.values()), "tool_choice": "required", "max_tokens": MAX_TOKENS, "temperature": 0.9, "seed": 11}
        answer = _chat(smol_server, body["messages"], **{k: v for k, v in body.items() if k not in ("model", "messages")})
        called = _check_call(answer)
        chunks = _stream(smol_server, "/v1/chat/completions", body)
        calls, content, finish = _assembled(chunks)
        assert content == "" and finish == "tool_calls"
        (streamed,) = calls
        assert streamed["name"] == called["name"] and json.loads(streamed["arguments"]) == called["arguments"]
        assert streamed["arguments"] == answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        # id, type and name come once, in the call's first fragment; then arguments in pieces
        fragments = [f for c in chunks for ch in c["choices"] for f in ch["delta"].get("tool_calls") or []]
        assert fragments[0]["id"] and fragments[0]["type"] == "function" and fragments[0]["function"]["name"] == called["name"]
        assert all("id" not in f and "name" not in f["function"] for f in fragments[1:]) and len(fragments) > 2
        # the same seed answers the same again; another seed may not
        again = _chat(smol_server, body["messages"], **{k: v for k, v in body.items() if k not in ("model", "messages")})
        assert _check_call(again) == called

    def test_auto_answers_text_or_a_call_never_a_mix(self, smol_server: Any) -> None:
        for prompt in ("Hello! How are you today?", "What's the weather in Paris in celsius?"):
            message = _chat(smol_server, prompt, tools=[TOOLS["get_weather"]], tool_choice="auto")["choices"][0]["message"]
            if message.get("tool_calls"):
                assert message["content"] is None
                jsonschema.validate(json.loads(message["tool_calls"][0]["function"]["arguments"]), TOOLS["get_weather"]["function"]["parameters"])
            else:
                assert message["content"] and not message["content"].startswith("{")

    def test_none_means_text(self, smol_server: Any) -> None:
        answer = _chat(smol_server, "Weather in Oslo?", tools=list(TOOLS.values()), tool_choice="none", max_tokens=8)
        assert answer["choices"][0]["message"]["content"] and "tool_calls" not in answer["choices"][0]["message"]

    def test_a_conversation_with_tool_results_continues(self, smol_server: Any) -> None:
        messages = [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Lima?"}, {"type": "text", "text": "Celsius, please."}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                                                                    "function": {"name": "get_weather", "arguments": '{"city": "Lima", "unit": "celsius"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 19, "sky": "cloudy"}'},
        ]
        answer = _chat(smol_server, messages, tools=[TOOLS["get_weather"]], tool_choice="none", max_tokens=24)
        assert answer["choices"][0]["message"]["content"]
        shorter = _chat(smol_server, messages[:2], max_tokens=1)["usage"]["prompt_tokens"]
        assert answer["usage"]["prompt_tokens"] > shorter + 20  # the call and its result are in the prompt

    def test_parallel_calls_come_as_a_list(self, smol_server: Any) -> None:
        answer = _chat(smol_server, "Weather in Paris and in Rome?", tools=[TOOLS["get_weather"]], tool_choice="required",
                       parallel_tool_calls=True, max_tokens=80)
        calls = answer["choices"][0]["message"].get("tool_calls") or []
        assert calls and len({c["id"] for c in calls}) == len(calls)
        for call in calls[:-1] if answer["choices"][0]["finish_reason"] == "length" else calls:
            jsonschema.validate(json.loads(call["function"]["arguments"]), TOOLS["get_weather"]["function"]["parameters"])


PERSON = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 24}, "age": {"type": "integer", "minimum": 0, "maximum": 130},
    "hobbies": {"type": "array", "items": {"type": "string", "enum": ["chess", "music", "hiking", "cooking", "reading"]}, "maxItems": 3}},
    "required": ["name", "age", "hobbies"]}


class TestStructuredOutput:
    @pytest.mark.parametrize("prompt", ["Describe Ana, a 31 year old chess player.", "Make up a person.",
                                        "Tell me about my grandfather.", "Who is the main character of a cooking show?",
                                        "Write a JSON profile for a hiker."])
    def test_json_schema_answers_validate(self, smol_server: Any, prompt: str) -> None:
        fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
        answer = _chat(smol_server, prompt, response_format=fmt, max_tokens=64)
        assert answer["choices"][0]["finish_reason"] == "stop"
        person = json.loads(answer["choices"][0]["message"]["content"])
        jsonschema.validate(person, PERSON)
        assert set(person) <= set(PERSON["properties"])  # strict: no other keys

    def test_other_formats(self, smol_server: Any) -> None:
        obj = _chat(smol_server, "Give me a JSON object.", response_format={"type": "json_object"}, max_tokens=40, stop=None)
        if obj["choices"][0]["finish_reason"] == "stop":
            assert isinstance(json.loads(obj["choices"][0]["message"]["content"]), dict)
        else:
            assert obj["choices"][0]["message"]["content"].startswith("{")
        tgi = _chat(smol_server, "Age of a cat?", response_format={"type": "json", "value": {"type": "integer", "minimum": 0, "maximum": 40}}, max_tokens=6)
        assert 0 <= json.loads(tgi["choices"][0]["message"]["content"]) <= 40
        regex = _chat(smol_server, "Today's date?", response_format={"type": "regex", "value": r"20[0-9]{2}-[01][0-9]-[0-3][0-9]"})
        assert re.fullmatch(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]", regex["choices"][0]["message"]["content"])

    def test_streamed_text_agrees_with_the_answer_for_a_seed(self, smol_server: Any) -> None:
        body = {"model": SMOL, "messages": [{"role": "user", "content": "Invent a person."}], "max_tokens": 40, "temperature": 1.2, "seed": 3,
                "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}}
        answer = _chat(smol_server, body["messages"], **{k: v for k, v in body.items() if k not in ("model", "messages")})
        calls, content, finish = _assembled(_stream(smol_server, "/v1/chat/completions", body))
        assert not calls and content == answer["choices"][0]["message"]["content"] and finish == answer["choices"][0]["finish_reason"]


PHONE = r"\(\d{3}\) \d{3}-\d{4}"


class TestGrammarOnTextGeneration:
    """TGI's ``grammar`` over TGI's routes and the spec's."""

    @pytest.mark.parametrize("path", ["/generate", "/", f"/models/{SMOL}", f"/models/{SMOL}/text-generation"])
    def test_regex_grammar(self, smol_server: Any, path: str) -> None:
        body = {"inputs": "Call me at", "parameters": {"grammar": {"type": "regex", "value": PHONE}, "max_new_tokens": 24, "return_full_text": False}}
        response = _post(smol_server, path, body)
        assert response.status_code == 200, response.text
        answer = response.json() if path == "/generate" else response.json()[0]  # TGI's /generate answers the object itself
        TextGenerationResult.model_validate(answer)
        assert re.fullmatch(PHONE, answer["generated_text"])

    def test_json_grammar_streamed_on_generate_stream(self, smol_server: Any) -> None:
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "count": {"type": "integer", "minimum": 0, "maximum": 9}},
                  "required": ["ok", "count"], "additionalProperties": False}
        body = {"inputs": "Status report:", "parameters": {"grammar": {"type": "json", "value": schema}, "max_new_tokens": 30, "seed": 1,
                                                          "do_sample": True, "details": True}}
        events = _stream(smol_server, "/generate_stream", body)
        for event in events:
            TextGenerationStreamOutput.model_validate(event)
        final = events[-1]
        assert final["details"]["finish_reason"] == "eos_token"
        jsonschema.validate(json.loads(final["generated_text"]), schema)
        # TGI's routes do not repeat the prompt; the non-streamed answer is the same text
        answer = _post(smol_server, "/generate", body).json()
        assert answer["generated_text"] == final["generated_text"] == "".join(e["token"]["text"] for e in events)
        assert [t["id"] for t in answer["details"]["tokens"]] == [e["token"]["id"] for e in events]


class TestUsageAndLogprobs:
    def test_include_usage_ends_the_stream(self, smol_server: Any) -> None:
        chunks = _stream(smol_server, "/v1/chat/completions", {"model": SMOL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6,
                                                               "stream_options": {"include_usage": True}})
        *body, last = chunks
        assert last["choices"] == [] and last["usage"]["completion_tokens"] == 6
        assert all(c["usage"] is None for c in body) and body[-1]["choices"][0]["finish_reason"] == "length"

    def test_logprobs_and_top_logprobs(self, smol_server: Any) -> None:
        answer = _chat(smol_server, "Name a colour.", max_tokens=6, logprobs=True, top_logprobs=3)
        entries = answer["choices"][0]["logprobs"]["content"]
        assert 1 <= len(entries) <= 6
        assert "".join(e["token"] for e in entries) == answer["choices"][0]["message"]["content"]
        for entry in entries:
            tops = [t["logprob"] for t in entry["top_logprobs"]]
            assert len(tops) == 3 and tops == sorted(tops, reverse=True)
            assert entry["logprob"] == tops[0]  # greedy: the chosen token is the most likely
            assert bytes(entry["bytes"]).decode() == entry["token"]
        chunks = _stream(smol_server, "/v1/chat/completions", {"model": SMOL, "messages": [{"role": "user", "content": "Name a colour."}],
                                                               "max_tokens": 6, "logprobs": True, "top_logprobs": 3})
        streamed = [e for c in chunks for e in (c["choices"][0].get("logprobs") or {}).get("content") or []]
        assert streamed == entries


class TestBadInput:
    @pytest.mark.parametrize("body, field, says", [
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {"a": {"type": "strin"}}}}}},
         "response_format", "strin"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "(?<=a)b"}}}},
         "response_format", "look-around"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integr"}}}}, "response_format.json_schema.schema", "integr"),
        ({"tools": [TOOLS["set_timer"]], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, "tool_choice", "get_weather"),
        ({"tools": [{"type": "function", "function": {"name": "t", "parameters": {"type": "object", "properties": {"a": {"$ref": "#/$defs/none"}}}}}],
          "tool_choice": "required"}, "tools", "none"),
        ({"tools": [TOOLS["set_timer"]], "response_format": {"type": "json_object"}}, "response_format", "tools"),
        ({"stream_options": {"include_usage": True}}, "stream_options", "stream"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]},
         "messages.0.content.1.image_url", "text only"),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{oops"}}]},
                       {"role": "tool", "tool_call_id": "1", "content": "x"}]}, "messages.1.tool_calls.0.function.arguments", "not JSON"),
        ({"n": 2}, "n", ""),
    ])
    def test_400_names_the_field(self, smol_server: Any, body: dict[str, Any], field: str, says: str) -> None:
        response = _post(smol_server, "/v1/chat/completions", {"model": SMOL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, **body})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error.startswith(f"Error in `{field}`:") and says in error, error

    @pytest.mark.parametrize("path, parameters, field", [
        ("/generate_stream", {"best_of": 2, "do_sample": True}, "parameters.best_of"),
        ("/generate_stream", {"decoder_input_details": True}, "parameters.decoder_input_details"),
        ("/generate", {"best_of": 2}, "parameters.best_of"),
        ("/generate", {"grammar": {"type": "regex", "value": "(unclosed"}}, "parameters.grammar.value"),
        ("/generate", {"grammar": {"type": "json", "value": {"type": "object", "properties": {"a": {"type": "numbr"}}}}}, "parameters.grammar"),
    ])
    def test_tgi_parameters_are_honoured_or_refused(self, smol_server: Any, path: str, parameters: dict[str, Any], field: str) -> None:
        response = _post(smol_server, path, {"inputs": "Hello", "parameters": {"max_new_tokens": 2, **parameters}})
        assert response.status_code == 400, response.text
        assert response.json()["error"].startswith(f"Error in `{field}`:"), response.json()

    def test_a_slow_schema_gets_a_400_and_stalls_nobody(self, smol_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(constraints, "COMPILE_TIMEOUT_S", 0.2)
        slow = {"anyOf": [{"type": "object", "properties": {f"q{i}_{j}": {"type": "string"} for j in range(5)}, "required": [f"q{i}_0"]}
                          for i in range(2500)]}
        result: dict[str, Any] = {}

        def hostile() -> None:
            result["response"] = _post(smol_server, "/v1/chat/completions", {"model": SMOL, "messages": [{"role": "user", "content": "hi"}],
                                                                             "response_format": {"type": "json_object", "value": slow}})

        thread = threading.Thread(target=hostile)
        thread.start()
        served_meanwhile = []
        while thread.is_alive():
            served_meanwhile.append(requests.get(f"{smol_server.url}/health", timeout=30).status_code)
        thread.join()
        assert result["response"].status_code == 400
        assert result["response"].json()["error"].startswith("Error in `response_format`: took longer than 0.2 s to compile")
        assert served_meanwhile and set(served_meanwhile) == {200}
        # the model still answers normally (its worker was never blocked by the compile)
        assert _chat(smol_server, "hi", max_tokens=2)["usage"]["completion_tokens"] == 2
