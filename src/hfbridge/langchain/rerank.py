"""``HFInferenceRerank``: a LangChain document compressor that reranks with a Hugging Face
reranker (TEI's ``/rerank``, a hosted cross-encoder, or ``hfbridge serve``)."""

from __future__ import annotations

from typing import Sequence

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import Field

from ..ranking import arank_texts, check_rerank, rank_texts
from ._fields import ConnectionFields

__all__ = ["HFInferenceRerank"]


class HFInferenceRerank(ConnectionFields, BaseDocumentCompressor):
    """Keeps the ``top_n`` documents most relevant to the query, best first, each with
    ``metadata["relevance_score"]`` added and its other metadata untouched. Works as the
    ``base_compressor`` of a ``ContextualCompressionRetriever``.

    ```python
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore
    from hfbridge.langchain import HFInferenceEmbeddings, HFInferenceRerank

    texts = ["Bananas are yellow.", "The Eiffel Tower is in Paris.", "Rivers flow to the sea."]
    store = InMemoryVectorStore.from_documents(
        [Document(t) for t in texts],
        HFInferenceEmbeddings(base_url="http://127.0.0.1:8000", model="sentence-transformers/all-MiniLM-L6-v2"))
    retriever = ContextualCompressionRetriever(
        base_compressor=HFInferenceRerank(base_url="http://127.0.0.1:8000", top_n=1),
        base_retriever=store.as_retriever(search_kwargs={"k": 3}))
    best = retriever.invoke("Where is the Eiffel Tower?")
    assert best[0].page_content == "The Eiffel Tower is in Paris."
    ```
    """

    model: str | None = Field(default=None, description="Reranker id; None on a spec-layout server: its default reranker.")
    top_n: int | None = Field(default=3, ge=1, description="Documents kept; None keeps them all, reordered.")
    batch_size: int = Field(default=32, ge=1, description="Documents per request.")

    def _ranked(self, documents: Sequence[Document], pairs: list[tuple[int, float]]) -> list[Document]:
        out = []
        for index, score in pairs:
            original = documents[index]
            out.append(Document(page_content=original.page_content, id=original.id,
                                metadata={**original.metadata, "relevance_score": score}))
        return out

    def compress_documents(self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None) -> Sequence[Document]:
        texts = check_rerank(query, [d.page_content for d in documents], self.top_n, self.batch_size)
        pairs = rank_texts(self.clients.sync, query, texts, model=self.model, top_n=self.top_n, batch_size=self.batch_size)
        return self._ranked(documents, pairs)

    async def acompress_documents(self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None) -> Sequence[Document]:
        texts = check_rerank(query, [d.page_content for d in documents], self.top_n, self.batch_size)
        pairs = await arank_texts(self.clients.async_, query, texts, model=self.model, top_n=self.top_n, batch_size=self.batch_size)
        return self._ranked(documents, pairs)
