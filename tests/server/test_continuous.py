"""Continuous batching of generations on the real SmolLM2: concurrent requests share forward
passes, and every answer is still exactly the request's own (greedy tokens identical alone and
in a batch, seeded samples too, stops and budgets per request, streams equal to answers,
constraints valid next to unconstrained rows, cancelled requests gone from the batch).

Requests are made concurrent with threads (backend) or concurrent HTTP calls (server); each
test checks the batcher's counters to know the requests really shared steps. No timing is
asserted."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest
import requests

from hfbridge.server.backends import LoadContext
from hfbridge.server.backends.continuous import BatchStats
from hfbridge.server.backends.generation import GenerationBackend, bundled_smollm2_gguf, load
from hfbridge.server.cancellation import Cancelled, Jobs
from hfbridge.server.constraints import ConstraintSpec
from hfbridge.server.decoding import Decoding
from hfbridge.tasks import Task

pytestmark = pytest.mark.slow

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
TG, CHAT = Task.TEXT_GENERATION, Task.CONVERSATIONAL
PROMPTS = [
    "Once upon a time, in a small village by the sea, there lived",
    "The capital of France is",
    "def fibonacci(n):",
    "Here is a list of reasons why cats are better than dogs:",
]
GREEDY = {"max_new_tokens": 16, "details": True}


@pytest.fixture(scope="module")
def smol(model_cache: Path) -> GenerationBackend:
    return load(bundled_smollm2_gguf(), LoadContext(SMOL, model_cache, decoding=Decoding(max_batch_size=8)))


def _stats(backend: GenerationBackend) -> BatchStats:
    return replace(backend.batcher.stats)


def _together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Runs ``calls`` on threads released at the same moment; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(run, call) for call in calls]]


def _text(backend: GenerationBackend, prompt: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return backend.predict(TG, prompt, parameters)[0]


def _same(batched: Any, alone: Any) -> None:
    """Equal, log-probabilities up to float rounding: a batched matrix product may sum in
    another order than a single row's (the chosen tokens are what must not change)."""
    if isinstance(alone, dict):
        assert batched.keys() == alone.keys()
        for key in alone:
            _same(batched[key], alone[key])
    elif isinstance(alone, list):
        assert len(batched) == len(alone)
        for b, a in zip(batched, alone):
            _same(b, a)
    elif isinstance(alone, float):
        assert batched == pytest.approx(alone, rel=1e-3, abs=1e-4)
    else:
        assert batched == alone


def _chat(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


class TestBatchedAnswersAreTheRequestsOwn:
    def test_greedy_tokens_are_identical_alone_and_batched(self, smol: GenerationBackend) -> None:
        alone = [_text(smol, p, GREEDY) for p in PROMPTS]
        chat_alone = smol.predict(CHAT, _chat("Name three colours."), {"max_tokens": 16})
        before = _stats(smol)
        *batched, chat_batched = _together([lambda p=p: _text(smol, p, GREEDY) for p in PROMPTS]
                                           + [lambda: smol.predict(CHAT, _chat("Name three colours."), {"max_tokens": 16})])
        after = _stats(smol)
        assert after.max_batch >= 2 and after.shared_steps > before.shared_steps
        for one, many in zip(alone, batched):
            assert [t["id"] for t in many["details"]["tokens"]] == [t["id"] for t in one["details"]["tokens"]]
            assert many["generated_text"] == one["generated_text"]
        assert chat_batched["choices"] == chat_alone["choices"]

    def test_a_seeded_sample_is_the_same_alone_and_in_a_batch(self, smol: GenerationBackend) -> None:
        sampled = {"max_new_tokens": 12, "do_sample": True, "temperature": 0.9, "top_k": 40, "top_p": 0.9,
                   "repetition_penalty": 1.3, "seed": 11, "details": True}
        alone = _text(smol, PROMPTS[1], sampled)
        before = _stats(smol)
        batched, *_ = _together([lambda: _text(smol, PROMPTS[1], sampled)] + [lambda p=p: _text(smol, p, GREEDY) for p in PROMPTS[2:]])
        assert _stats(smol).shared_steps > before.shared_steps
        _same(batched, alone)
        assert batched["details"]["seed"] == 11

    def test_chat_penalties_and_logprobs_are_per_request(self, smol: GenerationBackend) -> None:
        penalised = {"max_tokens": 12, "frequency_penalty": 1.5, "presence_penalty": 0.5, "logprobs": True, "top_logprobs": 2}
        alone = smol.predict(CHAT, _chat("Say hello hello hello."), penalised)
        batched, plain = _together([lambda: smol.predict(CHAT, _chat("Say hello hello hello."), penalised),
                                    lambda: smol.predict(CHAT, _chat("Say hello hello hello."), {"max_tokens": 12})])
        _same(batched["choices"], alone["choices"])
        assert "logprobs" not in plain["choices"][0]
        assert all(len(t["top_logprobs"]) == 2 for t in batched["choices"][0]["logprobs"]["content"])

    def test_stop_sequences_and_budgets_are_per_request(self, smol: GenerationBackend) -> None:
        stop = {**GREEDY, "stop": [" She"]}
        short = {**GREEDY, "max_new_tokens": 3}
        long = {**GREEDY, "max_new_tokens": 24}
        stopped, cut, full = _together([lambda: _text(smol, PROMPTS[0], stop), lambda: _text(smol, PROMPTS[1], short),
                                        lambda: _text(smol, PROMPTS[3], long)])
        assert stopped["details"]["finish_reason"] == "stop_sequence"
        assert stopped["generated_text"].endswith("Elara.")
        _same(stopped, _text(smol, PROMPTS[0], stop))
        assert cut["details"]["finish_reason"] == "length" and cut["details"]["generated_tokens"] == 3
        assert full["details"]["generated_tokens"] == 24
        _same(full, _text(smol, PROMPTS[3], long))

    def test_a_streamed_answer_equals_the_answer(self, smol: GenerationBackend) -> None:
        answer = _text(smol, PROMPTS[0], {**GREEDY, "return_full_text": False})

        def streamed() -> tuple[str, str]:
            events = list(smol.stream(TG, PROMPTS[0], GREEDY))
            return "".join(e["token"]["text"] for e in events), events[-1]["generated_text"]

        (pieces, final), *_ = _together([streamed] + [lambda p=p: _text(smol, p, GREEDY) for p in PROMPTS[1:]])
        assert pieces == final == answer["generated_text"]


class TestJoiningAndLeaving:
    def test_a_request_joins_a_running_batch_and_leaves_it_when_done(self, smol: GenerationBackend) -> None:
        long = {**GREEDY, "max_new_tokens": 40}
        expected_long = _text(smol, PROMPTS[0], long)
        expected_short = _text(smol, PROMPTS[1], {**GREEDY, "max_new_tokens": 4})
        before = _stats(smol)
        stream = smol.stream(TG, PROMPTS[0], long)
        first = next(stream)  # the long request is decoding now
        short = _text(smol, PROMPTS[1], {**GREEDY, "max_new_tokens": 4})
        rest = list(stream)
        after = _stats(smol)
        assert after.joined_running > before.joined_running
        assert after.shared_steps > before.shared_steps
        # the short one left after its 4 tokens; the long one went on alone
        assert after.steps - before.steps > after.shared_steps - before.shared_steps
        _same(short, expected_short)
        assert first["token"]["text"] + "".join(e["token"]["text"] for e in rest) == expected_long["generated_text"][len(PROMPTS[0]):]

    def test_a_cancelled_request_leaves_the_batch(self, smol: GenerationBackend) -> None:
        jobs, event, started = Jobs(), threading.Event(), threading.Event()
        outcome: list[BaseException] = []

        def doomed() -> None:
            try:
                with jobs.running(event):
                    stream = smol.stream(TG, PROMPTS[3], {**GREEDY, "max_new_tokens": 200})
                    next(stream)
                    started.set()
                    for _ in stream:
                        pass
            except Cancelled as exc:
                outcome.append(exc)

        before = _stats(smol)
        thread = threading.Thread(target=doomed)
        thread.start()
        assert started.wait(120)
        other = _text(smol, PROMPTS[1], GREEDY)  # shares steps with the doomed one
        event.set()
        thread.join(120)
        assert outcome and jobs.cancelled == 1
        after = _stats(smol)
        assert after.left_early == before.left_early + 1
        _same(other, _text(smol, PROMPTS[1], GREEDY))

    def test_a_closed_stream_leaves_the_batch(self, smol: GenerationBackend) -> None:
        before = _stats(smol)
        stream = smol.stream(TG, PROMPTS[0], {**GREEDY, "max_new_tokens": 200})
        next(stream)
        stream.close()
        # the next request runs alone: the closed one is gone before its steps
        _text(smol, PROMPTS[1], {**GREEDY, "max_new_tokens": 4})
        after = _stats(smol)
        assert after.left_early == before.left_early + 1
        assert after.steps - before.steps < 200

    def test_a_failing_request_fails_alone(self, smol: GenerationBackend) -> None:
        broken = {"max_new_tokens": 8, "do_sample": True, "temperature": 1e-45, "seed": 1}

        def bad() -> str:
            try:
                _text(smol, PROMPTS[0], broken)
            except Exception as exc:  # noqa: BLE001 - the error the request gets
                return type(exc).__name__
            return "no error"

        error, good = _together([bad, lambda: _text(smol, PROMPTS[1], GREEDY)])
        assert error == "BackendInputError"
        _same(good, _text(smol, PROMPTS[1], GREEDY))


class TestConstraintsInABatch:
    def test_constrained_rows_stay_valid_next_to_unconstrained_ones(self, smol: GenerationBackend) -> None:
        schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
                  "required": ["name", "age"], "additionalProperties": False}
        json_constraint = smol.constraints.compile(ConstraintSpec.json_schema(schema, "response_format"))
        phone = smol.constraints.compile(ConstraintSpec.regex(r"\d{3}-\d{4}", "parameters.grammar"))
        plain_alone = _text(smol, PROMPTS[0], GREEDY)
        before = _stats(smol)
        as_json, as_phone, plain = _together([
            lambda: smol.predict(CHAT, _chat("Describe a person as JSON."), {"max_tokens": 48, "constraint": json_constraint}),
            lambda: _text(smol, "Call me at", {"max_new_tokens": 16, "constraint": phone, "return_full_text": False}),
            lambda: _text(smol, PROMPTS[0], GREEDY),
        ])
        assert _stats(smol).shared_steps > before.shared_steps
        jsonschema.validate(json.loads(as_json["choices"][0]["message"]["content"]), schema)
        assert len(as_phone["generated_text"]) == 8 and as_phone["generated_text"][3] == "-"
        _same(plain, plain_alone)


class TestOverHTTP:
    TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                             "parameters": {"type": "object", "properties": {
                                                 "city": {"type": "string", "maxLength": 20},
                                                 "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                                                 "required": ["city", "unit"]}}}

    def _post(self, server: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(f"{server.url}{path}", json=body, timeout=600)
        assert response.status_code == 200, response.text
        return response.json()

    def test_concurrent_clients_share_steps_with_tool_calls_valid(self, smol_server: Any) -> None:
        backend = smol_server.models.backend(SMOL)
        tool_body = {"model": SMOL, "max_tokens": 48, "tools": [self.TOOL], "tool_choice": "required",
                     "messages": _chat("What's the weather like in Oslo?")}
        text_body = {"inputs": PROMPTS[2], "parameters": {"max_new_tokens": 16}, "options": {"use_cache": False}}
        alone = self._post(smol_server, f"/models/{SMOL}", text_body)
        before = _stats(backend)
        answers = _together([lambda: self._post(smol_server, "/v1/chat/completions", tool_body) for _ in range(2)]
                            + [lambda: self._post(smol_server, f"/models/{SMOL}", text_body) for _ in range(2)])
        after = _stats(backend)
        assert after.shared_steps > before.shared_steps and after.max_batch >= 2
        for answer in answers[:2]:
            (call,) = answer["choices"][0]["message"]["tool_calls"]
            assert call["function"]["name"] == "get_weather"
            jsonschema.validate(json.loads(call["function"]["arguments"]), self.TOOL["function"]["parameters"])
        assert answers[2] == answers[3] == alone

    def test_a_streamed_answer_equals_the_answer_under_load(self, smol_server: Any) -> None:
        body = {"inputs": PROMPTS[0], "parameters": {"max_new_tokens": 16, "details": True}, "options": {"use_cache": False}}
        answer = self._post(smol_server, "/generate", body)

        def streamed() -> str:
            with requests.post(f"{smol_server.url}/generate_stream", json=body, stream=True, timeout=600) as response:
                assert response.status_code == 200
                events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith(b"data: ")]
            assert "".join(e["token"]["text"] for e in events) == events[-1]["generated_text"]
            return events[-1]["generated_text"]

        texts = _together([streamed] + [lambda p=p: self._post(smol_server, "/generate", {**body, "inputs": p}) for p in PROMPTS[1:]])
        assert texts[0] == answer["generated_text"]
