"""What the routes added for issue 14 cost on ``hfbridge serve`` (embedded, CPU, built-in models):

* a batch of texts in one request against one request per text (tiny text-classification, and
  the real MiniLM's embeddings);
* ``/rerank`` latency by number of passages, real MiniLM (bi-encoder) and the tiny cross-encoder;
* ``/v1/embeddings`` answered as floats or as base64 (size on the wire, time).

    .venv/bin/python benchmarks/bench_server_surface.py      # writes results/server_surface.md
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import requests

RESULTS = Path(__file__).parent / "results"
TEXTS = [f"document number {i} says something worth classifying and ranking" for i in range(32)]


def timed(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median seconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    from hfbridge.server.app import ServerSettings
    from hfbridge.server.registry import default_cache_dir
    from hfbridge.server.runner import EmbeddedServer

    models = ["hfbridge/tiny-text-classification", "sentence-transformers/all-MiniLM-L6-v2", "hfbridge/tiny-cross-encoder"]
    server = EmbeddedServer(ServerSettings(cache_dir=default_cache_dir(), cache_entries=0)).start()
    lines = ["# hfbridge serve: batches, rerank, OpenAI embeddings", "",
             "Embedded server on this machine's CPU (2 cores shared), answer cache off; median of 5 after a warm-up.", ""]
    try:
        server.wait_until_loaded(models)
        session = requests.Session()
        url = server.url

        def post(path: str, body: dict) -> requests.Response:
            response = session.post(url + path, json=body, timeout=120)
            assert response.status_code == 200, response.text
            return response

        lines += ["## A batch in one request vs one request per text (32 texts)", "",
                  "| task | one request | 32 requests | speed-up |", "|---|---|---|---|"]
        for name, path in (("text-classification (tiny)", "/models/hfbridge/tiny-text-classification"),
                           ("feature-extraction (MiniLM)", "/models/sentence-transformers/all-MiniLM-L6-v2")):
            batch = timed(lambda: post(path, {"inputs": TEXTS}))
            single = timed(lambda: [post(path, {"inputs": text}) for text in TEXTS])
            lines.append(f"| {name} | {batch * 1000:.0f} ms | {single * 1000:.0f} ms | {single / batch:.1f}x |")

        lines += ["", "## /rerank latency by passages", "", "| reranker | 10 passages | 100 passages |", "|---|---|---|"]
        passages = [f"passage {i}: " + TEXTS[i % len(TEXTS)] for i in range(100)]
        for name, path in (("MiniLM bi-encoder (default)", "/rerank"),
                           ("tiny cross-encoder", "/models/hfbridge/tiny-cross-encoder/rerank")):
            cells = [timed(lambda n=n: post(path, {"query": "which document is worth ranking?", "texts": passages[:n]})) for n in (10, 100)]
            lines.append(f"| {name} | {cells[0] * 1000:.0f} ms | {cells[1] * 1000:.0f} ms |")

        lines += ["", "## /v1/embeddings: floats or base64 (32 texts, 384 dimensions)", "",
                  "| encoding_format | body size | time |", "|---|---|---|"]
        for fmt in ("float", "base64"):
            size = len(post("/v1/embeddings", {"input": TEXTS, "encoding_format": fmt}).content)
            seconds = timed(lambda fmt=fmt: post("/v1/embeddings", {"input": TEXTS, "encoding_format": fmt}))
            lines.append(f"| {fmt} | {size / 1024:.0f} KiB | {seconds * 1000:.0f} ms |")
        session.close()
    finally:
        server.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "server_surface.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
