"""The routes TEI and OpenAI-compatible servers add, on ``hfbridge serve``: ``/rerank``,
``/predict`` and ``/v1/embeddings`` (the latter through the real ``openai`` package and
langchain-openai), and batched text inputs on the task routes."""

from __future__ import annotations

import asyncio
import base64
import struct
from typing import Any

import pytest
import requests

from hfbridge import Task

from .test_routes import default_model

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
CROSS_ENCODER = "hfbridge/tiny-cross-encoder"

#: a small labelled set: each query and the index of the one passage that answers it
QUERIES = {
    "What is the capital of France?": 2,
    "How do plants make food from sunlight?": 0,
    "Which animal did the astronaut ride?": 3,
}
PASSAGES = [
    "Photosynthesis lets plants turn light, water and carbon dioxide into sugar.",
    "The stock market rose by three percent on Monday.",
    "Paris is the capital and largest city of France.",
    "An astronaut rode a horse across the surface of the moon.",
    "Cats and dogs are common pets in many homes.",
]


def post(server: Any, path: str, body: Any) -> requests.Response:
    return requests.post(f"{server.url}{path}", json=body, timeout=120)


# --------------------------------------------------------------------------------------------
# /rerank
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("query", sorted(QUERIES))
def test_default_reranker_puts_the_answer_first(query: str, live_server: Any) -> None:
    """The default is the real MiniLM (a bi-encoder): it ranks meaningfully."""
    response = post(live_server, "/rerank", {"query": query, "texts": PASSAGES, "return_text": True})
    assert response.status_code == 200, response.text
    ranks = response.json()
    assert ranks[0]["index"] == QUERIES[query]
    assert [r["score"] for r in ranks] == sorted((r["score"] for r in ranks), reverse=True)
    assert sorted(r["index"] for r in ranks) == list(range(len(PASSAGES)))
    assert all(r["text"] == PASSAGES[r["index"]] for r in ranks)


def test_rerank_top_n_index_and_text_switch(live_server: Any) -> None:
    query = "What is the capital of France?"
    full = post(live_server, f"/models/{MINILM}/rerank", {"query": query, "texts": PASSAGES}).json()
    top = post(live_server, "/rerank", {"query": query, "texts": PASSAGES, "top_n": 2}).json()
    assert top == full[:2] and all("text" not in r for r in top)
    # the same texts in another order keep their own indices and scores
    shuffled = PASSAGES[::-1]
    again = post(live_server, "/rerank", {"query": query, "texts": shuffled}).json()
    assert [shuffled[r["index"]] for r in again] == [PASSAGES[r["index"]] for r in full]


def test_cross_encoder_path_scores_pairs(live_server: Any) -> None:
    """The tiny cross-encoder (random weights: order meaningless) runs the pair-scoring path:
    sigmoid scores in (0, 1), raw logits with raw_scores, sorted, every index once."""
    body = {"query": "What is the capital of France?", "texts": PASSAGES}
    ranks = post(live_server, f"/models/{CROSS_ENCODER}/rerank", body).json()
    assert sorted(r["index"] for r in ranks) == list(range(len(PASSAGES)))
    assert all(0.0 < r["score"] < 1.0 for r in ranks)
    assert len({round(r["score"], 6) for r in ranks}) > 1
    raw = post(live_server, f"/models/{CROSS_ENCODER}/rerank", {**body, "raw_scores": True}).json()
    logits = {r["index"]: r["score"] for r in raw}
    for r in ranks:
        assert r["score"] == pytest.approx(1 / (1 + pow(2.718281828459045, -logits[r["index"]])), rel=1e-5)
    long = {"query": "q", "texts": ["word " * 200], "truncate": False}
    refused = post(live_server, f"/models/{CROSS_ENCODER}/rerank", long)
    assert refused.status_code == 400 and "`texts.0`" in refused.json()["error"]
    left = post(live_server, f"/models/{CROSS_ENCODER}/rerank", {**long, "truncate": True, "truncation_direction": "Left"})
    assert left.status_code == 200


@pytest.mark.parametrize(("body", "field"), [
    ({"query": "q", "texts": []}, "texts"),
    ({"query": "q", "texts": ["a"], "top_n": 0}, "top_n"),
    ({"query": "", "texts": ["a"]}, "query"),
    ({"query": "q", "texts": ["a", " "]}, "texts"),
    ({"texts": ["a"]}, "query"),
    ({"query": "q", "texts": ["a"], "truncation_direction": "middle"}, "truncation_direction"),
])
def test_rerank_bad_input_is_400_naming_the_field(body: dict[str, Any], field: str, live_server: Any) -> None:
    response = post(live_server, "/rerank", body)
    assert response.status_code == 400 and f"`{field}`" in response.json()["error"], response.text


def test_rerank_on_a_model_that_does_not_rerank_is_400(live_server: Any) -> None:
    response = post(live_server, f"/models/{default_model(Task.FILL_MASK)}/rerank", {"query": "q", "texts": ["a"]})
    assert response.status_code == 400 and "does not rerank" in response.json()["error"]


# --------------------------------------------------------------------------------------------
# /predict (TEI)
# --------------------------------------------------------------------------------------------
def test_predict_takes_a_text_a_pair_and_a_batch(live_server: Any) -> None:
    single = post(live_server, "/predict", {"inputs": "I like you"}).json()
    assert {p["label"] for p in single} == {"POSITIVE", "NEGATIVE"} and sum(p["score"] for p in single) == pytest.approx(1.0)
    pair = post(live_server, "/predict", {"inputs": ["I like you", "I love you"]}).json()
    batch = post(live_server, "/predict", {"inputs": [["I like you"], ["I like you", "I love you"]]}).json()
    assert batch == [single, pair]
    raw = post(live_server, "/predict", {"inputs": "I like you", "raw_scores": True}).json()
    assert sum(p["score"] for p in raw) != pytest.approx(1.0)
    for bad, field in (({"inputs": ["a", "b", "c"]}, "inputs"), ({"inputs": [["a", "b", "c"]]}, "inputs.0"), ({"inputs": [""]}, "inputs")):
        response = post(live_server, "/predict", bad)
        assert response.status_code == 400 and f"`{field}`" in response.json()["error"], response.text


# --------------------------------------------------------------------------------------------
# batched text inputs on the task routes
# --------------------------------------------------------------------------------------------
BATCHES = {
    Task.TEXT_CLASSIFICATION: (["I like you", "This film was terrible"], {}),
    Task.TOKEN_CLASSIFICATION: (["My name is Sarah", "I live in Paris"], {}),
    Task.FILL_MASK: (["Paris is the [MASK] of France.", "The cat sat on the [MASK]."], {"top_k": 2}),
    Task.SUMMARIZATION: (["The sky is blue and the tree is green.", "The stock market rose on Monday."], {"max_length": 8}),
    Task.TRANSLATION: (["Hello world", "How are you?"], {}),
    Task.TEXT2TEXT_GENERATION: (["fix the grammar: he go home", "translate: hello"], {"max_new_tokens": 5}),
}


@pytest.mark.parametrize("task", sorted(BATCHES, key=lambda t: t.value), ids=lambda t: t.value)
@pytest.mark.parametrize("route", ["spec", "hosted"])
def test_a_list_of_texts_gets_one_answer_per_text_in_order(task: Task, route: str, live_server: Any) -> None:
    texts, parameters = BATCHES[task]
    model = default_model(task)
    path = f"/models/{model}/{task.value}" if route == "spec" else f"/models/{model}"
    batch = post(live_server, path, {"inputs": texts, "parameters": parameters, "options": {"use_cache": False}})
    assert batch.status_code == 200, batch.text
    singles = [post(live_server, path, {"inputs": text, "parameters": parameters}).json() for text in texts]
    # one text answers a list of one result (text-classification: of one list), a batch one result per text
    unwrap = task in (Task.TEXT_CLASSIFICATION, Task.SUMMARIZATION, Task.TRANSLATION, Task.TEXT2TEXT_GENERATION)
    # the texts of a list share a padded forward pass: scores agree to float rounding, not bit for bit
    assert _close(batch.json(), [single[0] if unwrap else single for single in singles])


def _close(a: Any, b: Any) -> bool:
    """Equal JSON, floats within 1e-6."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= 1e-6
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return a == b


def test_a_bad_text_in_a_batch_is_named(live_server: Any) -> None:
    model = default_model(Task.FILL_MASK)
    response = post(live_server, f"/models/{model}", {"inputs": ["Paris is the [MASK].", "no mask here"]})
    assert response.status_code == 400 and "`inputs.1`" in response.json()["error"]
    empty = post(live_server, f"/models/{model}", {"inputs": ["Paris is the [MASK].", ""]})
    assert empty.status_code == 400 and "`inputs.1`" in empty.json()["error"]
    limit = live_server.settings.limits.max_inputs
    too_many = post(live_server, f"/models/{model}", {"inputs": ["a [MASK]"] * (limit + 1)})
    assert too_many.status_code == 400 and f"allows ({limit})" in too_many.json()["error"]
    reranks = post(live_server, "/rerank", {"query": "q", "texts": ["a"] * (limit + 1)})
    assert reranks.status_code == 400 and "`texts`" in reranks.json()["error"]


# --------------------------------------------------------------------------------------------
# /v1/embeddings through OpenAI-compatible clients
# --------------------------------------------------------------------------------------------
openai = pytest.importorskip("openai")


def test_openai_client_float_base64_dimensions_and_usage(live_server: Any) -> None:
    with openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", max_retries=0) as client:
        texts = ["Paris is the capital of France.", "The capital of France is Paris.", "I like pizza."]
        floats = client.embeddings.create(model=MINILM, input=texts, encoding_format="float")
        packed = client.embeddings.create(model=MINILM, input=texts)  # the package asks for base64 itself
        short = client.embeddings.create(model=MINILM, input=texts[0], dimensions=64, encoding_format="float")
        with pytest.raises(openai.BadRequestError, match="dimensions"):
            client.embeddings.create(model=MINILM, input="x", dimensions=385)
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="nobody/nothing", input="x")
    vectors = [d.embedding for d in floats.data]
    assert [d.index for d in floats.data] == [0, 1, 2] and all(len(v) == 384 for v in vectors)
    for unpacked, vector in zip((d.embedding for d in packed.data), vectors):
        assert unpacked == pytest.approx(vector, abs=1e-6)
    # real MiniLM: the paraphrase is closer than the unrelated sentence (unit vectors: dot = cosine)
    dot = [sum(a * b for a, b in zip(vectors[0], v)) for v in vectors[1:]]
    assert dot[0] > 0.8 > dot[1]
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > 3 * 2 and floats.model == MINILM
    head = short.data[0].embedding
    assert len(head) == 64 and sum(x * x for x in head) == pytest.approx(1.0, abs=1e-5)
    norm = sum(x * x for x in vectors[0][:64]) ** 0.5
    assert head == pytest.approx([x / norm for x in vectors[0][:64]], abs=1e-5)


def test_base64_is_little_endian_float32(live_server: Any) -> None:
    body = {"input": "hello", "encoding_format": "base64"}
    packed = post(live_server, "/v1/embeddings", body).json()["data"][0]["embedding"]
    floats = post(live_server, f"/models/{MINILM}/v1/embeddings", {"input": "hello"}).json()["data"][0]["embedding"]
    raw = base64.b64decode(packed)
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == pytest.approx(floats, abs=1e-6)


@pytest.mark.parametrize(("body", "field"), [
    ({"input": []}, "input"), ({"input": ["ok", ""]}, "input"), ({"input": [[1, 2, 3]]}, "input"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format"), ({"input": "x", "dimensions": 0}, "dimensions"),
    ({"input": "x", "model": default_model(Task.FILL_MASK)}, "model"),
])
def test_embeddings_bad_input_is_400_naming_the_field(body: dict[str, Any], field: str, live_server: Any) -> None:
    response = post(live_server, "/v1/embeddings", body)
    error = response.json()["error"]  # OpenAI's error shape
    assert response.status_code == 400 and f"`{field}`" in error["message"] and error["param"] == field, response.text


def test_openai_async_client(live_server: Any) -> None:
    async def run() -> list[list[float]]:
        async with openai.AsyncOpenAI(base_url=f"{live_server.url}/v1", api_key="unused", max_retries=0) as client:
            answer = await client.embeddings.create(model=MINILM, input=["a", "b"], encoding_format="float")
            return [d.embedding for d in answer.data]

    vectors = asyncio.run(run())
    assert len(vectors) == 2 and len(vectors[0]) == 384


def test_langchain_openai_embeddings(live_server: Any) -> None:
    lc_openai = pytest.importorskip("langchain_openai")
    import httpx

    async def embed_async(embeddings: Any, client: httpx.AsyncClient) -> list[float]:
        async with client:  # langchain-openai never closes the clients it is given
            return await embeddings.aembed_query("What is the capital of France?")

    common = {"model": MINILM, "base_url": f"{live_server.url}/v1", "api_key": "unused",
              "check_embedding_ctx_length": False, "max_retries": 0}
    with httpx.Client() as http:
        aclient = httpx.AsyncClient()
        embeddings = lc_openai.OpenAIEmbeddings(**common, http_client=http, http_async_client=aclient)
        documents = embeddings.embed_documents(PASSAGES)
        query = embeddings.embed_query("What is the capital of France?")
        assert asyncio.run(embed_async(embeddings, aclient)) == pytest.approx(query, abs=1e-6)
        short = lc_openai.OpenAIEmbeddings(**common, dimensions=32, http_client=http)
        assert len(short.embed_query("hello")) == 32
    assert len(documents) == len(PASSAGES) and len(query) == 384
    scores = [sum(a * b for a, b in zip(query, d)) for d in documents]
    assert max(range(len(scores)), key=scores.__getitem__) == 2  # the Paris passage


def test_tei_embedding_parameters_are_applied_not_ignored(live_server: Any) -> None:
    route = f"/models/{MINILM}/feature-extraction"
    text = "The Eiffel Tower is in Paris. " * 60  # past the model's 256 tokens: truncation decides
    full = post(live_server, route, {"inputs": [text]}).json()[0]
    short = post(live_server, route, {"inputs": [text], "parameters": {"dimensions": 8}}).json()[0]
    assert len(full) == 384 and len(short) == 8
    head = full[:8]
    norm = sum(x * x for x in head) ** 0.5
    assert all(abs(a - b / norm) < 1e-5 for a, b in zip(short, head))  # the first 8, unit length again
    right = post(live_server, route, {"inputs": [text + "Zebras."], "parameters": {"truncation_direction": "right"}}).json()[0]
    left = post(live_server, route, {"inputs": [text + "Zebras."], "parameters": {"truncation_direction": "Left"}}).json()[0]
    assert _close(right, full) and not _close(left, right)  # left keeps the end of the text instead
    for parameters, field in (({"dimensions": 385}, "parameters.dimensions"), ({"prompt_name": "query"}, "parameters.prompt_name"),
                              ({"truncation_direction": "up"}, "parameters.truncation_direction")):
        answer = post(live_server, route, {"inputs": ["x"], "parameters": parameters})
        assert answer.status_code == 400 and field in answer.json()["error"], answer.text
