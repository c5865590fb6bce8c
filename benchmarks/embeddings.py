"""Embedding throughput of the client side: every hfbridge path against each peer in the same
mode, 2,000 short texts, the same stub server answering precomputed 384-d vectors at once.

The numbers are the clients' own cost per text (building requests, HTTP, decoding JSON, the
framework's wrapping) plus how they use the connection: the stub counts the requests and the
TCP connections each run made. CPU time (``time.process_time``, every thread of this process;
the stub is another process) is recorded too: texts per CPU second is the steadier figure when
other sessions hold the cores. Each peer is called through its public API the way its docs
show, pointed at the stub by URL (huggingface_hub takes a URL as ``model``; LangChain's
``HuggingFaceEndpointEmbeddings`` refuses a URL, so its clients are replaced by ones built on
the stub's URL, as a user of a TEI endpoint would). hfbridge and the raw clients send batches
of 32 texts (hfbridge's core through its own batching, ``feature_extraction(texts,
batch_size=32)``, which sends them concurrently, as its adapters do); the peers batch as they do by default except where a size is settable (LlamaIndex's
``embed_batch_size`` = 32 for both LlamaIndex components).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator

from ._common import Budget, describe_error, httpx_client, interleaved, machine, median, requests_session
from ._stub import DIM, StubServer

BATCH = 32
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def texts(n: int) -> list[str]:
    return [f"document number {i} about something worth embedding" for i in range(n)]


def _batches(items: list[str]) -> list[list[str]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


@dataclass
class Case:
    name: str
    family: str  # "hfbridge" | "peer" | "raw"
    mode: str  # "sync" | "async"
    call: str  # what is called, for the table
    build: Callable[["Case", str], Any]  # (case, stub URL) -> fn(texts), a coroutine function when async
    fn: Any = None
    close: list[Callable[[], Any]] = field(default_factory=list)
    error: str | None = None
    close_error: str | None = None
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    connections: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# hfbridge
# --------------------------------------------------------------------------------------------
def _hfbridge_core_sync(case: Case, url: str) -> Callable[[list[str]], list]:
    from hfbridge import InferenceClient

    client = InferenceClient(url, token=False)
    case.close.append(client.close)

    def run(items: list[str]) -> list:
        return client.feature_extraction(items, model=MODEL, batch_size=BATCH)

    return run


def _hfbridge_core_async(case: Case, url: str) -> Callable[[list[str]], Awaitable[list]]:
    from hfbridge import AsyncInferenceClient

    client = AsyncInferenceClient(url, token=False)
    case.close.append(client.aclose)

    async def run(items: list[str]) -> list:
        return await client.feature_extraction(items, model=MODEL, batch_size=BATCH)

    return run


def _hfbridge_langchain(case: Case, url: str) -> Any:
    from hfbridge.langchain import HFInferenceEmbeddings

    embeddings = HFInferenceEmbeddings(base_url=url, token=None, model=MODEL, batch_size=BATCH)
    case.close.append(embeddings.clients.close)
    case.close.append(embeddings.clients.aclose)
    return embeddings.embed_documents if case.mode == "sync" else embeddings.aembed_documents


def _hfbridge_llama_index(case: Case, url: str) -> Any:
    from hfbridge.llama_index import HFInferenceEmbedding

    embedding = HFInferenceEmbedding(base_url=url, token=None, model_name=MODEL, embed_batch_size=BATCH)
    case.close.append(embedding.clients.close)
    case.close.append(embedding.clients.aclose)
    return embedding.get_text_embedding_batch if case.mode == "sync" else embedding.aget_text_embedding_batch


# --------------------------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------------------------
def _hub_sync(case: Case, url: str) -> Callable[[list[str]], list]:
    from huggingface_hub import InferenceClient

    client = InferenceClient(model=f"{url}/models/{MODEL}/pipeline/feature-extraction")
    case.close.append(client.close)

    def run(items: list[str]) -> list:
        out: list = []
        for batch in _batches(items):
            out += client.feature_extraction(batch).tolist()
        return out

    return run


def _hub_async(case: Case, url: str) -> Callable[[list[str]], Awaitable[list]]:
    from huggingface_hub import AsyncInferenceClient

    client = AsyncInferenceClient(model=f"{url}/models/{MODEL}/pipeline/feature-extraction")
    case.close.append(client.close)

    async def run(items: list[str]) -> list:
        results = await asyncio.gather(*(client.feature_extraction(b) for b in _batches(items)))
        return [vector for batch in results for vector in batch.tolist()]

    return run


def _langchain_huggingface(case: Case, url: str) -> Any:
    from huggingface_hub import AsyncInferenceClient, InferenceClient
    from langchain_huggingface import HuggingFaceEndpointEmbeddings

    embeddings = HuggingFaceEndpointEmbeddings(model=MODEL)
    endpoint = f"{url}/models/{MODEL}/pipeline/feature-extraction"
    embeddings.client = InferenceClient(model=endpoint)
    embeddings.async_client = AsyncInferenceClient(model=endpoint)
    case.close.append(embeddings.client.close)
    case.close.append(embeddings.async_client.close)
    return embeddings.embed_documents if case.mode == "sync" else embeddings.aembed_documents


def _llama_index_peer(case: Case, url: str) -> Any:
    from llama_index.embeddings.huggingface_api import HuggingFaceInferenceAPIEmbedding

    embedding = HuggingFaceInferenceAPIEmbedding(model_name=f"{url}/models/{MODEL}/pipeline/feature-extraction",
                                                 embed_batch_size=BATCH)
    return embedding.get_text_embedding_batch if case.mode == "sync" else embedding.aget_text_embedding_batch


# --------------------------------------------------------------------------------------------
# Raw HTTP clients: the floor a client library adds to
# --------------------------------------------------------------------------------------------
def _raw_sync(make_client: Callable[[], Any]) -> Callable[[Case, str], Callable[[list[str]], list]]:
    """Batches of 32 in turn through a kept-alive ``requests.Session`` or ``httpx.Client``."""

    def build(case: Case, url: str) -> Callable[[list[str]], list]:
        client = make_client()
        case.close.append(client.close)
        endpoint = f"{url}/models/{MODEL}/feature-extraction"

        def run(items: list[str]) -> list:
            out: list = []
            for batch in _batches(items):
                response = client.post(endpoint, json={"inputs": batch})
                response.raise_for_status()
                out += response.json()
            return out

        return run

    return build


def _httpx_async(case: Case, url: str) -> Callable[[list[str]], Awaitable[list]]:
    import httpx

    client = httpx.AsyncClient()
    case.close.append(client.aclose)
    endpoint = f"{url}/models/{MODEL}/feature-extraction"

    async def one(batch: list[str]) -> list:
        response = await client.post(endpoint, json={"inputs": batch})
        response.raise_for_status()
        return response.json()

    async def run(items: list[str]) -> list:
        results = await asyncio.gather(*(one(b) for b in _batches(items)))
        return [vector for batch in results for vector in batch]

    return run


def cases() -> list[Case]:
    return [
        Case("hfbridge core", "hfbridge", "sync", "InferenceClient.feature_extraction(texts, batch_size=32)", _hfbridge_core_sync),
        Case("hfbridge LangChain", "hfbridge", "sync", "HFInferenceEmbeddings.embed_documents", _hfbridge_langchain),
        Case("hfbridge LlamaIndex", "hfbridge", "sync", "HFInferenceEmbedding.get_text_embedding_batch", _hfbridge_llama_index),
        Case("huggingface_hub", "peer", "sync", "InferenceClient.feature_extraction, batches of 32 in turn", _hub_sync),
        Case("langchain-huggingface", "peer", "sync", "HuggingFaceEndpointEmbeddings.embed_documents", _langchain_huggingface),
        Case("LlamaIndex HF API", "peer", "sync", "HuggingFaceInferenceAPIEmbedding.get_text_embedding_batch", _llama_index_peer),
        Case("requests", "raw", "sync", "Session.post + .json(), batches of 32 in turn", _raw_sync(requests_session)),
        Case("httpx", "raw", "sync", "Client.post + .json(), batches of 32 in turn", _raw_sync(httpx_client)),
        Case("hfbridge core", "hfbridge", "async", "AsyncInferenceClient.feature_extraction(texts, batch_size=32)", _hfbridge_core_async),
        Case("hfbridge LangChain", "hfbridge", "async", "HFInferenceEmbeddings.aembed_documents", _hfbridge_langchain),
        Case("hfbridge LlamaIndex", "hfbridge", "async", "HFInferenceEmbedding.aget_text_embedding_batch", _hfbridge_llama_index),
        Case("huggingface_hub", "peer", "async", "AsyncInferenceClient.feature_extraction, all batches gathered", _hub_async),
        Case("langchain-huggingface", "peer", "async", "HuggingFaceEndpointEmbeddings.aembed_documents", _langchain_huggingface),
        Case("LlamaIndex HF API", "peer", "async", "HuggingFaceInferenceAPIEmbedding.aget_text_embedding_batch", _llama_index_peer),
        Case("httpx", "raw", "async", "AsyncClient.post + .json(), all batches gathered", _httpx_async),
    ]


def _check(vectors: Any, n: int) -> None:
    if len(vectors) != n or len(vectors[0]) != DIM or len(vectors[-1]) != DIM:
        raise AssertionError(f"expected {n} vectors of {DIM} floats, got {len(vectors)}")


@contextlib.contextmanager
def _quiet_leftovers() -> Iterator[list[str]]:
    """A client that fails (the LlamaIndex peer's sync path, see RESULTS.md) leaves tasks and
    transports behind on loops it closed; their "never retrieved" / "ignored" reports are
    counted here instead of flooding the output, and the hooks are put back afterwards."""
    ignored: list[str] = []
    logger = logging.getLogger("asyncio")
    level, hook = logger.level, sys.unraisablehook
    logger.setLevel(logging.CRITICAL)
    sys.unraisablehook = lambda info: ignored.append(type(info.exc_value).__name__)
    try:
        yield ignored
    finally:
        logger.setLevel(level)
        sys.unraisablehook = hook


def run(budget: Budget, families: tuple[str, ...] = ("hfbridge", "peer", "raw")) -> dict[str, Any]:
    with _quiet_leftovers() as ignored:
        data = _run(budget, [c for c in cases() if c.family in families])
    data["ignored_exceptions"] = len(ignored)
    return data


def _run(budget: Budget, all_cases: list[Case]) -> dict[str, Any]:
    items = texts(budget.embed_texts)
    loop = asyncio.new_event_loop()

    def call(case: Case, batch: list[str]) -> Any:
        return loop.run_until_complete(case.fn(batch)) if case.mode == "async" else case.fn(batch)

    with StubServer() as stub:
        for case in all_cases:
            try:
                case.fn = case.build(case, stub.url)
                _check(call(case, items[:100]), 100)  # warm-up: pools open, lazy imports done
            except Exception as exc:  # reported in the table, not hidden
                case.error = describe_error(exc)

        def measure(case: Case, rep: int) -> None:
            if case.error:
                return
            stub.reset()
            started, cpu = time.perf_counter(), time.process_time()
            try:
                vectors = call(case, items)
            except Exception as exc:
                case.error = describe_error(exc)
                return
            case.seconds.append(time.perf_counter() - started)
            case.cpu.append(time.process_time() - cpu)
            _check(vectors, len(items))
            seen = stub.stats()
            case.requests.append(seen["by_kind"]["embeddings"])
            case.connections.append(seen["connections"])

        interleaved([c for c in all_cases if not c.error], budget.embed_reps, measure)
        for case in all_cases:
            for close in case.close:
                try:
                    result = close()
                    if asyncio.iscoroutine(result):
                        loop.run_until_complete(result)
                except Exception as exc:  # kept with the row: a client that cannot close is worth knowing
                    case.close_error = describe_error(exc)
    loop.close()

    rows = []
    for case in all_cases:
        seconds = median(case.seconds)
        rows.append({
            "name": case.name, "family": case.family, "mode": case.mode, "call": case.call, "error": case.error,
            "close_error": case.close_error,
            "texts_per_s": len(items) / seconds if case.seconds else None,
            "texts_per_cpu_s": len(items) / median(case.cpu) if case.cpu else None,
            "seconds": case.seconds, "cpu_seconds": case.cpu,
            "requests": int(median(case.requests)) if case.requests else None,
            "connections": int(median(case.connections)) if case.connections else None,
        })
    return {"section": "embeddings", "budget": budget.name, "texts": len(items), "reps": budget.embed_reps,
            "machine": machine(), "rows": rows}

