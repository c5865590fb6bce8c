"""TGI's text-generation parameters and OpenAI's chat sampling parameters, honoured by the
generation backend (tiny random GPT-2: the parameters' effects, not the answers' sense), and
constrained decoding through the backend's own loop."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from transformers import WatermarkDetector, WatermarkingConfig

from hfbridge.schemas import ChatCompletion, TextGenerationResult
from hfbridge.server.backends import BackendInputError, LoadContext
from hfbridge.server.backends.generation import WATERMARK_BIAS, WATERMARK_GREENLIST_RATIO, GenerationBackend, load
from hfbridge.server.constraints import ConstraintSpec
from hfbridge.tasks import Task
from tests.server.backends.test_generation import _tiny_folder

TG, CHAT = Task.TEXT_GENERATION, Task.CONVERSATIONAL
PROMPT = "The quick brown fox jumps over the lazy dog because"
MESSAGES = [{"role": "user", "content": "Tell me a story."}]


@pytest.fixture(scope="module")
def tiny(model_cache: Path) -> GenerationBackend:
    return load(_tiny_folder(model_cache), LoadContext("tiny/text-generation", model_cache))


def _answer(backend: GenerationBackend, prompt: str = PROMPT, **parameters) -> dict:
    out = backend.predict(TG, prompt, {"return_full_text": False, "details": True, **parameters})
    TextGenerationResult.model_validate(out[0])
    return out[0]


def _ids(answer: dict) -> list[int]:
    return [t["id"] for t in answer["details"]["tokens"]]


class TestTGIParameters:
    def test_typical_p_samples_and_narrows(self, tiny: GenerationBackend) -> None:
        typical = _answer(tiny, typical_p=0.2, seed=4, max_new_tokens=30)
        assert typical["details"]["seed"] == 4  # typical_p alone switches sampling on
        assert typical == _answer(tiny, typical_p=0.2, seed=4, max_new_tokens=30)
        wide = _answer(tiny, do_sample=True, seed=4, max_new_tokens=30)
        assert _ids(typical) != _ids(wide)
        assert min(t["logprob"] for t in typical["details"]["tokens"]) > min(t["logprob"] for t in wide["details"]["tokens"])

    def test_truncate_keeps_the_last_prompt_tokens(self, tiny: GenerationBackend) -> None:
        prompt_ids = tiny.tokenizer(PROMPT).input_ids
        answer = _answer(tiny, truncate=4, decoder_input_details=True, max_new_tokens=3)
        assert answer["details"]["prompt_tokens"] == 4
        assert [t["id"] for t in answer["details"]["prefill"]] == prompt_ids[-4:]
        assert _answer(tiny, truncate=len(prompt_ids) + 10, max_new_tokens=3)["details"]["prompt_tokens"] == len(prompt_ids)

    def test_decoder_input_details_are_the_models_prompt_logprobs(self, tiny: GenerationBackend) -> None:
        prompt_ids = tiny.tokenizer(PROMPT).input_ids
        prefill = _answer(tiny, decoder_input_details=True, max_new_tokens=1)["details"]["prefill"]
        assert [t["id"] for t in prefill] == prompt_ids and prefill[0]["logprob"] is None
        with torch.inference_mode():
            logits = tiny.model(input_ids=torch.tensor([prompt_ids])).logits[0]
        expected = torch.log_softmax(logits[:-1], dim=-1).gather(1, torch.tensor(prompt_ids[1:]).unsqueeze(1)).squeeze(1)
        assert torch.allclose(torch.tensor([t["logprob"] for t in prefill[1:]]), expected, atol=1e-4)
        assert _answer(tiny, max_new_tokens=1)["details"]["prefill"] == []

    def test_top_n_tokens(self, tiny: GenerationBackend) -> None:
        answer = _answer(tiny, top_n_tokens=3, max_new_tokens=5)
        tops = answer["details"]["top_tokens"]
        assert len(tops) == len(answer["details"]["tokens"]) == 5
        for token, top in zip(answer["details"]["tokens"], tops):
            assert len(top) == 3 and [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
            assert top[0]["id"] == token["id"] and top[0]["logprob"] == token["logprob"]  # greedy picks the first
        events = list(tiny.stream(TG, PROMPT, {"top_n_tokens": 3, "max_new_tokens": 5}))
        assert [e["top_tokens"] for e in events] == tops

    def test_best_of_returns_the_most_likely_of_several_samples(self, tiny: GenerationBackend) -> None:
        answer = _answer(tiny, best_of=3, do_sample=True, temperature=2.0, seed=10, max_new_tokens=8)
        others = answer["details"]["best_of_sequences"]
        assert len(others) == 2
        seeds = {answer["details"]["seed"], *(o["seed"] for o in others)}
        assert seeds == {10, 11, 12}

        def total(details: dict) -> float:
            return sum(t["logprob"] for t in details["tokens"])

        assert all(total(answer["details"]) >= total(o) for o in others)
        # each sequence is what its seed alone gives
        for other in others:
            assert other["generated_text"] == _answer(tiny, do_sample=True, temperature=2.0, seed=other["seed"], max_new_tokens=8)["generated_text"]
        with pytest.raises(BackendInputError) as err:
            _answer(tiny, best_of=2)
        assert err.value.field == "parameters.best_of"
        with pytest.raises(BackendInputError) as err:
            tiny.stream(TG, PROMPT, {"best_of": 2, "do_sample": True})
        assert err.value.field == "parameters.best_of"

    def test_frequency_penalty_discourages_repeats(self, tiny: GenerationBackend) -> None:
        plain = _ids(_answer(tiny, max_new_tokens=40))
        penalised = _ids(_answer(tiny, frequency_penalty=2.0, max_new_tokens=40))
        assert penalised != plain
        assert max(penalised.count(t) for t in penalised) < max(plain.count(t) for t in plain)

    def test_watermark_is_detectable(self, tiny: GenerationBackend) -> None:
        config = WatermarkingConfig(greenlist_ratio=WATERMARK_GREENLIST_RATIO, bias=WATERMARK_BIAS)
        detector = WatermarkDetector(model_config=tiny.model.config, device="cpu", watermarking_config=config)
        prompt_ids = tiny.tokenizer(PROMPT).input_ids
        found = {}
        for watermark in (False, True):
            answer = _answer(tiny, watermark=watermark, do_sample=True, seed=1, max_new_tokens=60)
            found[watermark] = detector(torch.tensor([prompt_ids + _ids(answer)]), return_dict=True).prediction[0]
        assert found == {False: False, True: True}


class TestChatParameters:
    def test_presence_and_frequency_penalties(self, tiny: GenerationBackend) -> None:
        def tokens(**parameters) -> list[str]:
            out = tiny.predict(CHAT, MESSAGES, {"max_tokens": 40, "logprobs": True, **parameters})
            return [e["token"] for e in out["choices"][0]["logprobs"]["content"]]

        plain, presence, frequency = tokens(), tokens(presence_penalty=2.0), tokens(frequency_penalty=2.0)
        assert presence != plain and frequency != plain
        assert len(set(presence)) > len(set(plain)) and len(set(frequency)) > len(set(plain))

    def test_logprobs_stream_like_the_answer(self, tiny: GenerationBackend) -> None:
        parameters = {"max_tokens": 12, "logprobs": True, "top_logprobs": 2, "temperature": 1.5, "seed": 2}
        answer = tiny.predict(CHAT, MESSAGES, parameters)
        ChatCompletion.model_validate(answer)
        entries = answer["choices"][0]["logprobs"]["content"]
        assert len(entries) == 12 and all(len(e["top_logprobs"]) == 2 for e in entries)
        streamed = [e for c in tiny.stream(CHAT, MESSAGES, parameters) for e in c["choices"][0]["logprobs"]["content"]]
        assert streamed == entries
        assert "logprobs" not in tiny.predict(CHAT, MESSAGES, {"max_tokens": 2})["choices"][0]


class TestConstrainedLoop:
    def test_grammar_in_the_loop_streamed_and_not(self, tiny: GenerationBackend) -> None:
        constraint = tiny.constraints.compile(ConstraintSpec.regex(r"[0-9]{3}-[a-z]{2,4}", "parameters.grammar"))
        for parameters in ({}, {"do_sample": True, "temperature": 3.0, "seed": 9}):
            answer = _answer(tiny, constraint=constraint, max_new_tokens=20, **parameters)
            assert re.fullmatch(r"[0-9]{3}-[a-z]{2,4}", answer["generated_text"]), answer
            assert answer["details"]["finish_reason"] == "eos_token"
            # the '-' is forced: certain (log-probability 0) and fed to the model without sampling
            dash = [t for t in answer["details"]["tokens"] if t["text"] == "-"]
            assert dash and dash[0]["logprob"] == 0.0
            events = list(tiny.stream(TG, PROMPT, {"constraint": constraint, "max_new_tokens": 20, **parameters}))
            assert events[-1]["generated_text"] == answer["generated_text"]
            assert [e["token"] for e in events] == answer["details"]["tokens"]

    def test_max_tokens_cuts_a_constrained_answer(self, tiny: GenerationBackend) -> None:
        constraint = tiny.constraints.compile(ConstraintSpec.regex(r"[a-z]{30}", "parameters.grammar"))
        answer = _answer(tiny, constraint=constraint, max_new_tokens=3)
        assert answer["details"]["finish_reason"] == "length" and answer["details"]["generated_tokens"] == 3
