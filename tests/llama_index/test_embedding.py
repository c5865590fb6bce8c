"""HFInferenceEmbedding: one request per batch, order, async batches, progress."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from hfbridge import InvalidInputError
from hfbridge.llama_index import HFInferenceEmbedding

from .conftest import BASE_URL, EMBED_MODEL

pytestmark = pytest.mark.hf_cassette

TEXTS = [f"Sentence {i}: {word}" for i, word in enumerate("apple river chess violin comet tulip anchor glacier pepper lantern".split())]


def make(**fields: object) -> HFInferenceEmbedding:
    return HFInferenceEmbedding(base_url=BASE_URL, model_name=EMBED_MODEL, **fields)


def test_one_request_per_batch_of_embed_batch_size(hf_cassette: Any) -> None:
    vectors = make(embed_batch_size=3).get_text_embedding_batch(TEXTS)
    assert len(vectors) == 10 and all(len(v) == 384 for v in vectors)
    sent = [json.loads(r.body)["inputs"] for r in hf_cassette.requests]
    assert sent == [TEXTS[0:3], TEXTS[3:6], TEXTS[6:9], TEXTS[9:]]
    assert hf_cassette.play_count == 0 or hf_cassette.all_played  # a replay sent exactly these four


def test_order_is_preserved() -> None:
    batched = make(embed_batch_size=3).get_text_embedding_batch(TEXTS)
    for text, vector in zip(TEXTS, batched):
        assert vector == pytest.approx(make().get_text_embedding(text), abs=1e-5)


async def test_async_batches_match_sync() -> None:
    embedding = make(embed_batch_size=4)
    for a, b in zip(await embedding.aget_text_embedding_batch(TEXTS), embedding.get_text_embedding_batch(TEXTS), strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    assert await embedding.aget_query_embedding("apple") == pytest.approx(embedding.get_query_embedding("apple"), abs=1e-6)


def test_show_progress(capsys: pytest.CaptureFixture[str]) -> None:
    make(embed_batch_size=5).get_text_embedding_batch(TEXTS, show_progress=True)
    assert "Generating embeddings" in capsys.readouterr().err


def test_instructions_prefix_queries_and_documents(hf_cassette: Any) -> None:
    embedding = make(query_instruction="query: ", text_instruction="passage: ", normalize=True)
    query = embedding.get_query_embedding("apple")
    embedding.get_text_embedding("apple")
    bodies = [json.loads(r.body)["inputs"] for r in hf_cassette.requests]
    assert bodies == [["query: apple"], ["passage: apple"]]
    assert math.sqrt(sum(x * x for x in query)) == pytest.approx(1.0, abs=1e-6)


def test_empty_text_is_refused_before_sending() -> None:
    embedding = HFInferenceEmbedding(base_url="http://127.0.0.1:9", max_retries=0)
    with pytest.raises(InvalidInputError):
        embedding.get_text_embedding_batch(["ok", ""])
