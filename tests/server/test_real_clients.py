"""Clients nobody here wrote, pointed at ``hfbridge serve``: the ``openai`` package and
huggingface_hub's ``InferenceClient`` parse the tool calls, structured answers and grammars the
server sends (real SmolLM2 behind it)."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import jsonschema
import pytest

from tests.server.test_chat_tools import SMOL, TOOLS

openai = pytest.importorskip("openai")
huggingface_hub = pytest.importorskip("huggingface_hub")

pytestmark = pytest.mark.slow

WEATHER = TOOLS["get_weather"]
MESSAGES = [{"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture()
def hub_client(smol_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """huggingface_hub refuses every request while HF_HUB_OFFLINE is set (the suite sets it so
    nothing reaches the hub); these requests go only to 127.0.0.1."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield huggingface_hub.InferenceClient(base_url=smol_server.url, timeout=300)


@pytest.fixture()
def openai_client(smol_server: Any) -> Iterator[Any]:
    client = openai.OpenAI(base_url=f"{smol_server.url}/v1", api_key="unused", max_retries=0, timeout=300)
    yield client
    client.close()


def _weather_arguments(arguments: str) -> dict[str, Any]:
    parsed = json.loads(arguments)
    jsonschema.validate(parsed, WEATHER["function"]["parameters"])
    return parsed


class TestOpenAI:
    def test_tool_calls(self, openai_client: Any) -> None:
        completion = openai_client.chat.completions.create(model=SMOL, messages=MESSAGES, tools=[WEATHER], tool_choice="required", max_tokens=64)
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls
        assert call.type == "function" and call.function.name == "get_weather" and call.id
        _weather_arguments(call.function.arguments)
        assert completion.usage.completion_tokens > 0 and completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens

    def test_streamed_tool_calls_with_usage(self, openai_client: Any) -> None:
        stream = openai_client.chat.completions.create(model=SMOL, messages=MESSAGES, tools=[WEATHER], tool_choice="required", max_tokens=64,
                                                       stream=True, stream_options={"include_usage": True}, temperature=0.7, seed=5)
        name, arguments, finish, usage, ids = "", "", None, None, set()
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for fragment in choice.delta.tool_calls or []:
                    assert fragment.index == 0
                    ids.add(fragment.id) if fragment.id else None
                    name += fragment.function.name or ""
                    arguments += fragment.function.arguments or ""
        assert name == "get_weather" and finish == "tool_calls" and len(ids) == 1
        streamed = _weather_arguments(arguments)
        assert usage is not None and usage.completion_tokens > 0
        again = openai_client.chat.completions.create(model=SMOL, messages=MESSAGES, tools=[WEATHER], tool_choice="required", max_tokens=64,
                                                      temperature=0.7, seed=5)
        assert json.loads(again.choices[0].message.tool_calls[0].function.arguments) == streamed

    def test_the_tool_result_goes_back(self, openai_client: Any) -> None:
        first = openai_client.chat.completions.create(model=SMOL, messages=MESSAGES, tools=[WEATHER], tool_choice="required", max_tokens=64)
        call = first.choices[0].message.tool_calls[0]
        follow = openai_client.chat.completions.create(
            model=SMOL, tools=[WEATHER], tool_choice="none", max_tokens=16,
            messages=[*MESSAGES, first.choices[0].message.model_dump(exclude_none=True),
                      {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'}])
        assert follow.choices[0].message.content and not follow.choices[0].message.tool_calls

    def test_structured_output(self, openai_client: Any) -> None:
        schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}, "celsius": {"type": "integer"}},
                  "required": ["city", "celsius"], "additionalProperties": False}
        completion = openai_client.chat.completions.create(
            model=SMOL, messages=MESSAGES, max_tokens=48,
            response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": schema, "strict": True}})
        jsonschema.validate(json.loads(completion.choices[0].message.content), schema)


class TestHuggingFaceHub:
    def test_tool_calls(self, hub_client: Any) -> None:
        output = hub_client.chat_completion(messages=MESSAGES, tools=[WEATHER], tool_choice="required", max_tokens=64)
        (call,) = output.choices[0].message.tool_calls
        assert call.function.name == "get_weather" and isinstance(call.id, str)
        _weather_arguments(call.function.arguments)
        assert output.choices[0].finish_reason == "tool_calls" and output.usage.completion_tokens > 0

    def test_streamed_tool_calls(self, hub_client: Any) -> None:
        arguments, names = "", []
        for chunk in hub_client.chat_completion(messages=MESSAGES, tools=[WEATHER], tool_choice="required", max_tokens=64, stream=True):
            for fragment in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
                names.append(fragment.function.name)
                arguments += fragment.function.arguments or ""
        assert names[0] == "get_weather" and not any(names[1:])
        _weather_arguments(arguments)

    def test_response_format(self, hub_client: Any) -> None:
        """huggingface_hub rewrites ``json_schema`` as TGI's ``json_object`` with a ``value``."""
        schema = {"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}, "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
                  "required": ["answer", "confidence"], "additionalProperties": False}
        output = hub_client.chat_completion(messages=[{"role": "user", "content": "Is Paris in France?"}], max_tokens=40,
                                            response_format={"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}})
        jsonschema.validate(json.loads(output.choices[0].message.content), schema)

    def test_text_generation_with_a_grammar_at_an_endpoint_url(self, smol_server: Any, hub_client: Any) -> None:
        """An endpoint URL as the model: huggingface_hub posts TGI's body to the URL itself."""
        endpoint = huggingface_hub.InferenceClient(model=smol_server.url, timeout=300)
        pattern = r"[A-Z][a-z]{2,8}, [0-9]{1,2} (May|June)"
        output = endpoint.text_generation("The party is on", grammar={"type": "regex", "value": pattern}, max_new_tokens=20, details=True)
        assert re.fullmatch(pattern, output.generated_text)
        assert output.details.finish_reason == "eos_token" and output.details.tokens
        streamed = "".join(t.token.text for t in endpoint.text_generation("The party is on", grammar={"type": "regex", "value": pattern},
                                                                            max_new_tokens=20, stream=True, details=True))
        assert streamed == output.generated_text
