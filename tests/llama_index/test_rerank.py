"""HFInferenceRerank (LlamaIndex) against a scripted TEI-shaped reranker: order, top_n, scores,
one request per batch, sync and async."""

from __future__ import annotations

import asyncio
from typing import Iterator

import pytest
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from hfbridge.llama_index import HFInferenceRerank
from tests.rerank_stub import serve_reranker
from tests.scripted_server import ScriptedServer

M = "org/reranker"
NODES = [NodeWithScore(node=TextNode(text=t, id_=str(i), metadata={"n": i}), score=0.5) for i, t in enumerate([
    "Bananas are yellow and sweet.",
    "The Eiffel Tower stands in Paris.",
    "Rivers flow to the sea.",
])]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        serve_reranker(srv, M)
        yield srv


def test_nodes_are_reordered_and_cut_with_the_rerankers_scores(server: ScriptedServer) -> None:
    reranker = HFInferenceRerank(base_url=server.url, model_name=M, top_n=2, batch_size=2)
    kept = reranker.postprocess_nodes(NODES, query_bundle=QueryBundle("Where is the Eiffel Tower?"))
    assert [n.node.node_id for n in kept] == ["1", "2"]  # shares "the Eiffel Tower", then "the"
    assert len(kept) == 2 and kept[0].score > 0 and kept[0].node.metadata == {"n": 1}
    assert len(server.requests) == 2


def test_async_postprocessing(server: ScriptedServer) -> None:
    reranker = HFInferenceRerank(base_url=server.url, model_name=M, top_n=1)

    async def run() -> list[NodeWithScore]:
        return await reranker.apostprocess_nodes(NODES, query_str="Eiffel Tower in Paris")

    (best,) = asyncio.run(run())
    assert best.node.node_id == "1"
