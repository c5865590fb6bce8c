"""Every response shape listed in DESIGN.md normalises to one typed result per task."""

from __future__ import annotations

from typing import Any

import pytest

from hfbridge import ResponseFormatError, Task
from hfbridge import schemas as s
from hfbridge.shapes import NormalizeContext, normalize, pool_tokens


def ctx(task: Task, inputs: Any = "text", parameters: dict | None = None, **extra: Any) -> NormalizeContext:
    return NormalizeContext(task, "org/model", inputs, parameters, extra)


@pytest.mark.parametrize(
    "body",
    [
        [[{"label": "POSITIVE", "score": 0.9}, {"label": "NEGATIVE", "score": 0.1}]],
        [{"label": "POSITIVE", "score": 0.9}, {"label": "NEGATIVE", "score": 0.1}],
    ],
    ids=["nested", "flat"],
)
def test_text_classification_nested_or_flat(body: Any) -> None:
    result = normalize(ctx(Task.TEXT_CLASSIFICATION), body)
    assert [r.label for r in result] == ["POSITIVE", "NEGATIVE"]
    assert all(isinstance(r, s.ClassificationResult) for r in result)


def test_zero_shot_object_shape() -> None:
    body = {"sequence": "text", "labels": ["a", "b"], "scores": [0.7, 0.3]}
    result = normalize(ctx(Task.ZERO_SHOT_CLASSIFICATION), body)
    assert result.labels == ["a", "b"] and result.scores == [0.7, 0.3]


def test_zero_shot_list_of_pairs_shape_is_sorted_and_keeps_the_sequence() -> None:
    body = [{"label": "b", "score": 0.2}, {"label": "a", "score": 0.8}]
    result = normalize(ctx(Task.ZERO_SHOT_CLASSIFICATION, "my text"), body)
    assert result.sequence == "my text" and result.labels == ["a", "b"] and result.scores == [0.8, 0.2]


def test_zero_shot_mismatched_lengths_fail() -> None:
    with pytest.raises(ResponseFormatError):
        normalize(ctx(Task.ZERO_SHOT_CLASSIFICATION), {"sequence": "t", "labels": ["a", "b"], "scores": [1.0]})


def test_question_answering_object_or_list() -> None:
    one = normalize(ctx(Task.QUESTION_ANSWERING), {"answer": "Paris", "score": 0.9, "start": 0, "end": 5})
    assert isinstance(one, s.QuestionAnsweringResult) and one.answer == "Paris"
    listed = normalize(ctx(Task.QUESTION_ANSWERING), [{"answer": "Paris", "score": 0.9, "start": 0, "end": 5}])
    assert listed.answer == "Paris"
    many = normalize(
        ctx(Task.QUESTION_ANSWERING, parameters={"top_k": 2}),
        [{"answer": "Paris", "score": 0.9, "start": 0, "end": 5}, {"answer": "France", "score": 0.1, "start": 9, "end": 15}],
    )
    assert [a.answer for a in many] == ["Paris", "France"]


@pytest.mark.parametrize(
    ("inputs", "body", "expected"),
    [
        ("one", [1.0, 2.0], [1.0, 2.0]),  # [f]
        ("one", [[1.0, 2.0]], [1.0, 2.0]),  # [[f]] one vector
        (["a", "b"], [[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]),  # [[f]] per input
        (["a"], [[1.0, 2.0]], [[1.0, 2.0]]),
        ("one", [[1.0, 2.0], [3.0, 4.0]], [2.0, 3.0]),  # token-level for one input, mean-pooled
        ("one", [[[1.0, 2.0], [3.0, 4.0]]], [2.0, 3.0]),  # [[[f]]]
        (["a", "b"], [[[1.0, 1.0], [3.0, 3.0]], [[5.0, 6.0]]], [[2.0, 2.0], [5.0, 6.0]]),
    ],
    ids=["flat", "one-row", "rows", "list-of-one", "tokens-one", "tokens-batched-one", "tokens-batched"],
)
def test_feature_extraction_shapes(inputs: Any, body: Any, expected: Any) -> None:
    assert normalize(ctx(Task.FEATURE_EXTRACTION, inputs, pooling="mean"), body) == expected


def test_feature_extraction_pooling_and_normalise() -> None:
    tokens = [[[3.0, 0.0], [1.0, 4.0]]]
    assert normalize(ctx(Task.FEATURE_EXTRACTION, ["a"], pooling="cls"), tokens) == [[3.0, 0.0]]
    assert normalize(ctx(Task.FEATURE_EXTRACTION, ["a"], pooling="max"), tokens) == [[3.0, 4.0]]
    assert normalize(ctx(Task.FEATURE_EXTRACTION, ["a"], pooling="none"), tokens) == tokens
    unit = normalize(ctx(Task.FEATURE_EXTRACTION, "a", normalize=True), [3.0, 4.0])
    assert unit == pytest.approx([0.6, 0.8])


def test_feature_extraction_count_mismatch_is_an_error_not_a_silent_drop() -> None:
    with pytest.raises(ResponseFormatError) as info:
        normalize(ctx(Task.FEATURE_EXTRACTION, ["a", "b", "c"]), [[1.0], [2.0]])
    assert "3 embedding" in str(info.value) and "org/model" in str(info.value)


def test_pool_tokens_rejects_unknown_pooling() -> None:
    with pytest.raises(ValueError):
        pool_tokens([[1.0]], "median")


@pytest.mark.parametrize(
    ("task", "body", "attr", "value"),
    [
        (Task.SUMMARIZATION, [{"summary_text": "short"}], "summary_text", "short"),
        (Task.SUMMARIZATION, {"summary_text": "short"}, "summary_text", "short"),
        (Task.TRANSLATION, [{"translation_text": "Hallo Welt"}], "translation_text", "Hallo Welt"),
        (Task.TEXT2TEXT_GENERATION, [{"generated_text": "x"}], "generated_text", "x"),
        (Task.IMAGE_TO_TEXT, [{"generated_text": "a woman in a hat"}], "generated_text", "a woman in a hat"),
        (Task.AUTOMATIC_SPEECH_RECOGNITION, {"text": "sir i exist"}, "text", "sir i exist"),
        (Task.TABLE_QUESTION_ANSWERING, {"answer": "AVERAGE > 36542", "coordinates": [[0, 1]], "cells": ["36542"], "aggregator": "AVERAGE"}, "cells", ["36542"]),
        (Task.TEXT_GENERATION, [{"generated_text": "Hello"}], "generated_text", "Hello"),
    ],
)
def test_single_results_in_a_list_or_not(task: Task, body: Any, attr: str, value: Any) -> None:
    assert getattr(normalize(ctx(task), body), attr) == value


def test_lists_of_typed_items() -> None:
    detections = normalize(ctx(Task.OBJECT_DETECTION), [{"score": 0.9, "label": "person", "box": {"xmin": 1, "ymin": 2, "xmax": 3, "ymax": 4}}])
    assert detections[0].box.xmax == 3
    tokens = normalize(ctx(Task.TOKEN_CLASSIFICATION), [{"entity_group": "PER", "score": 0.99, "word": "Sarah", "start": 11, "end": 16}])
    assert tokens[0].label == "PER"
    masks = normalize(ctx(Task.FILL_MASK), [{"score": 0.8, "token": 2023, "token_str": "this", "sequence": "hi this"}])
    assert masks[0].token_str == "this"
    segments = normalize(ctx(Task.IMAGE_SEGMENTATION), [{"score": 0.9, "label": "LABEL_1", "mask": "iVBOR"}])
    assert segments[0].mask == "iVBOR"


def test_sentence_similarity_checks_the_count() -> None:
    assert normalize(ctx(Task.SENTENCE_SIMILARITY, count=2), [0.5, 0.25]) == [0.5, 0.25]
    with pytest.raises(ResponseFormatError):
        normalize(ctx(Task.SENTENCE_SIMILARITY, count=3), [0.5, 0.25])


def test_text_generation_stop_is_enforced_client_side() -> None:
    result = normalize(ctx(Task.TEXT_GENERATION, "Q:", {"stop": ["\nQ:"]}), [{"generated_text": " yes\nQ: more"}])
    assert result.generated_text == " yes"
    full = normalize(ctx(Task.TEXT_GENERATION, "Q: a\nQ:", {"stop": ["\nQ:"], "return_full_text": True}), [{"generated_text": "Q: a\nQ: b\nQ: c"}])
    assert full.generated_text == "Q: a\nQ: b"  # the prompt's own stop sequence is not cut


@pytest.mark.parametrize(
    ("task", "body"),
    [
        (Task.TEXT_CLASSIFICATION, {"unexpected": True}),
        (Task.SUMMARIZATION, [{"text": "no summary_text"}]),
        (Task.FEATURE_EXTRACTION, {"embeddings": []}),
        (Task.OBJECT_DETECTION, [{"label": "x", "score": 1.0}]),
        (Task.SENTENCE_SIMILARITY, ["a", "b"]),
    ],
)
def test_unknown_shapes_raise_response_format_error_naming_task_and_model(task: Task, body: Any) -> None:
    with pytest.raises(ResponseFormatError) as info:
        normalize(ctx(task, ["a"] if task is Task.FEATURE_EXTRACTION else "text"), body)
    assert task.value in str(info.value) and "org/model" in str(info.value)
