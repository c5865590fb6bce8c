"""The encoder-decoder backend on tiny random models: a BART (summarization, no language codes),
an NLLB-style M2M100 (translation with language codes) and a T5 (text2text, with T5's task
prefixes). Outputs are meaningless; shapes, parameters and errors are what is checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import TypeAdapter

from hfbridge.schemas import GeneratedText, SummarizationResult, TranslationResult
from hfbridge.server.backends import BackendInputError, LoadContext
from hfbridge.server.backends._common import TINY_MARKER
from hfbridge.server.backends.seq2seq import LOADERS, TINY_BUILDERS, Seq2SeqBackend
from hfbridge.tasks import Task

SUM, TR, T2T = Task.SUMMARIZATION, Task.TRANSLATION, Task.TEXT2TEXT_GENERATION
TEXT = "The quick brown fox jumps over the lazy dog."
LONG = "The sky is blue, the tree is green, and the grass is wet after rain. " * 8  # > 64 tokens


def _load(model_cache: Path, task: Task) -> Seq2SeqBackend:
    folder = model_cache / "tiny" / task.value
    if not (folder / TINY_MARKER).is_file():
        TINY_BUILDERS[task](folder)
    return LOADERS[task](folder, LoadContext(f"tiny/{task.value}", model_cache))


@pytest.fixture(scope="module")
def bart(model_cache: Path) -> Seq2SeqBackend:
    return _load(model_cache, SUM)


@pytest.fixture(scope="module")
def nllb(model_cache: Path) -> Seq2SeqBackend:
    return _load(model_cache, TR)


@pytest.fixture(scope="module")
def t5(model_cache: Path) -> Seq2SeqBackend:
    return _load(model_cache, T2T)


def _summary(backend: Seq2SeqBackend, text: str = TEXT, **parameters) -> str:
    out = backend.predict(SUM, text, parameters)
    TypeAdapter(list[SummarizationResult]).validate_python(out)
    return out[0]["summary_text"]


def _translation(backend: Seq2SeqBackend, text: str = TEXT, **parameters) -> str:
    out = backend.predict(TR, text, {"max_length": 10, **parameters})
    TypeAdapter(list[TranslationResult]).validate_python(out)
    return out[0]["translation_text"]


def _generated(backend: Seq2SeqBackend, text: str = TEXT, **parameters) -> str:
    out = backend.predict(T2T, text, parameters)
    TypeAdapter(list[GeneratedText]).validate_python(out)
    return out[0]["generated_text"]


def _reference(backend: Seq2SeqBackend, text: str, **parameters) -> tuple[str, int]:
    """What transformers' generate() gives: the decoded text and the number of tokens generated."""
    encoding = backend.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        out = backend.model.generate(**encoding, num_beams=1, do_sample=False, **parameters)
    return backend.tokenizer.decode(out[0], skip_special_tokens=True), out.shape[1] - 1  # less the start token


def test_builders_are_deterministic_and_marked(tmp_path: Path, bart, nllb, t5) -> None:
    TINY_BUILDERS[TR](tmp_path / "a")
    TINY_BUILDERS[TR](tmp_path / "b")
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert "meaningless" in (tmp_path / "a" / TINY_MARKER).read_text()
    for backend in (bart, nllb, t5):
        assert backend.meaningless and backend.tasks == {SUM, TR, T2T}


class TestSummarization:
    def test_lengths(self, bart) -> None:
        assert _summary(bart) == _summary(bart)  # greedy: reproducible
        short, long = _summary(bart, max_length=4), _summary(bart, min_length=16, max_length=16)
        assert len(short) < len(long)
        # max_length counts the decoder's start token, so 4 leaves at most 3 tokens
        assert _reference(bart, TEXT, max_length=4) == (short, 3)

    def test_long_input_is_truncated_and_lengths_capped(self, bart) -> None:
        _summary(bart, LONG, max_length=8)
        _summary(bart, TEXT, min_length=500, max_length=500)  # capped at the 64 positions, no crash

    def test_min_above_max(self, bart) -> None:
        with pytest.raises(BackendInputError) as caught:
            bart.predict(SUM, TEXT, {"min_length": 9, "max_length": 8})
        assert caught.value.field == "parameters.min_length"

    def test_t5_prefix(self, t5) -> None:
        assert _summary(t5, max_length=8) == _generated(t5, "summarize: " + TEXT, max_length=8)


class TestTranslationWithLanguageCodes:
    def test_target_language_is_forced(self, nllb) -> None:
        french, german = _translation(nllb, tgt_lang="fra_Latn"), _translation(nllb, tgt_lang="deu_Latn")
        assert french != german
        assert _translation(nllb) == french  # the tokenizer's saved tgt_lang
        encoding = nllb.tokenizer(TEXT, return_tensors="pt")
        forced = nllb.tokenizer.convert_tokens_to_ids("deu_Latn")
        with torch.inference_mode():
            out = nllb.model.generate(**encoding, max_length=10, do_sample=False, num_beams=1, forced_bos_token_id=forced)
        assert nllb.tokenizer.decode(out[0], skip_special_tokens=True) == german

    def test_source_language_is_set_per_request(self, nllb) -> None:
        english = _translation(nllb, src_lang="eng_Latn", tgt_lang="deu_Latn")
        assert _translation(nllb, src_lang="fra_Latn", tgt_lang="deu_Latn") != english
        assert _translation(nllb, tgt_lang="deu_Latn") == english  # back to the saved src_lang

    def test_max_length(self, nllb) -> None:
        assert len(_translation(nllb, max_length=3)) < len(_translation(nllb, max_length=12))

    @pytest.mark.parametrize("field", ["src_lang", "tgt_lang"])
    def test_unknown_code(self, nllb, field: str) -> None:
        with pytest.raises(BackendInputError) as caught:
            nllb.predict(TR, TEXT, {field: "xx_Latn"})
        assert caught.value.field == f"parameters.{field}"


class TestTranslationWithoutLanguageCodes:
    def test_t5_prefixes_are_chosen_by_language(self, t5) -> None:
        german = _translation(t5, src_lang="en", tgt_lang="de")
        assert german == _generated(t5, "translate English to German: " + TEXT, max_length=10)
        assert _translation(t5, tgt_lang="fr") == _generated(t5, "translate English to French: " + TEXT, max_length=10)
        assert _translation(t5) == german  # the first pair in the config, as transformers does

    @pytest.mark.parametrize(
        ("parameters", "field"), [({"tgt_lang": "es"}, "tgt_lang"), ({"src_lang": "es", "tgt_lang": "de"}, "src_lang")]
    )
    def test_t5_unknown_pair(self, t5, parameters: dict, field: str) -> None:
        with pytest.raises(BackendInputError, match="en->de") as caught:
            t5.predict(TR, TEXT, parameters)
        assert caught.value.field == f"parameters.{field}"

    def test_fixed_pair_model_refuses_languages(self, bart) -> None:
        assert _translation(bart)  # no languages given: translates as it can
        for field in ("tgt_lang", "src_lang"):
            with pytest.raises(BackendInputError) as caught:
                bart.predict(TR, TEXT, {field: "fr"})
            assert caught.value.field == f"parameters.{field}"


class TestText2Text:
    def test_lengths(self, t5) -> None:
        three, six = _generated(t5, max_new_tokens=3), _generated(t5, max_new_tokens=6)
        assert _reference(t5, TEXT, max_new_tokens=3) == (three, 3)
        assert len(six) > len(three)
        assert _generated(t5, max_length=4) == three  # max_length counts the start token
        assert _generated(t5, max_new_tokens=3, max_length=40) == three  # max_new_tokens wins

    def test_long_input_is_truncated(self, t5) -> None:
        assert _generated(t5, LONG, max_new_tokens=4)
