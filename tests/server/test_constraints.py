"""Constraints and the tool-call format, on SmolLM2's real tokenizer: what a grammar lets through
token by token, the masks a batching loop would use, caching, bounds on hostile schemas, and the
reader that turns streamed text back into tool calls."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import pytest
import torch

from hfbridge.server.backends import LoadContext
from hfbridge.server.backends.generation import GenerationBackend, bundled_smollm2_gguf, load
from hfbridge.server.constraints import (
    ConstraintError,
    ConstraintSpec,
    allocate_bitmask,
    apply_bitmask,
    fill_bitmasks,
)
from hfbridge.server.toolcalls import ToolCallFormat, ToolCallReader, closed_objects

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
                   "required": ["city"]}}}
SEARCH = {"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}


@pytest.fixture(scope="module")
def smol(model_cache: Path) -> GenerationBackend:
    return load(bundled_smollm2_gguf(), LoadContext(SMOL, model_cache))


def _ids(backend: GenerationBackend, text: str) -> list[int]:
    return backend.tokenizer(text, add_special_tokens=False).input_ids


def _accepts(backend: GenerationBackend, spec: ConstraintSpec, text: str, *, end: bool = True) -> bool:
    """Whether ``text`` (then the end-of-sequence token) gets through the constraint, token by
    token, each token also being allowed by the mask the loop would apply."""
    matcher = backend.constraints.compile(spec).matcher()
    mask = allocate_bitmask(1, backend.vocab_size)
    for token in _ids(backend, text) + ([backend.tokenizer.eos_token_id] if end else []):
        matcher.fill_bitmask(mask)
        if not (mask[0, token // 32] >> (token % 32)) & 1:
            return False
        if token == backend.tokenizer.eos_token_id:
            return True
        try:
            matcher.accept(token)
        except ConstraintError:
            return False
    return True


def _allowed(mask_row: torch.Tensor, vocab: int) -> set[int]:
    logits = torch.zeros(1, vocab)
    apply_bitmask(logits, mask_row.unsqueeze(0))
    return set(torch.nonzero(logits[0] == 0).flatten().tolist())


class TestCompiledConstraints:
    def test_json_schema_lets_through_only_matching_text(self, smol: GenerationBackend) -> None:
        spec = ConstraintSpec.json_schema({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
                                           "additionalProperties": False}, "response_format")
        assert _accepts(smol, spec, '{"n": 42}')
        assert not _accepts(smol, spec, '{"n": "42"}')
        assert not _accepts(smol, spec, '{"n": 4')  # the end-of-sequence token is refused until the JSON is complete
        assert not _accepts(smol, spec, '{"m": 1}')

    def test_regex_is_matched_whole(self, smol: GenerationBackend) -> None:
        spec = ConstraintSpec.regex(r"\d{3}-\d{4}", "parameters.grammar")
        assert _accepts(smol, spec, "555-1234")
        assert not _accepts(smol, spec, "555-123")
        assert not _accepts(smol, spec, "555-12345")
        assert not _accepts(smol, spec, "call 555-1234")

    def test_forced_tokens_and_finish(self, smol: GenerationBackend) -> None:
        spec = ToolCallFormat.from_request([WEATHER], "required", None).constraint()
        matcher = smol.constraints.compile(spec).matcher()
        forced = matcher.forced_tokens()
        # a single tool: everything up to the first argument's value is certain
        assert smol.tokenizer.decode(forced) == '{"name": "get_weather", "arguments": {"city":'
        for token in _ids(smol, ' "Paris"}}'):
            assert not matcher.finished
            matcher.accept(token)
        assert matcher.finished and matcher.accepting

    def test_one_mask_per_sequence_for_a_batch(self, smol: GenerationBackend) -> None:
        digits = smol.constraints.compile(ConstraintSpec.regex(r"[0-9]+", "g")).matcher()
        words = smol.constraints.compile(ConstraintSpec.regex(r"(yes|no)", "g")).matcher()
        vocab = smol.vocab_size
        bitmask = allocate_bitmask(3, vocab)
        fill_bitmasks([digits, None, words], bitmask)
        logits = torch.randn(3, vocab)
        original = logits.clone()
        apply_bitmask(logits, bitmask)
        assert torch.equal(logits[1], original[1])  # the unconstrained sequence is untouched
        allowed_digits = set(torch.nonzero(logits[0] > float("-inf")).flatten().tolist())
        allowed_words = set(torch.nonzero(logits[2] > float("-inf")).flatten().tolist())
        assert allowed_digits and all(smol.tokenizer.decode([t]).isdigit() for t in allowed_digits)
        assert {smol.tokenizer.decode([t]) for t in allowed_words} <= {"y", "ye", "yes", "n", "no"}
        assert _allowed(bitmask[0], vocab) == allowed_digits

    def test_compiled_once_per_spec(self, smol: GenerationBackend) -> None:
        spec = ConstraintSpec.json_schema({"type": "object", "properties": {"cached": {"type": "boolean"}}}, "response_format")
        assert not smol.constraints.cached(spec)
        first = smol.constraints.compile(spec)
        assert smol.constraints.cached(spec) and smol.constraints.compile(spec) is first
        # equal specs (same kind and text) share the entry; property order matters (it is the writing order)
        assert smol.constraints.compile(ConstraintSpec.json_schema({"type": "object", "properties": {"cached": {"type": "boolean"}}}, "x")) is first

    @pytest.mark.parametrize("schema, problem", [
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "strin"),
        ({"$ref": "#/definitions/missing"}, "missing"),
        ({"type": "string", "pattern": "(?<=a)b"}, "look-around"),
    ])
    def test_schemas_the_engine_cannot_compile_name_the_field(self, smol: GenerationBackend, schema: dict, problem: str) -> None:
        with pytest.raises(ConstraintError) as err:
            smol.constraints.compile(ConstraintSpec.json_schema(schema, "response_format"))
        assert err.value.field == "response_format" and problem in err.value.message
        # the failure is remembered: asking again does not compile again
        with pytest.raises(ConstraintError):
            smol.constraints.compile(ConstraintSpec.json_schema(schema, "response_format"))

    def test_deep_nesting_hits_the_engines_limit(self, smol: GenerationBackend) -> None:
        schema: dict = {"type": "string"}
        for _ in range(300):
            schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
        with pytest.raises(ConstraintError) as err:
            smol.constraints.compile(ConstraintSpec.json_schema(schema, "response_format"))
        assert "limit" in err.value.message

    async def test_slow_compile_times_out_without_blocking_the_loop(self, smol: GenerationBackend) -> None:
        smol.constraints.engine_tokenizer()
        # 2,000 alternative objects: valid, but far from a 50 ms compile
        slow = {"anyOf": [{"type": "object", "properties": {f"k{i}_{j}": {"type": "string"} for j in range(5)},
                           "required": [f"k{i}_0"]} for i in range(2000)]}
        spec = ConstraintSpec.json_schema(slow, "response_format")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        beat = asyncio.create_task(ticker())
        try:
            with pytest.raises(ConstraintError) as err:
                await smol.constraints.compile_async(spec, timeout=0.05)
            assert "took longer than 0.05 s" in err.value.message and err.value.field == "response_format"
            # the caller was answered while the compile still runs, and the loop keeps turning meanwhile
            assert not smol.constraints.cached(spec)
            at_timeout = ticks
            compiled = await smol.constraints.compile_async(spec, timeout=60)
            assert ticks > at_timeout, "the event loop kept running while the grammar compiled"
            # the compile finished in the background and landed in the cache for the next request
            assert smol.constraints.cached(spec) and compiled.spec == spec
        finally:
            beat.cancel()


class TestToolGrammar:
    def test_required_and_named_choice(self, smol: GenerationBackend) -> None:
        required = ToolCallFormat.from_request([WEATHER, SEARCH], "required", None).constraint()
        assert _accepts(smol, required, '{"name": "search", "arguments": {"query": "pizza"}}')
        assert _accepts(smol, required, '{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}')
        assert not _accepts(smol, required, "It is sunny.")
        assert not _accepts(smol, required, '{"name": "get_weather", "arguments": {"query": "pizza"}}')
        assert not _accepts(smol, required, '{"name": "nope", "arguments": {}}')
        named = ToolCallFormat.from_request([WEATHER, SEARCH], {"type": "function", "function": {"name": "search"}}, None).constraint()
        assert not _accepts(smol, named, '{"name": "get_weather", "arguments": {"city": "Oslo"}}')
        assert _accepts(smol, named, '{"name": "search", "arguments": {"query": "Oslo"}}')

    def test_auto_is_one_grammar_of_calls_with_no_tool_for_text(self, smol: GenerationBackend) -> None:
        """TGI's way: with "auto" the answer is always a call, and a text answer is a call of
        ``no_tool`` whose content is the text (read back as a plain message, see TestReader)."""
        auto = ToolCallFormat.from_request([WEATHER], "auto", None).constraint()
        assert _accepts(smol, auto, '{"name": "no_tool", "arguments": {"content": "It is sunny in Oslo today."}}')
        assert _accepts(smol, auto, '{"name": "get_weather", "arguments": {"city": "Oslo"}}')
        assert not _accepts(smol, auto, "It is sunny in Oslo today.")
        assert not _accepts(smol, auto, '{"name": "get_weather"} and some text')
        required = ToolCallFormat.from_request([WEATHER], "required", None).constraint()
        assert not _accepts(smol, required, '{"name": "no_tool", "arguments": {"content": "x"}}')
        assert ToolCallFormat.from_request([WEATHER], "none", None) is None
        assert ToolCallFormat.from_request(None, "auto", None) is None

    def test_arguments_carry_only_declared_parameters(self, smol: GenerationBackend) -> None:
        required = ToolCallFormat.from_request([WEATHER], "required", None).constraint()
        assert not _accepts(smol, required, '{"name": "get_weather", "arguments": {"city": "Oslo", "country": "NO"}}')
        opened = {**WEATHER, "function": {**WEATHER["function"], "parameters": {**WEATHER["function"]["parameters"], "additionalProperties": True}}}
        spec = ToolCallFormat.from_request([opened], "required", None).constraint()
        assert _accepts(smol, spec, '{"name": "get_weather", "arguments": {"city": "Oslo", "country": "NO"}}')

    def test_parallel_calls_are_a_list(self, smol: GenerationBackend) -> None:
        spec = ToolCallFormat.from_request([WEATHER, SEARCH], "required", True).constraint()
        assert _accepts(smol, spec, '[{"name": "search", "arguments": {"query": "a"}}, {"name": "get_weather", "arguments": {"city": "b"}}]')
        assert not _accepts(smol, spec, '{"name": "search", "arguments": {"query": "a"}}')

    def test_pydantic_style_refs_are_rebased(self, smol: GenerationBackend) -> None:
        """Tools from LangChain/LlamaIndex come from pydantic: ``$defs`` and ``$ref`` inside."""
        parameters = {
            "type": "object",
            "$defs": {"Unit": {"enum": ["c", "f"], "type": "string"}, "Place": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"$ref": "#/$defs/Unit"}}, "required": ["city", "unit"]}},
            "properties": {"place": {"$ref": "#/$defs/Place"}},
            "required": ["place"],
        }
        tool = {"type": "function", "function": {"name": "weather", "parameters": parameters}}
        fmt = ToolCallFormat.from_request([tool, SEARCH], "required", None)
        call = '{"name": "weather", "arguments": {"place": {"city": "Rome", "unit": "c"}}}'
        assert _accepts(smol, fmt.constraint(), call)
        assert not _accepts(smol, fmt.constraint(), call.replace('"c"', '"k"'))
        jsonschema.validate(json.loads(call)["arguments"], parameters)
        jsonschema.validate(json.loads(call), fmt.call_schema())

    def test_closed_objects(self) -> None:
        schema = {"type": "object", "properties": {"a": {"type": "object", "properties": {}}, "b": {"items": {"properties": {"c": {}}}}},
                  "additionalProperties": True}
        closed = closed_objects(schema)
        assert closed["additionalProperties"] is True  # what the schema says is kept
        assert closed["properties"]["a"]["additionalProperties"] is False
        assert closed["properties"]["b"]["items"]["additionalProperties"] is False
        assert "additionalProperties" not in schema["properties"]["a"]  # the input is not modified


class TestReader:
    CALLS = '[{"name": "search", "arguments": {"q": "a \\"}\\" b", "n": [1, {"x": 2}]}}, {"name": "get_weather", "arguments": {}}]'

    @pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
    def test_pieces_of_any_size_read_as_the_whole(self, size: int) -> None:
        reader = ToolCallReader(parallel=True, text_allowed=False)
        started, pieces = [], {0: "", 1: ""}
        for i in range(0, len(self.CALLS), size):
            events = reader.feed(self.CALLS[i:i + size])
            started += events.started
            for index, piece in events.arguments:
                pieces[index] += piece
        assert started == [(0, "search"), (1, "get_weather")]
        assert [c.name for c in reader.calls] == ["search", "get_weather"] and reader.complete
        assert pieces[0] == reader.calls[0].arguments == '{"q": "a \\"}\\" b", "n": [1, {"x": 2}]}'
        assert json.loads(pieces[1]) == {} and reader.calls[0].id != reader.calls[1].id

    def test_text_and_cut_off_calls(self) -> None:
        text = ToolCallReader(parallel=False, text_allowed=True)
        assert text.feed("Hello {there}").text == "Hello {there}" and not text.is_calls and not text.calls
        cut = ToolCallReader(parallel=False, text_allowed=True)
        cut.feed('{"name": "search", "arguments": {"q": "unfinis')
        assert cut.is_calls and cut.calls[0].arguments == '{"q": "unfinis' and not cut.complete

    @pytest.mark.parametrize("size", [1, 2, 5, 1000])
    def test_a_no_tool_call_reads_back_as_its_text(self, size: int) -> None:
        answer = '{"name": "no_tool", "arguments": {"content": "It is \\"sunny\\" in Troms\\u00f8 \\ud83d\\ude00, {really}."}}'
        reader = ToolCallReader(parallel=False, text_allowed=True)
        pieces = [reader.feed(answer[i:i + size]).text for i in range(0, len(answer), size)]
        assert "".join(pieces) == reader.text == 'It is "sunny" in Tromsø 😀, {really}.'
        assert reader.answered and not reader.calls and not reader.is_calls
        forced = ToolCallReader(parallel=False, text_allowed=False)  # only "auto" offers no_tool
        forced.feed('{"name": "no_tool", "arguments": {"content": "x"}}')
        assert [c.name for c in forced.calls] == ["no_tool"]


def test_a_constrained_answer_gets_room_to_finish_unless_the_request_says() -> None:
    from hfbridge.server.chat import CONSTRAINED_MAX_TOKENS, plan_chat

    user = [{"role": "user", "content": "hi"}]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert plan_chat(user, {"tools": [tool]}, stream=False).parameters["max_tokens"] == CONSTRAINED_MAX_TOKENS
    assert plan_chat(user, {"response_format": schema}, stream=False).parameters["max_tokens"] == CONSTRAINED_MAX_TOKENS
    assert plan_chat(user, {"tools": [tool], "max_tokens": 7}, stream=False).parameters["max_tokens"] == 7
    assert "max_tokens" not in plan_chat(user, {}, stream=False).parameters  # the backend's own default
    assert "max_tokens" not in plan_chat(user, {"tools": [tool], "tool_choice": "none"}, stream=False).parameters
