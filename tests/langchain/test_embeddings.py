"""HFInferenceEmbeddings: LangChain's standard tests, batching, order and errors."""

from __future__ import annotations

import math
from typing import Any

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from hfbridge import InvalidInputError
from hfbridge.langchain import HFInferenceEmbeddings

from .conftest import BASE_URL, EMBED_MODEL

pytestmark = pytest.mark.hf_cassette


class TestHFInferenceEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[HFInferenceEmbeddings]:
        return HFInferenceEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"base_url": BASE_URL, "model": EMBED_MODEL}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ({"HF_TOKEN": "hf_from_the_environment_000000000000"}, {"base_url": BASE_URL},
                {"token": "hf_from_the_environment_000000000000", "base_url": BASE_URL})


class TestHFInferenceEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[HFInferenceEmbeddings]:
        return HFInferenceEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"base_url": BASE_URL, "model": EMBED_MODEL}


def make(**fields: Any) -> HFInferenceEmbeddings:
    return HFInferenceEmbeddings(base_url=BASE_URL, model=EMBED_MODEL, **fields)


TEXTS = [f"Document number {i} is about {topic}." for i, topic in enumerate(
    ["cats", "dogs", "rockets", "cooking", "jazz", "databases", "rivers", "chess", "poetry", "volcanoes", "bicycles"])]


def test_every_vector_in_order_across_batches() -> None:
    batched = make(batch_size=4, max_concurrency=3).embed_documents(TEXTS)
    assert len(batched) == len(TEXTS) and all(len(v) == 384 for v in batched)
    one_by_one = [make().embed_query(t) for t in TEXTS]
    for a, b in zip(batched, one_by_one):
        assert a == pytest.approx(b, abs=1e-5)


def assert_same_vectors(a: list[list[float]], b: list[list[float]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x == pytest.approx(y, abs=1e-5)


async def test_async_batches_match_sync() -> None:
    embeddings = make(batch_size=3)
    assert_same_vectors(await embeddings.aembed_documents(TEXTS), embeddings.embed_documents(TEXTS))
    assert await embeddings.aembed_documents([]) == []


def test_empty_list_gives_empty_list_without_a_request() -> None:
    assert HFInferenceEmbeddings(base_url="http://127.0.0.1:9", max_retries=0).embed_documents([]) == []


def test_bad_text_is_named_by_its_index_before_anything_is_sent() -> None:
    embeddings = HFInferenceEmbeddings(base_url="http://127.0.0.1:9", max_retries=0, batch_size=2)
    with pytest.raises(InvalidInputError) as info:
        embeddings.embed_documents(["fine", "also fine", "", "fine"])
    assert info.value.field == "texts[2]"


def test_normalize_returns_unit_vectors() -> None:
    vector = make(normalize=True).embed_query("A unit-length vector.")
    assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-6)


def test_progress_bar_counts_every_text(capsys: pytest.CaptureFixture[str]) -> None:
    make(batch_size=5, show_progress=True).embed_documents(TEXTS)
    assert f"{len(TEXTS)}/{len(TEXTS)}" in capsys.readouterr().err
