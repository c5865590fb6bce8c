"""``HFInferenceEmbedding``: a LlamaIndex ``BaseEmbedding`` over the core's feature extraction."""

from __future__ import annotations

from typing import Literal

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field

from ..adapters import check_texts, recording_gate
from ._fields import ConnectionMixin

__all__ = ["HFInferenceEmbedding"]


class HFInferenceEmbedding(ConnectionMixin, BaseEmbedding):
    """Embeddings from a Hugging Face server. LlamaIndex hands each batch of
    ``embed_batch_size`` texts to ``_get_text_embeddings``: one request per batch, vectors in
    order. ``query_instruction`` / ``text_instruction`` are prefixed to queries / documents
    (for instruction-tuned embedding models)."""

    model_name: str | None = Field(default=None, description="Model id; None on a spec-layout server: its default model.")
    embed_batch_size: int = Field(default=32, gt=0, le=2048)
    normalize: bool = False
    pooling: Literal["mean", "cls", "max"] = "mean"
    query_instruction: str | None = None
    text_instruction: str | None = None

    @classmethod
    def class_name(cls) -> str:
        return "HFInferenceEmbedding"

    def _texts(self, texts: list[str], instruction: str | None) -> list[str]:
        checked = check_texts(texts)
        return [f"{instruction}{t}" for t in checked] if instruction else checked

    def _options(self) -> dict:
        return {"model": self.model_name, "pooling": self.pooling, "normalize": self.normalize or None}

    def _get_query_embedding(self, query: str) -> Embedding:
        return self.clients.sync.feature_extraction(self._texts([query], self.query_instruction), **self._options())[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        async with recording_gate():
            return (await self.clients.async_.feature_extraction(self._texts([query], self.query_instruction), **self._options()))[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aget_text_embeddings([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        if not texts:
            return []
        return self.clients.sync.feature_extraction(self._texts(texts, self.text_instruction), **self._options())

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        if not texts:
            return []
        async with recording_gate():  # LlamaIndex gathers the batches
            return await self.clients.async_.feature_extraction(self._texts(texts, self.text_instruction), **self._options())
