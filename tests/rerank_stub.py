"""A TEI-shaped ``/rerank`` on the scripted server that scores by shared words, so tests of
the rerankers see a real ranking and count the requests each batch makes."""

from __future__ import annotations

from tests.scripted_server import Recorded, Reply, ScriptedServer


def _words(text: str) -> set[str]:
    return {w.strip(".,?!").lower() for w in text.split()}


def word_overlap_reranker(request: Recorded) -> Reply:
    body = request.json()
    query = _words(body["query"])
    scored = [{"index": i, "score": len(query & _words(t)) / (1 + len(_words(t)))} for i, t in enumerate(body["texts"])]
    scored.sort(key=lambda r: r["score"], reverse=True)
    return Reply(body=scored)


def serve_reranker(server: ScriptedServer, model: str) -> None:
    server.on(f"/models/{model}/rerank", word_overlap_reranker)
