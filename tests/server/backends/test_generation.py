"""The text-generation / conversational backend: a tiny random GPT-2 for the parameters, the real
SmolLM2 (from its GGUF file) for answers that must make sense."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from pydantic import TypeAdapter

from hfbridge.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    GenerationDetails,
    TextGenerationResult,
    TextGenerationStreamOutput,
)
from hfbridge.server.backends import BackendInputError, LoadContext
from hfbridge.server.backends._common import TINY_MARKER
from hfbridge.server.backends.generation import (
    SIMPLE_CHAT_TEMPLATE,
    GenerationBackend,
    build_tiny,
    bundled_smollm2_gguf,
    load,
)
from hfbridge.tasks import Task

TG, CHAT = Task.TEXT_GENERATION, Task.CONVERSATIONAL
PROMPT = "Paris is the capital of"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def _tiny_folder(model_cache: Path) -> Path:
    folder = model_cache / "tiny" / TG.value
    if not (folder / TINY_MARKER).is_file():
        build_tiny(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(model_cache: Path) -> GenerationBackend:
    return load(_tiny_folder(model_cache), LoadContext("tiny/text-generation", model_cache))


def _generate(backend: GenerationBackend, prompt: str = PROMPT, **parameters) -> dict:
    out = backend.predict(TG, prompt, parameters)
    TypeAdapter(list[TextGenerationResult]).validate_python(out)
    assert len(out) == 1
    return out[0]


def _continuation(backend: GenerationBackend, prompt: str = PROMPT, **parameters) -> str:
    return _generate(backend, prompt, return_full_text=False, **parameters)["generated_text"]


def _reference(backend: GenerationBackend, prompt: str, **generate_kwargs) -> str:
    """What transformers' own generate() gives, decoded the way the backend decodes."""
    ids = backend.tokenizer(prompt, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = backend.model.generate(ids, do_sample=False, pad_token_id=backend.tokenizer.pad_token_id, **generate_kwargs)
    return backend.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True, clean_up_tokenization_spaces=False)


class TestTinyModel:
    def test_build_is_deterministic_and_marked(self, tmp_path: Path, model_cache: Path) -> None:
        build_tiny(tmp_path / "a")
        build_tiny(tmp_path / "b")
        assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
        assert "meaningless" in (tmp_path / "a" / TINY_MARKER).read_text()
        backend = load(tmp_path / "a", LoadContext("t", model_cache))
        assert backend.meaningless and backend.tasks == {TG, CHAT}


class TestTextGeneration:
    def test_default_is_full_text_greedy_and_matches_transformers(self, tiny: GenerationBackend) -> None:
        out = _generate(tiny)
        assert set(out) == {"generated_text"}
        assert out["generated_text"].startswith(PROMPT)
        assert out == _generate(tiny)
        assert out["generated_text"] == PROMPT + _reference(tiny, PROMPT, max_new_tokens=20)

    def test_return_full_text_false_drops_the_prompt(self, tiny: GenerationBackend) -> None:
        assert PROMPT + _continuation(tiny) == _generate(tiny)["generated_text"]

    def test_max_new_tokens_and_details(self, tiny: GenerationBackend) -> None:
        out = _generate(tiny, max_new_tokens=5, details=True, return_full_text=False)
        details = out["details"]
        GenerationDetails.model_validate(details)
        assert {k: details[k] for k in ("finish_reason", "generated_tokens", "prompt_tokens", "seed")} == {
            "finish_reason": "length",
            "generated_tokens": 5,
            "prompt_tokens": len(tiny.tokenizer(PROMPT).input_ids),
            "seed": None,
        }
        # TGI's typed details: every generated token (texts concatenate to the answer), no prefill unless asked
        assert len(details["tokens"]) == 5 and details["prefill"] == []
        assert "".join(t["text"] for t in details["tokens"]) == out["generated_text"]
        assert _generate(tiny, details=True)["details"]["generated_tokens"] == 20

    def test_repetition_penalty_matches_transformers(self, tiny: GenerationBackend) -> None:
        penalised = _continuation(tiny, repetition_penalty=1.5, max_new_tokens=30)
        assert penalised != _continuation(tiny, max_new_tokens=30)
        assert penalised == _reference(tiny, PROMPT, max_new_tokens=30, repetition_penalty=1.5)

    def test_sampling_is_seeded_locally(self, tiny: GenerationBackend) -> None:
        greedy = _continuation(tiny)
        rng = torch.get_rng_state()
        first = _generate(tiny, do_sample=True, temperature=5.0, seed=7, return_full_text=False, details=True)
        assert torch.equal(rng, torch.get_rng_state()), "sampling must not touch global torch state"
        assert first["details"]["seed"] == 7
        assert first["generated_text"] == _continuation(tiny, do_sample=True, temperature=5.0, seed=7)
        assert first["generated_text"] != _continuation(tiny, do_sample=True, temperature=5.0, seed=8)
        assert first["generated_text"] != greedy
        # a temperature alone switches sampling on; an unseeded run reports the seed it drew
        drawn = _generate(tiny, temperature=5.0, details=True, return_full_text=False)
        assert drawn["details"]["seed"] is not None
        assert drawn["generated_text"] == _continuation(tiny, temperature=5.0, seed=drawn["details"]["seed"])

    def test_greedy_whenever_sampling_is_off_or_degenerate(self, tiny: GenerationBackend) -> None:
        greedy = _continuation(tiny)
        assert _continuation(tiny, do_sample=False, temperature=5.0, top_k=50, seed=1) == greedy
        assert _continuation(tiny, do_sample=True, temperature=0.0, seed=1) == greedy
        assert _continuation(tiny, do_sample=True, top_k=1, seed=1) == greedy
        assert _continuation(tiny, do_sample=True, top_p=1e-6, seed=1) == greedy

    def test_top_k_and_top_p_limit_the_choice(self, tiny: GenerationBackend) -> None:
        # top_k=1 leaves one candidate: every token is certain under the warped distribution
        events = list(tiny.stream(TG, PROMPT, {"do_sample": True, "top_k": 1, "seed": 3}))
        assert all(e["token"]["logprob"] == 0.0 for e in events)
        wide = [e["token"]["logprob"] for e in tiny.stream(TG, PROMPT, {"do_sample": True, "top_k": 1000, "seed": 3})]
        narrow = [e["token"]["logprob"] for e in tiny.stream(TG, PROMPT, {"do_sample": True, "top_p": 0.05, "seed": 3})]
        assert min(wide) < -1.0 and min(narrow) > min(wide)

    def test_stop_sequences_cut_before_the_stop(self, tiny: GenerationBackend) -> None:
        text = _continuation(tiny, repetition_penalty=1.5, max_new_tokens=30)
        # a stop that begins inside a token ("ANG" is one token; "NGA" spans two)
        for stop in ("NGA", "recognition", " rec"):
            assert stop in text
            out = _generate(tiny, repetition_penalty=1.5, max_new_tokens=30, stop=["zzz", stop], details=True, return_full_text=False)
            assert out["generated_text"] == text[: text.index(stop)]
            assert out["details"]["finish_reason"] == "stop_sequence"
            events = list(tiny.stream(TG, PROMPT, {"repetition_penalty": 1.5, "max_new_tokens": 30, "stop": [stop]}))
            streamed = "".join(e["token"]["text"] for e in events)
            assert streamed == out["generated_text"] == events[-1]["generated_text"]
            assert len(events) == out["details"]["generated_tokens"]

    def test_stream_events_concatenate_to_the_answer(self, tiny: GenerationBackend) -> None:
        prompt = "Café au lait 😀 costs 3 €:"
        for parameters in ({}, {"do_sample": True, "temperature": 3.0, "seed": 11, "max_new_tokens": 40}):
            events = list(tiny.stream(TG, prompt, parameters))
            for event in events:
                TextGenerationStreamOutput.model_validate(event)
            assert [e["index"] for e in events] == list(range(len(events)))
            assert all(e["generated_text"] is None and e["details"] is None for e in events[:-1])
            final = events[-1]
            assert "".join(e["token"]["text"] for e in events) == final["generated_text"]
            ids = [e["token"]["id"] for e in events]
            assert final["generated_text"] == tiny.tokenizer.decode(ids, skip_special_tokens=True)
            answer = _generate(tiny, prompt, return_full_text=False, details=True, **parameters)
            assert final["generated_text"] == answer["generated_text"]
            assert final["details"] == {k: answer["details"][k] for k in final["details"]}
            assert [e["token"] for e in events] == answer["details"]["tokens"]

    def test_prompt_longer_than_the_context_is_refused_or_capped(self, tiny: GenerationBackend) -> None:
        with pytest.raises(BackendInputError) as err:
            tiny.predict(TG, "fox " * 300, {})
        assert err.value.field == "inputs"
        # a prompt a few tokens short of the 256 positions gets only those few
        prompt = "fox" + " fox" * 249
        room = 256 - len(tiny.tokenizer(prompt).input_ids)
        assert 0 < room < 20
        details = _generate(tiny, prompt, details=True)["details"]
        assert (details["generated_tokens"], details["finish_reason"]) == (room, "length")

    def test_empty_prompt_starts_from_the_start_token(self, tiny: GenerationBackend) -> None:
        assert _generate(tiny, "", max_new_tokens=3, details=True)["details"]["generated_tokens"] == 3

    def test_stream_refuses_other_tasks(self, tiny: GenerationBackend) -> None:
        with pytest.raises(BackendInputError) as err:
            tiny.stream(Task.FILL_MASK, "x", {})
        assert err.value.field == "stream"


class TestConversational:
    def test_completion_shape_and_max_tokens(self, tiny: GenerationBackend) -> None:
        out = tiny.predict(CHAT, MESSAGES, {"max_tokens": 7})
        completion = ChatCompletion.model_validate(out)
        assert out["id"].startswith("chatcmpl-") and out["model"] == "tiny/text-generation"
        assert completion.choices[0].message.role == "assistant"
        assert out["choices"][0]["finish_reason"] == "length"
        assert out["usage"]["completion_tokens"] == 7
        assert out["usage"]["total_tokens"] == out["usage"]["prompt_tokens"] + 7
        default = tiny.predict(CHAT, MESSAGES, {})
        assert default["usage"]["completion_tokens"] == 64
        assert default["choices"][0]["message"]["content"].startswith(out["choices"][0]["message"]["content"])

    def test_stream_chunks_match_the_completion(self, tiny: GenerationBackend) -> None:
        parameters = {"max_tokens": 12, "temperature": 2.0, "seed": 5}
        chunks = list(tiny.stream(CHAT, MESSAGES, parameters))
        for chunk in chunks:
            ChatCompletionChunk.model_validate(chunk)
            assert chunk["object"] == "chat.completion.chunk"
        assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"
        content = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
        assert content == tiny.predict(CHAT, MESSAGES, parameters)["choices"][0]["message"]["content"]

    def test_sampling_seed_and_stop(self, tiny: GenerationBackend) -> None:
        def content(**parameters) -> str:
            return tiny.predict(CHAT, MESSAGES, {"max_tokens": 20, **parameters})["choices"][0]["message"]["content"]

        greedy = content()
        assert content(temperature=0.0) == greedy
        assert content(temperature=3.0, seed=1) == content(temperature=3.0, seed=1) != content(temperature=3.0, seed=2)
        assert content(top_p=1e-6, seed=4) == greedy
        sampled = content(temperature=3.0, seed=1)
        stop = sampled[5:8]
        out = tiny.predict(CHAT, MESSAGES, {"max_tokens": 20, "temperature": 3.0, "seed": 1, "stop": [stop]})
        assert out["choices"][0]["message"]["content"] == sampled[: sampled.index(stop)]
        assert out["choices"][0]["finish_reason"] == "stop"

    def test_multi_turn_messages_reach_the_template(self, tiny: GenerationBackend) -> None:
        one = tiny.predict(CHAT, MESSAGES, {"max_tokens": 1})["usage"]["prompt_tokens"]
        turns = [{"role": "system", "content": "Be brief."}, *MESSAGES, {"role": "assistant", "content": "Paris."},
                 {"role": "user", "content": "And of Germany?"}]
        assert tiny.predict(CHAT, turns, {"max_tokens": 1})["usage"]["prompt_tokens"] > one

    def test_fallback_template_for_models_without_one(self, model_cache: Path) -> None:
        backend = load(_tiny_folder(model_cache), LoadContext("t", model_cache))
        backend.tokenizer.chat_template = None
        prompt = backend.tokenizer.apply_chat_template(MESSAGES, chat_template=SIMPLE_CHAT_TEMPLATE, tokenize=False, add_generation_prompt=True)
        assert prompt == "<|user|>\nWhat is the capital of France?</s>\n<|assistant|>\n"
        out = backend.predict(CHAT, MESSAGES, {"max_tokens": 3})
        assert out["usage"]["prompt_tokens"] == len(backend.tokenizer(prompt, add_special_tokens=False).input_ids)

    def test_bad_messages(self, tiny: GenerationBackend) -> None:
        with pytest.raises(BackendInputError) as err:
            tiny.predict(CHAT, [], {})
        assert err.value.field == "messages"
        with pytest.raises(BackendInputError) as err:
            tiny.stream(CHAT, [{"role": "user", "content": "fox " * 300}], {})
        assert err.value.field == "messages"


@pytest.fixture(scope="module")
def smol(model_cache: Path) -> GenerationBackend:
    return load(bundled_smollm2_gguf(), LoadContext("HuggingFaceTB/SmolLM2-135M-Instruct", model_cache))


class TestSmolLM2:
    """The real model, loaded from the GGUF file (first run converts it, ~40 s; then cached)."""

    def test_second_load_comes_from_the_safetensors_cache(self, smol: GenerationBackend, model_cache: Path) -> None:
        folders = list((model_cache / "gguf").glob("HuggingFaceTB_SmolLM2-135M-Instruct-*"))
        assert len(folders) == 1 and (folders[0] / "model.safetensors").is_file()
        before = (folders[0] / "model.safetensors").stat().st_mtime_ns
        started = time.perf_counter()
        again = load(bundled_smollm2_gguf(), LoadContext("HuggingFaceTB/SmolLM2-135M-Instruct", model_cache))
        assert time.perf_counter() - started < 10
        assert (folders[0] / "model.safetensors").stat().st_mtime_ns == before
        assert again.tokenizer.chat_template == smol.tokenizer.chat_template is not None
        assert not again.meaningless

    def test_greedy_chat_answer(self, smol: GenerationBackend) -> None:
        out = smol.predict(CHAT, MESSAGES, {})
        ChatCompletion.model_validate(out)
        answer = out["choices"][0]["message"]["content"]
        assert "Paris" in answer and answer.isascii()
        assert out["choices"][0]["finish_reason"] == "stop"  # ended by <|im_end|>, not by length

    def test_stream_ends_with_the_eos_token(self, smol: GenerationBackend) -> None:
        prompt = smol.tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
        events = list(smol.stream(TG, prompt, {"max_new_tokens": 40}))
        last = events[-1]
        assert last["token"]["special"] and last["token"]["text"] == ""
        assert last["details"]["finish_reason"] == "eos_token"
        assert "".join(e["token"]["text"] for e in events) == last["generated_text"]
        assert "Paris" in last["generated_text"]
