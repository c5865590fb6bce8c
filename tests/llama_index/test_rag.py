"""A real RAG pipeline: VectorStoreIndex over HFInferenceEmbedding, queried with HFInferenceLLM."""

from __future__ import annotations

import pytest
from llama_index.core import Document, VectorStoreIndex

from hfbridge.llama_index import HFInferenceEmbedding, HFInferenceLLM

from .conftest import BASE_URL, EMBED_MODEL, LLM_MODEL

pytestmark = pytest.mark.hf_cassette

DOCUMENTS = [
    Document(text="The Eiffel Tower is a wrought-iron tower in Paris, completed in 1889.", metadata={"id": "eiffel"}),
    Document(text="Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar.", metadata={"id": "plants"}),
    Document(text="The Great Wall of China is more than 20,000 kilometres long.", metadata={"id": "wall"}),
]
QUESTION = "When was the Eiffel Tower completed?"


def components() -> tuple[HFInferenceEmbedding, HFInferenceLLM]:
    return (
        HFInferenceEmbedding(base_url=BASE_URL, model_name=EMBED_MODEL, embed_batch_size=2),
        HFInferenceLLM(base_url=BASE_URL, model_name=LLM_MODEL, max_new_tokens=24),
    )


def test_query_engine_answers_with_source_nodes() -> None:
    embed, llm = components()
    index = VectorStoreIndex.from_documents(DOCUMENTS, embed_model=embed)
    response = index.as_query_engine(llm=llm, similarity_top_k=1).query(QUESTION)
    assert response.source_nodes[0].node.metadata["id"] == "eiffel"  # real MiniLM retrieval
    assert str(response).strip()
    assert "1889" in str(response)  # real SmolLM2 reading the retrieved context


async def test_async_query_engine() -> None:
    embed, llm = components()
    index = VectorStoreIndex.from_documents(DOCUMENTS, embed_model=embed, use_async=True)
    response = await index.as_query_engine(llm=llm, similarity_top_k=2).aquery("How long is the Great Wall of China?")
    assert response.source_nodes[0].node.metadata["id"] == "wall"
    assert str(response).strip()
