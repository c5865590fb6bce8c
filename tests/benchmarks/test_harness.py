"""The benchmark harness runs end to end on a tiny budget: the stub answers every request shape,
the sections produce figures, the report is written. No timing is asserted (figures on a tiny
budget mean nothing); the request and connection counts the stub saw are exact, so they are."""

from __future__ import annotations

import math

import pytest

from benchmarks import embeddings, latency
from benchmarks._common import Budget, save
from benchmarks.report import write_report

TINY = Budget("tiny", embed_texts=100, embed_reps=1, latency_calls=3, latency_warmup=1)


@pytest.fixture(scope="module")
def embedding_results() -> dict:
    return embeddings.run(TINY, families=("hfbridge", "raw"))


def _row(data: dict, name: str, mode: str) -> dict:
    return next(r for r in data["rows"] if r["name"] == name and r["mode"] == mode)


def test_every_hfbridge_embedding_path_and_raw_client_ran(embedding_results: dict) -> None:
    rows = embedding_results["rows"]
    assert {r["name"] for r in rows if r["family"] == "hfbridge"} == {"hfbridge core", "hfbridge LangChain", "hfbridge LlamaIndex"}
    for row in rows:
        assert row["error"] is None, row
        assert row["close_error"] is None, row
        assert row["texts_per_s"] > 0


def test_the_stub_counts_requests_and_reused_connections(embedding_results: dict) -> None:
    batches = math.ceil(TINY.embed_texts / embeddings.BATCH)
    core_sync = _row(embedding_results, "hfbridge core", "sync")
    assert core_sync["requests"] == batches
    assert 1 <= core_sync["connections"] <= min(batches, 16)  # concurrent batches on the pooled connections
    raw_sync = _row(embedding_results, "httpx", "sync")
    assert raw_sync["requests"] == batches
    assert raw_sync["connections"] == 1  # one kept-alive connection for batches sent in turn
    core_async = _row(embedding_results, "hfbridge core", "async")
    assert core_async["requests"] == batches
    assert 1 <= core_async["connections"] <= batches


def test_single_calls_and_the_report(embedding_results: dict, tmp_path) -> None:
    data = latency.run(TINY, families=("hfbridge", "raw"))
    for row in data["rows"]:
        assert row["error"] is None, row
        assert row["calls"] == TINY.latency_calls and row["median_ms"] > 0 and row["cpu_ms"] >= 0
    results = tmp_path / "results"
    save("embeddings", embedding_results, results)
    save("latency", data, results)
    text = write_report(tmp_path).read_text()
    assert "## Targets of issue 12" in text
    assert "| hfbridge core | hfbridge | `InferenceClient.feature_extraction" in text
    assert "One chat completion call" in text
