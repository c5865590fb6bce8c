"""``HFInferenceRerank``: a LlamaIndex node postprocessor that reranks with a Hugging Face
reranker (TEI's ``/rerank``, a hosted cross-encoder, or ``hfbridge serve``)."""

from __future__ import annotations

from typing import List, Optional

from llama_index.core.bridge.pydantic import Field
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from ..errors import InvalidInputError
from ..ranking import arank_texts, check_rerank, rank_texts
from ._fields import ConnectionMixin

__all__ = ["HFInferenceRerank"]


class HFInferenceRerank(ConnectionMixin, BaseNodePostprocessor):
    """Keeps the ``top_n`` nodes most relevant to the query, best first, with the reranker's
    score as the node's score (nodes and their metadata untouched). Use it as a query engine's
    ``node_postprocessors``.

    ```python
    from llama_index.core import Document, VectorStoreIndex
    from hfbridge.llama_index import HFInferenceEmbedding, HFInferenceRerank

    texts = ["Bananas are yellow.", "The Eiffel Tower is in Paris.", "Rivers flow to the sea."]
    embed = HFInferenceEmbedding(base_url="http://127.0.0.1:8000", model_name="sentence-transformers/all-MiniLM-L6-v2")
    index = VectorStoreIndex.from_documents([Document(text=t) for t in texts], embed_model=embed)
    retriever = index.as_retriever(similarity_top_k=3)
    nodes = HFInferenceRerank(base_url="http://127.0.0.1:8000", top_n=1).postprocess_nodes(
        retriever.retrieve("Where is the Eiffel Tower?"), query_str="Where is the Eiffel Tower?")
    assert nodes[0].node.get_content() == "The Eiffel Tower is in Paris."
    ```
    """

    model_name: str | None = Field(default=None, description="Reranker id; None on a spec-layout server: its default reranker.")
    top_n: Optional[int] = Field(default=3, ge=1, description="Nodes kept; None keeps them all, reordered.")
    batch_size: int = Field(default=32, ge=1, description="Nodes per request.")

    @classmethod
    def class_name(cls) -> str:
        return "HFInferenceRerank"

    def _texts(self, nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle]) -> tuple[str, list[str]]:
        if query_bundle is None:
            raise InvalidInputError("query_bundle", "reranking needs the query")
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        return query_bundle.query_str, check_rerank(query_bundle.query_str, texts, self.top_n, self.batch_size)

    @staticmethod
    def _ranked(nodes: List[NodeWithScore], pairs: list[tuple[int, float]]) -> List[NodeWithScore]:
        return [NodeWithScore(node=nodes[index].node, score=score) for index, score in pairs]

    def _postprocess_nodes(self, nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        if not nodes:
            return []
        query, texts = self._texts(nodes, query_bundle)
        pairs = rank_texts(self.clients.sync, query, texts, model=self.model_name, top_n=self.top_n, batch_size=self.batch_size)
        return self._ranked(nodes, pairs)

    async def _apostprocess_nodes(self, nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        if not nodes:
            return []
        query, texts = self._texts(nodes, query_bundle)
        pairs = await arank_texts(self.clients.async_, query, texts, model=self.model_name, top_n=self.top_n, batch_size=self.batch_size)
        return self._ranked(nodes, pairs)
