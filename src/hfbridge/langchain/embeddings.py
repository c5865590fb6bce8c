"""``HFInferenceEmbeddings``: a LangChain ``Embeddings`` over the core's feature extraction."""

from __future__ import annotations

from typing import Literal

from langchain_core.embeddings import Embeddings
from pydantic import Field

from ..adapters import aembed_batches, check_texts, embed_batches
from ..validation import require_text
from ._fields import ConnectionFields

__all__ = ["HFInferenceEmbeddings"]


class HFInferenceEmbeddings(ConnectionFields, Embeddings):
    """Sentence embeddings from a Hugging Face server.

    ``embed_documents`` returns one vector per text, in input order, or raises: texts go in
    batches of ``batch_size`` (one request each, ``max_concurrency`` in flight), each batch
    retried by the core's policy, none silently dropped. Token-level answers are pooled as
    ``pooling`` says; ``normalize=True`` returns unit vectors."""

    model: str | None = Field(default=None, description="Model id; None on a spec-layout server: its default model.")
    batch_size: int = Field(default=32, ge=1)
    max_concurrency: int = Field(default=4, ge=1)
    normalize: bool = False
    pooling: Literal["mean", "cls", "max"] = "mean"
    show_progress: bool = Field(default=False, description="A tqdm progress bar over the texts.")

    def _options(self) -> dict:
        return {"model": self.model, "batch_size": self.batch_size, "max_concurrency": self.max_concurrency,
                "show_progress": self.show_progress, "pooling": self.pooling, "normalize": self.normalize or None}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        checked = check_texts(texts)
        if not checked:
            return []
        return embed_batches(self.clients.sync, checked, **self._options())

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        checked = check_texts(texts)
        if not checked:
            return []
        return await aembed_batches(self.clients.async_, checked, **self._options())

    def embed_query(self, text: str) -> list[float]:
        require_text(text, "text")
        return self.clients.sync.feature_extraction(text, model=self.model, pooling=self.pooling, normalize=self.normalize or None)

    async def aembed_query(self, text: str) -> list[float]:
        require_text(text, "text")
        return await self.clients.async_.feature_extraction(text, model=self.model, pooling=self.pooling, normalize=self.normalize or None)
