"""Pure tables for the wider surface: every embedding shape, batched text tasks, reranking in
every layout, TEI's embedding parameters, OpenAI-compatible embeddings, TEI's /predict pairs."""

from __future__ import annotations

import array
import base64
import json
from typing import Any

import pytest

from hfbridge import InvalidInputError, ResponseFormatError, schemas as s
from hfbridge.shapes import NormalizeContext, normalize
from hfbridge.tasks import Task

from .capture import CaptureClient

M = "org/model"
B = "http://127.0.0.1:8000"


def embed(data: Any, inputs: Any, **extra: Any) -> Any:
    parameters = extra.pop("parameters", {})
    return normalize(NormalizeContext(Task.FEATURE_EXTRACTION, M, inputs, parameters, {"pooling": "mean", **extra}), data)


# --------------------------------------------------------------------------------------------
# Embeddings of every depth servers answer
# --------------------------------------------------------------------------------------------
T1 = [[1.0, 2.0], [3.0, 4.0]]  # 2 tokens x 2 dims, mean [2, 3]
T2 = [[0.0, 0.0], [2.0, 2.0], [4.0, 4.0]]  # 3 tokens, mean [2, 2]

SHAPES = [
    ("[D] one text pooled", [1.0, 2.0], "a", [1.0, 2.0]),
    ("[N, D] pooled", [[1.0, 2.0], [3.0, 4.0]], ["a", "b"], [[1.0, 2.0], [3.0, 4.0]]),
    ("[T, D] one text's tokens", T1, "a", [2.0, 3.0]),
    ("[1, T, D] one text, transformers pipeline", [T1], "a", [2.0, 3.0]),
    ("[N, T, D] TEI embed_all", [T1, T2], ["a", "b"], [[2.0, 3.0], [2.0, 2.0]]),
    # measured: transformers' FeatureExtractionPipeline given a list answers [N, 1, T, D]
    ("[N, 1, T, D] transformers pipeline, a list", [[T1], [T2]], ["a", "b"], [[2.0, 3.0], [2.0, 2.0]]),
    ("[1, 1, T, D] a list of one", [[T1]], ["a"], [[2.0, 3.0]]),
]


@pytest.mark.parametrize(("data", "inputs", "expected"), [(d, i, e) for _, d, i, e in SHAPES], ids=[n for n, *_ in SHAPES])
def test_every_embedding_shape_gives_one_vector_per_input(data: Any, inputs: Any, expected: Any) -> None:
    assert embed(data, inputs) == expected


@pytest.mark.parametrize(("data", "inputs", "shape"), [
    ([[[T1]]], ["a"], "[1, 1, 1, 2, 2]"),
    ([[T1, T2]], ["a", "b"], "[1, 2, 2, 2]"),
    ([[1.0], [2.0], [3.0]], ["a", "b"], "[3, 1]"),
    ({"vectors": []}, ["a"], "OpenAI embeddings list"),
    ("nope", "a", "str"),
])
def test_other_shapes_are_refused_saying_which_arrived(data: Any, inputs: Any, shape: str) -> None:
    with pytest.raises(ResponseFormatError) as info:
        embed(data, inputs)
    assert shape in str(info.value)


def test_openai_embeddings_in_floats_and_base64_come_back_in_input_order() -> None:
    packed = base64.b64encode(array.array("f", [0.5, -1.0]).tobytes()).decode()
    data = {"object": "list", "model": M, "data": [
        {"object": "embedding", "index": 1, "embedding": packed},
        {"object": "embedding", "index": 0, "embedding": [1.0, 2.0]},
    ], "usage": {"prompt_tokens": 4, "total_tokens": 4}}
    assert embed(data, ["a", "b"]) == [[1.0, 2.0], [0.5, -1.0]]


def test_dimensions_a_server_ignored_are_cut_here_and_renormalised() -> None:
    vectors = embed([[3.0, 4.0, 12.0]], ["a"], normalize=True, parameters={"dimensions": 2})
    assert vectors == [[0.6, 0.8]]


# --------------------------------------------------------------------------------------------
# Batched text tasks: one result per input, and the single-string type kept
# --------------------------------------------------------------------------------------------
def answer_of(task: Task, inputs: Any, data: Any) -> Any:
    return normalize(NormalizeContext(task, M, inputs, {}, {}), data)


LABELS = [{"label": "POSITIVE", "score": 0.9}, {"label": "NEGATIVE", "score": 0.1}]
BATCHES = [
    (Task.TEXT_CLASSIFICATION, [LABELS, LABELS[::-1]], lambda r: [x[0].label for x in r] == ["POSITIVE", "NEGATIVE"]),
    (Task.TEXT_CLASSIFICATION, [LABELS[0], LABELS[1]], lambda r: [x[0].label for x in r] == ["POSITIVE", "NEGATIVE"]),  # top-1 per input
    (Task.TOKEN_CLASSIFICATION, [[{"entity_group": "PER", "score": 0.9, "word": "Sarah", "start": 0, "end": 5}], []],
     lambda r: r[0][0].label == "PER" and r[1] == []),
    (Task.FILL_MASK, [[{"sequence": "a b", "score": 0.5, "token": 1, "token_str": "b"}], [{"sequence": "c d", "score": 0.4, "token": 2, "token_str": "d"}]],
     lambda r: [x[0].token_str for x in r] == ["b", "d"]),
    (Task.SUMMARIZATION, [{"summary_text": "one"}, {"summary_text": "two"}], lambda r: [x.summary_text for x in r] == ["one", "two"]),
    (Task.TRANSLATION, [{"translation_text": "un"}, {"translation_text": "deux"}], lambda r: [x.translation_text for x in r] == ["un", "deux"]),
    (Task.TEXT2TEXT_GENERATION, [{"generated_text": "x"}, {"generated_text": "y"}], lambda r: [x.generated_text for x in r] == ["x", "y"]),
]


@pytest.mark.parametrize(("task", "data", "check"), BATCHES, ids=[f"{t.value}-{i}" for i, (t, _, _) in enumerate(BATCHES)])
def test_a_list_of_texts_gets_one_result_per_text_in_order(task: Task, data: Any, check: Any) -> None:
    assert check(answer_of(task, ["first", "second"], data))


def test_a_batch_answer_with_the_wrong_count_is_refused() -> None:
    with pytest.raises(ResponseFormatError) as info:
        answer_of(Task.SUMMARIZATION, ["a", "b", "c"], [{"summary_text": "one"}, {"summary_text": "two"}])
    assert "one result per input (3)" in str(info.value)


@pytest.mark.parametrize("method", ["text_classification", "token_classification", "fill_mask", "summarization", "translation", "text2text_generation"])
def test_text_tasks_send_lists_and_check_every_item(method: str) -> None:
    client = CaptureClient(base_url=B, token=False)
    request = getattr(client, method)(["First [MASK].", "Second [MASK]."], model=M)
    assert json.loads(request.content)["inputs"] == ["First [MASK].", "Second [MASK]."]
    with pytest.raises(InvalidInputError) as info:
        getattr(client, method)(["fine", "  "], model=M)
    assert info.value.field == "text[1]"


def test_text_pairs_go_to_teis_predict() -> None:
    client = CaptureClient(base_url="https://tei.example", layout="endpoint", token=False)
    request = client.text_classification([("A man eats.", "Someone eats."), ("A man eats.", "Nobody eats.")])
    assert request.url == "https://tei.example/predict"
    assert json.loads(request.content) == {"inputs": [["A man eats.", "Someone eats."], ["A man eats.", "Nobody eats."]]}
    one = client.text_classification(("A man eats.", "Someone eats."))
    assert json.loads(one.content) == {"inputs": [["A man eats.", "Someone eats."]]}
    assert client.calls[-1].extra["unwrap_single"] is True
    with pytest.raises(InvalidInputError) as info:
        CaptureClient(base_url=B, token=False).text_classification(("a", "b"), model=M)
    assert info.value.field == "text" and "/predict" in info.value.problem
    with pytest.raises(InvalidInputError):
        client.text_classification([("a", "b"), "c"])


# --------------------------------------------------------------------------------------------
# TEI embedding parameters and OpenAI-compatible embeddings
# --------------------------------------------------------------------------------------------
def test_tei_embedding_parameters_are_typed_and_sent() -> None:
    request = CaptureClient(base_url="https://tei.example", layout="endpoint", token=False).feature_extraction(
        ["a"], normalize=False, truncate=True, truncation_direction="Left", prompt_name="query", dimensions=128)
    assert json.loads(request.content)["parameters"] == {"normalize": False, "truncate": True, "truncation_direction": "left",
                                                         "prompt_name": "query", "dimensions": 128}


def test_openai_layout_embeddings_body() -> None:
    client = CaptureClient(base_url="http://127.0.0.1:8080/v1", layout="openai", token="tok")
    request = client.feature_extraction(["a", "b"], model=M, dimensions=64, encoding_format="base64")
    assert request.url == "http://127.0.0.1:8080/v1/embeddings"
    assert json.loads(request.content) == {"input": ["a", "b"], "model": M, "dimensions": 64, "encoding_format": "base64"}
    assert request.headers["Authorization"] == "Bearer tok"


@pytest.mark.parametrize(("layout", "kwargs", "field"), [
    ("openai", {"truncate": True}, "truncate"),
    ("openai", {"prompt_name": "query"}, "prompt_name"),
    ("openai", {"pooling": "none"}, "pooling"),
    ("spec", {"encoding_format": "base64"}, "encoding_format"),
    ("spec", {"dimensions": 0}, "parameters.dimensions"),
    ("spec", {"truncation_direction": "middle"}, "parameters.truncation_direction"),
    ("openai", {"encoding_format": "int8"}, "encoding_format"),
])
def test_embedding_options_a_layout_cannot_send_are_refused(layout: str, kwargs: dict, field: str) -> None:
    base = "http://127.0.0.1:8080/v1" if layout == "openai" else B
    with pytest.raises(InvalidInputError) as info:
        CaptureClient(base_url=base, layout=layout, token=False).feature_extraction(["a"], model=M, **kwargs)
    assert info.value.field == field


# --------------------------------------------------------------------------------------------
# Reranking
# --------------------------------------------------------------------------------------------
TEXTS = ["Paris is in France.", "Bananas are yellow.", "The Eiffel Tower is in Paris."]
RERANK_ROUTES = [
    (B, "spec", M, f"{B}/models/{M}/rerank", {"query": "Paris?", "texts": TEXTS, "top_n": 2}),
    (B, "spec", None, f"{B}/rerank", {"query": "Paris?", "texts": TEXTS, "top_n": 2}),
    ("https://tei.example", "endpoint", None, "https://tei.example/rerank", {"query": "Paris?", "texts": TEXTS, "top_n": 2}),
    ("http://127.0.0.1:8080/v1", "openai", M, "http://127.0.0.1:8080/v1/rerank", {"model": M, "query": "Paris?", "documents": TEXTS, "top_n": 2}),
    ("https://router.huggingface.co/hf-inference", None, M, f"https://router.huggingface.co/hf-inference/models/{M}",
     {"inputs": [{"text": "Paris?", "text_pair": t} for t in TEXTS]}),
]


@pytest.mark.parametrize(("base", "layout", "model", "url", "body"), RERANK_ROUTES, ids=[r[1] or "hosted" for r in RERANK_ROUTES])
def test_rerank_in_every_layout(base: str, layout: str | None, model: str | None, url: str, body: dict) -> None:
    request = CaptureClient(base_url=base, layout=layout, token=False).rerank("Paris?", TEXTS, model=model, top_n=2)
    assert request.url == url
    assert json.loads(request.content) == body


def rank(data: Any, **parameters: Any) -> list[s.RerankResult]:
    return normalize(NormalizeContext(Task.TEXT_RANKING, M, {"query": "Paris?", "texts": TEXTS}, parameters, {}), data)


@pytest.mark.parametrize("data", [
    [{"index": 2, "score": 0.9}, {"index": 0, "score": 0.7}, {"index": 1, "score": 0.01}],  # TEI, sorted
    [{"index": 1, "score": 0.01}, {"index": 2, "score": 0.9}, {"index": 0, "score": 0.7}],  # unsorted
    {"results": [{"index": 0, "relevance_score": 0.7}, {"index": 2, "relevance_score": 0.9}, {"index": 1, "relevance_score": 0.01}]},  # Cohere style
    [[{"label": "LABEL_0", "score": 0.7}], [{"label": "LABEL_0", "score": 0.01}], [{"label": "LABEL_0", "score": 0.9}]],  # hosted pairs
    [{"label": "LABEL_0", "score": 0.7}, {"label": "LABEL_0", "score": 0.01}, {"label": "LABEL_0", "score": 0.9}],
], ids=["tei", "tei-unsorted", "cohere", "hosted-nested", "hosted-flat"])
def test_rerank_answers_are_sorted_with_the_original_index(data: Any) -> None:
    results = rank(data)
    assert [r.index for r in results] == [2, 0, 1]
    assert [round(r.score, 2) for r in results] == [0.9, 0.7, 0.01]
    top = rank(data, top_n=1, return_text=True)
    assert len(top) == 1 and top[0].index == 2 and top[0].text == TEXTS[2]


def test_two_label_cross_encoders_use_the_relevant_label() -> None:
    data = [[{"label": "LABEL_0", "score": 0.2}, {"label": "LABEL_1", "score": 0.8}]] * 3
    assert [r.score for r in rank(data)] == [0.8, 0.8, 0.8]


def test_a_rerank_answer_pointing_outside_the_texts_is_refused() -> None:
    with pytest.raises(ResponseFormatError):
        rank([{"index": 5, "score": 0.5}])


@pytest.mark.parametrize(("args", "kwargs", "field"), [
    (("q", []), {}, "texts"),
    (("q", "one text"), {}, "texts"),
    (("q", ["a", ""]), {}, "texts[1]"),
    (("", ["a"]), {}, "query"),
    (("q", ["a"]), {"top_n": 0}, "parameters.top_n"),
])
def test_bad_rerank_input_is_refused_before_sending(args: tuple, kwargs: dict, field: str) -> None:
    client = CaptureClient(base_url=B, token=False)
    with pytest.raises(InvalidInputError) as info:
        client.rerank(*args, model=M, **kwargs)
    assert info.value.field == field and client.calls == []
