"""HFInferenceRerank (LangChain) against a scripted TEI-shaped reranker: order, top_n, metadata,
one request per batch, sync and async."""

from __future__ import annotations

import asyncio
from typing import Iterator

import pytest
from langchain_core.documents import Document

from hfbridge import InvalidInputError
from hfbridge.langchain import HFInferenceRerank
from tests.rerank_stub import serve_reranker
from tests.scripted_server import ScriptedServer

M = "org/reranker"
DOCS = [
    Document("Bananas are yellow and sweet.", metadata={"source": "fruit.txt", "page": 1}, id="a"),
    Document("The Eiffel Tower stands in Paris.", metadata={"source": "paris.txt", "page": 7}, id="b"),
    Document("Rivers flow to the sea.", metadata={"source": "geo.txt"}, id="c"),
    Document("Paris is the capital of France and home of the Eiffel Tower.", metadata={"source": "france.txt"}, id="d"),
    Document("Chess is a board game.", metadata={}, id="e"),
]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as srv:
        serve_reranker(srv, M)
        yield srv


def test_the_best_documents_come_first_with_their_metadata(server: ScriptedServer) -> None:
    reranker = HFInferenceRerank(base_url=server.url, model=M, top_n=2, batch_size=2)
    kept = reranker.compress_documents(DOCS, "Where is the Eiffel Tower in Paris?")
    assert [d.id for d in kept] == ["b", "d"]
    assert kept[0].metadata["source"] == "paris.txt" and kept[0].metadata["page"] == 7
    assert kept[0].metadata["relevance_score"] >= kept[1].metadata["relevance_score"]
    assert len(server.requests) == 3  # 5 documents in batches of 2
    assert [len(r.json()["texts"]) for r in server.requests] == [2, 2, 1]
    assert DOCS[1].metadata == {"source": "paris.txt", "page": 7}  # the originals are untouched


def test_async_gives_the_same_ranking(server: ScriptedServer) -> None:
    reranker = HFInferenceRerank(base_url=server.url, model=M, top_n=None)
    sync = reranker.compress_documents(DOCS, "Eiffel Tower Paris")

    async def run() -> list[Document]:
        return list(await reranker.acompress_documents(DOCS, "Eiffel Tower Paris"))

    assert [d.id for d in asyncio.run(run())] == [d.id for d in sync] and len(sync) == len(DOCS)


def test_no_documents_no_request_and_bad_input_refused(server: ScriptedServer) -> None:
    reranker = HFInferenceRerank(base_url=server.url, model=M)
    assert reranker.compress_documents([], "anything") == []
    with pytest.raises(InvalidInputError) as info:
        reranker.compress_documents(DOCS, "   ")
    assert info.value.field == "query"
    with pytest.raises(InvalidInputError) as info:
        reranker.compress_documents([Document(" ")], "q")
    assert info.value.field == "documents[0]"
    assert server.requests == []
