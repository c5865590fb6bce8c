"""Reranking many documents, framework-free: what the LangChain and LlamaIndex rerankers share.

A reranker gets a query and some documents and must give back at most ``top_n`` of them, best
first, each with its score and untouched otherwise (metadata kept). Servers bound a request's
size (TEI's ``max_client_batch_size``), so texts go in batches of ``batch_size``, one request
each, and the scores of every batch are merged before the cut to ``top_n``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from .errors import InvalidInputError
from .validation import require_text

__all__ = ["check_rerank", "rank_texts", "arank_texts"]


def check_rerank(query: Any, texts: Sequence[Any], top_n: int | None, batch_size: int) -> list[str]:
    require_text(query, "query")
    if top_n is not None and top_n < 1:
        raise InvalidInputError("top_n", f"must be >= 1, got {top_n}")
    if batch_size < 1:
        raise InvalidInputError("batch_size", f"must be >= 1, got {batch_size}")
    return [require_text(t, f"documents[{i}]") for i, t in enumerate(texts)]


def _merge(batches: list[list[Any]], offsets: list[int], top_n: int | None) -> list[tuple[int, float]]:
    scored = [(offset + r.index, r.score) for offset, results in zip(offsets, batches) for r in results]
    scored.sort(key=lambda pair: pair[1], reverse=True)
    return scored[:top_n] if top_n else scored


def _split(texts: list[str], batch_size: int) -> tuple[list[list[str]], list[int]]:
    offsets = list(range(0, len(texts), batch_size))
    return [texts[o : o + batch_size] for o in offsets], offsets


def rank_texts(client: Any, query: str, texts: list[str], *, model: str | None, top_n: int | None, batch_size: int) -> list[tuple[int, float]]:
    """(index into ``texts``, score) pairs, best first, at most ``top_n``."""
    if not texts:
        return []
    batches, offsets = _split(texts, batch_size)
    results = [client.rerank(query, batch, model=model) for batch in batches]
    return _merge(results, offsets, top_n)


async def arank_texts(client: Any, query: str, texts: list[str], *, model: str | None, top_n: int | None, batch_size: int) -> list[tuple[int, float]]:
    if not texts:
        return []
    batches, offsets = _split(texts, batch_size)
    results = await asyncio.gather(*(client.rerank(query, batch, model=model) for batch in batches))
    return _merge(list(results), offsets, top_n)
