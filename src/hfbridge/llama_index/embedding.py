"""``HFInferenceEmbedding``: a LlamaIndex ``BaseEmbedding`` over the core's feature extraction."""

from __future__ import annotations

from typing import Any, Literal

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding, dispatcher
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks.schema import CBEventType, EventPayload
from llama_index.core.instrumentation.events.embedding import EmbeddingEndEvent, EmbeddingStartEvent

from ..adapters import check_texts, map_in_threads, recording_gate
from ._fields import ConnectionMixin

__all__ = ["HFInferenceEmbedding"]


class HFInferenceEmbedding(ConnectionMixin, BaseEmbedding):
    """Embeddings from a Hugging Face server: one request per batch of ``embed_batch_size``
    texts, vectors in order. ``get_text_embedding_batch`` sends the batches concurrently (at most
    ``num_workers`` at once, default the client's 16), each with LlamaIndex's own events and
    callbacks, where LlamaIndex's base class would send them one after another (it still does
    with an embeddings cache, a rate limiter or a progress bar). ``query_instruction`` / ``text_instruction`` are prefixed to queries / documents
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

    @dispatcher.span
    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False, **kwargs: Any) -> list[Embedding]:
        workers = self.clients.sync.config.max_concurrency
        sequential = (show_progress or len(texts) <= self.embed_batch_size or workers <= 1
                      or getattr(self, "embeddings_cache", None) is not None or getattr(self, "rate_limiter", None) is not None)
        if sequential:
            return super().get_text_embedding_batch(texts, show_progress=show_progress, **kwargs)
        # what the base class reports of itself: to_payload() since llama-index-core 0.14.x's
        # later releases, to_dict() before (0.14.5, the lowest supported)
        model_dict = self.to_payload() if hasattr(self, "to_payload") else self.to_dict()

        def one(batch: list[str]) -> list[Embedding]:  # what the base class does per batch
            dispatcher.event(EmbeddingStartEvent(model_dict=model_dict))
            with self.callback_manager.event(CBEventType.EMBEDDING, payload={EventPayload.SERIALIZED: model_dict}) as event:
                embeddings = self._get_text_embeddings(batch)
                event.on_end(payload={EventPayload.CHUNKS: batch, EventPayload.EMBEDDINGS: embeddings})
            dispatcher.event(EmbeddingEndEvent(chunks=batch, embeddings=embeddings))
            return embeddings

        size = self.embed_batch_size
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        return [vector for result in map_in_threads(one, batches, workers) for vector in result]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        if not texts:
            return []
        return self.clients.sync.feature_extraction(self._texts(texts, self.text_instruction), **self._options())

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        if not texts:
            return []
        async with recording_gate():  # LlamaIndex gathers the batches
            return await self.clients.async_.feature_extraction(self._texts(texts, self.text_instruction), **self._options())
