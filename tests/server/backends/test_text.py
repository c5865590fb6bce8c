"""The encoder text backends on tiny random BERTs: output shapes, every parameter's effect, bad
input, and agreement with transformers' own pipelines where transformers still has one."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import TypeAdapter
from transformers import TapasConfig, pipeline

from hfbridge.schemas import (
    ClassificationResult,
    FillMaskResult,
    QuestionAnsweringResult,
    TableQuestionAnsweringResult,
    TokenClassificationResult,
    ZeroShotClassificationResult,
)
from hfbridge.server.backends import Backend, BackendInputError, LoadContext
from hfbridge.server.backends._common import TINY_MARKER
from hfbridge.server.backends.text import LOADERS, TINY_BUILDERS, _linearise
from hfbridge.tasks import Task

TEXT = "My name is Sarah Jessica Parker but you can call me Jessica. I live in Paris."
CONTEXT = "Paris is the capital of France, and Berlin is the capital of Germany."
TABLE = {
    "Repository": ["Transformers", "Datasets", "Tokenizers"],
    "Stars": ["36542", "4512", "3934"],
    "Programming language": ["Python", "Python", "Rust, Python and NodeJS"],
}


def _folder(model_cache: Path, task: Task) -> Path:
    folder = model_cache / "tiny" / task.value
    if not (folder / TINY_MARKER).is_file():
        TINY_BUILDERS[task](folder)
    return folder


@pytest.fixture(scope="module")
def backends(model_cache: Path) -> dict[Task, Backend]:
    return {
        task: LOADERS[task](_folder(model_cache, task), LoadContext(f"tiny/{task.value}", model_cache))
        for task in TINY_BUILDERS
    }


def _raises(field: str, backend: Backend, task: Task, inputs, parameters=None) -> None:
    with pytest.raises(BackendInputError) as caught:
        backend.predict(task, inputs, parameters or {})
    assert caught.value.field == field


def test_builders_are_deterministic_and_marked(tmp_path: Path, backends: dict[Task, Backend]) -> None:
    task = Task.TEXT_CLASSIFICATION
    TINY_BUILDERS[task](tmp_path / "a")
    TINY_BUILDERS[task](tmp_path / "b")
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert "meaningless" in (tmp_path / "a" / TINY_MARKER).read_text()
    for task, backend in backends.items():
        assert backend.meaningless and task in backend.tasks


def test_loaders_refuse_models_they_cannot_serve(tmp_path: Path, model_cache: Path) -> None:
    TapasConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2).save_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="pandas"):
        LOADERS[Task.TABLE_QUESTION_ANSWERING](tmp_path, LoadContext("tapas", model_cache))
    sentiment = _folder(model_cache, Task.TEXT_CLASSIFICATION)  # labels NEGATIVE/POSITIVE, not NLI
    with pytest.raises(ValueError, match="entailment"):
        LOADERS[Task.ZERO_SHOT_CLASSIFICATION](sentiment, LoadContext("sentiment", model_cache))


class TestTextClassification:
    T = Task.TEXT_CLASSIFICATION

    def _classify(self, backend: Backend, **parameters) -> list[dict]:
        out = backend.predict(self.T, TEXT, parameters)
        TypeAdapter(list[list[ClassificationResult]]).validate_python(out)
        assert len(out) == 1
        return out[0]

    def test_all_labels_by_softmax_sorted_and_as_transformers(self, backends) -> None:
        backend = backends[self.T]
        out = self._classify(backend)
        assert {item["label"] for item in out} == {"NEGATIVE", "POSITIVE"}
        assert out[0]["score"] >= out[1]["score"]
        assert sum(item["score"] for item in out) == pytest.approx(1.0)
        reference = pipeline("text-classification", model=backend.model, tokenizer=backend.tokenizer, top_k=None)([TEXT])[0]
        assert [(r["label"], pytest.approx(r["score"], abs=1e-6)) for r in reference] == [(o["label"], o["score"]) for o in out]

    def test_top_k_and_function_to_apply(self, backends) -> None:
        backend = backends[self.T]
        assert len(self._classify(backend, top_k=1)) == 1
        raw = self._classify(backend, function_to_apply="none")
        sigmoid = self._classify(backend, function_to_apply="sigmoid")
        assert sum(item["score"] for item in sigmoid) != pytest.approx(1.0)
        # "none" gives the logits themselves: the sigmoid of each is the "sigmoid" score
        assert [item["label"] for item in raw] == [item["label"] for item in sigmoid]
        assert [1 / (1 + math.exp(-item["score"])) for item in raw] == pytest.approx([item["score"] for item in sigmoid])

    def test_long_text_is_truncated(self, backends) -> None:
        out = backends[self.T].predict(self.T, TEXT * 20, {})  # far beyond the 64 positions
        TypeAdapter(list[list[ClassificationResult]]).validate_python(out)
        assert len(out[0]) == 2


class TestTokenClassification:
    T = Task.TOKEN_CLASSIFICATION

    def _entities(self, backend: Backend, text: str = TEXT, **parameters) -> list[dict]:
        out = backend.predict(self.T, text, parameters)
        TypeAdapter(list[TokenClassificationResult]).validate_python(out)
        return out

    @pytest.mark.parametrize("strategy", ["simple", "first", "average", "max"])
    def test_aggregated_entities_match_transformers_and_index_the_text(self, backends, strategy: str) -> None:
        backend = backends[self.T]
        out = self._entities(backend, aggregation_strategy=strategy)
        assert all("entity_group" in item and TEXT[item["start"]:item["end"]] == item["word"] for item in out)
        ner = pipeline("token-classification", model=backend.model, tokenizer=backend.tokenizer, aggregation_strategy=strategy)
        reference = ner(TEXT)
        assert [(r["entity_group"], r["start"], r["end"]) for r in reference] == [
            (o["entity_group"], o["start"], o["end"]) for o in out
        ]
        assert [o["score"] for o in out] == pytest.approx([float(r["score"]) for r in reference], abs=1e-6)

    def test_none_gives_tokens_and_ignore_labels_filters(self, backends) -> None:
        backend = backends[self.T]
        tokens = self._entities(backend, aggregation_strategy="none", ignore_labels=[])
        words = self._entities(backend, aggregation_strategy="first", ignore_labels=[])
        assert len(tokens) == len(backend.tokenizer(TEXT, add_special_tokens=False)["input_ids"]) > len(words)
        assert all(item["entity"] in backend.id2label.values() and "entity_group" not in item for item in tokens)
        assert all(TEXT[t["start"]:t["end"]].lower() == t["word"].lstrip("#") for t in tokens)
        kept = self._entities(backend, aggregation_strategy="none")  # default ignores "O"
        assert [t for t in tokens if t["entity"] != "O"] == kept
        assert self._entities(backend, aggregation_strategy="none", ignore_labels=list(backend.id2label.values())) == []

    def test_long_text_is_read_in_windows(self, backends) -> None:
        backend = backends[self.T]
        long_text = " ".join([TEXT] * 6)  # several windows of the tiny model's 64 positions
        for stride in (0, 16):
            tokens = self._entities(backend, long_text, aggregation_strategy="none", ignore_labels=[], stride=stride)
            starts = [t["start"] for t in tokens]
            assert starts == sorted(set(starts))  # each token once, windows' overlaps removed
            assert tokens[-1]["end"] == len(long_text)

    def test_bad_stride(self, backends) -> None:
        _raises("parameters.stride", backends[self.T], self.T, TEXT, {"stride": 500})


class TestQuestionAnswering:
    T = Task.QUESTION_ANSWERING
    Q = {"question": "What is the capital of France?", "context": CONTEXT}

    def test_single_answer_is_a_span_of_the_context(self, backends) -> None:
        out = backends[self.T].predict(self.T, self.Q, {})
        QuestionAnsweringResult.model_validate(out)
        assert out["answer"] == CONTEXT[out["start"]:out["end"]] and out["answer"]
        assert 0 < out["score"] <= 1

    def test_top_k_max_answer_len_and_impossible_answer(self, backends) -> None:
        backend = backends[self.T]
        out = backend.predict(self.T, self.Q, {"top_k": 3})
        TypeAdapter(list[QuestionAnsweringResult]).validate_python(out)
        assert len(out) == 3 and [a["score"] for a in out] == sorted((a["score"] for a in out), reverse=True)
        assert len({(a["start"], a["end"]) for a in out}) == 3
        short = backend.predict(self.T, self.Q, {"top_k": 5, "max_answer_len": 1})
        assert len(short) == 5 and all(" " not in a["answer"] for a in short)  # one token, widened to its word
        assert any(" " in a["answer"] for a in backend.predict(self.T, self.Q, {"top_k": 5, "max_answer_len": 6}))
        with_null = backend.predict(self.T, self.Q, {"top_k": 1000, "handle_impossible_answer": True})
        assert {"answer": "", "start": 0, "end": 0} in [{k: a[k] for k in ("answer", "start", "end")} for a in with_null]
        assert "" not in [a["answer"] for a in backend.predict(self.T, self.Q, {"top_k": 1000})]

    def test_long_context_is_read_in_windows(self, backends) -> None:
        context = " ".join([TEXT] * 8) + " " + CONTEXT
        out = backends[self.T].predict(self.T, {"question": "What is the capital of France?", "context": context}, {"top_k": 200})
        assert max(a["end"] for a in out) > len(context) - len(CONTEXT)  # the last window was read
        assert all(a["answer"] == context[a["start"]:a["end"]] for a in out)

    def test_bad_input(self, backends) -> None:
        backend = backends[self.T]
        _raises("inputs.context", backend, self.T, {"question": "Why?", "context": "  "})
        _raises("inputs.question", backend, self.T, {"question": "", "context": CONTEXT})
        _raises("inputs.question", backend, self.T, {"question": "why " * 100, "context": CONTEXT})


class TestFillMask:
    T = Task.FILL_MASK

    def _fill(self, backend: Backend, text: str = "Paris is the [MASK] of France.", **parameters) -> list[dict]:
        out = backend.predict(self.T, text, parameters)
        TypeAdapter(list[FillMaskResult]).validate_python(out)
        return out

    def test_default_top_5_matches_transformers(self, backends) -> None:
        backend = backends[self.T]
        out = self._fill(backend)
        assert len(out) == 5
        reference = pipeline("fill-mask", model=backend.model, tokenizer=backend.tokenizer)("Paris is the [MASK] of France.")
        assert [(r["token"], r["token_str"], r["sequence"]) for r in reference] == [
            (o["token"], o["token_str"], o["sequence"]) for o in out
        ]
        assert [o["score"] for o in out] == pytest.approx([r["score"] for r in reference], abs=1e-6)

    def test_top_k_and_targets(self, backends) -> None:
        backend = backends[self.T]
        assert len(self._fill(backend, top_k=2)) == 2
        # "Paris" is "paris" to this uncased model; a word outside the vocabulary stands for its
        # first token, as in transformers
        out = self._fill(backend, targets=["capital", "Paris", "zyzzyva"])
        assert {item["token_str"] for item in out} == {"capital", "paris", "z"}
        assert all(item["sequence"] == f"paris is the {item['token_str']} of france." for item in out)
        assert len(self._fill(backend, targets=["capital", "Paris", "zyzzyva"], top_k=1)) == 1

    def test_mask_problems(self, backends) -> None:
        backend = backends[self.T]
        with pytest.raises(BackendInputError, match=r"must contain the mask token \[MASK\]") as caught:
            backend.predict(self.T, "No mask here.", {})
        assert caught.value.field == "inputs"
        _raises("inputs", backend, self.T, "[MASK] and [MASK]")
        _raises("inputs", backend, self.T, "word " * 100 + "[MASK]")  # beyond the 64 positions
        _raises("parameters.targets", backend, self.T, "The [MASK].", {"targets": [""]})


class TestZeroShot:
    T = Task.ZERO_SHOT_CLASSIFICATION
    LABELS = ["people", "places", "food"]

    def _classify(self, backend: Backend, **parameters) -> dict:
        out = backend.predict(self.T, TEXT, {"candidate_labels": self.LABELS, **parameters})
        ZeroShotClassificationResult.model_validate(out)
        assert out["sequence"] == TEXT and sorted(out["labels"]) == sorted(self.LABELS)
        assert out["scores"] == sorted(out["scores"], reverse=True)
        return out

    @pytest.mark.parametrize("multi_label", [False, True])
    def test_matches_transformers(self, backends, multi_label: bool) -> None:
        backend = backends[self.T]
        out = self._classify(backend, multi_label=multi_label)
        reference = pipeline("zero-shot-classification", model=backend.model, tokenizer=backend.tokenizer)(
            TEXT, candidate_labels=self.LABELS, multi_label=multi_label
        )
        assert out["labels"] == reference["labels"]
        assert out["scores"] == pytest.approx(reference["scores"], abs=1e-6)
        assert (sum(out["scores"]) == pytest.approx(1.0)) is not multi_label

    def test_hypothesis_template(self, backends) -> None:
        backend = backends[self.T]
        default = self._classify(backend)
        assert self._classify(backend, hypothesis_template="This example is {}.") == default
        other = self._classify(backend, hypothesis_template="The topic of this text is {}, clearly.")
        assert other["scores"] != default["scores"]
        _raises("parameters.hypothesis_template", backend, self.T, TEXT, {"candidate_labels": ["a"], "hypothesis_template": "No slot."})
        _raises("parameters.hypothesis_template", backend, self.T, TEXT, {"candidate_labels": ["a"], "hypothesis_template": "{} {x}"})
        _raises("parameters.candidate_labels", backend, self.T, TEXT, {})


class TestTableQuestionAnswering:
    T = Task.TABLE_QUESTION_ANSWERING

    def test_answer_is_cells_of_the_table(self, backends) -> None:
        out = backends[self.T].predict(self.T, {"query": "How many stars does Transformers have?", "table": TABLE}, {})
        TableQuestionAnsweringResult.model_validate(out)
        assert out["aggregator"] == "NONE" and out["cells"] and out["answer"] == ", ".join(out["cells"])
        columns = list(TABLE)
        assert [TABLE[columns[c]][r] for r, c in out["coordinates"]] == out["cells"]

    def test_linearised_cells_are_located_exactly(self) -> None:
        text, cells = _linearise(TABLE)
        assert text.splitlines()[0] == "Repository: Transformers; Stars: 36542; Programming language: Python."
        assert [text[start:end] for _, _, start, end in cells[:3]] == ["Transformers", "36542", "Python"]
        assert cells[-1][:2] == (2, 2)

    def test_bad_tables(self, backends) -> None:
        backend = backends[self.T]
        _raises("inputs.table", backend, self.T, {"query": "Stars?", "table": {"a": ["1", "2"], "b": ["1"]}})
        _raises("inputs.table", backend, self.T, {"query": "Stars?", "table": {}})
        _raises("inputs.table", backend, self.T, {"query": "Stars?", "table": {"a": []}})
        _raises("inputs.query", backend, self.T, {"query": " ", "table": TABLE})

    def test_qa_model_answers_tables_too(self, backends) -> None:
        out = backends[Task.QUESTION_ANSWERING].predict(self.T, {"query": "Which language?", "table": TABLE}, {})
        TableQuestionAnsweringResult.model_validate(out)
