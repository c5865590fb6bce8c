"""Embedding throughput of the client side: hfbridge against the peers, same server, same bodies.

The server is a stub that answers precomputed 384-d vectors instantly, so the numbers are the
clients' own cost per text: building the request, the HTTP round trip, decoding the JSON.

    .venv/bin/python benchmarks/bench_embeddings.py      # writes results/embeddings.{md,svg}
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable

import requests
from pydantic import BaseModel

from _stub import StubServer
from svg import bar_chart

RESULTS = Path(__file__).parent / "results"
TEXTS = [f"document number {i} about something worth embedding" for i in range(2048)]
BATCH = 32


class _ValidatedEmbeddings(BaseModel):
    """What a client that validates every float with pydantic pays for (a common pattern)."""

    vectors: list[list[float]]


def run(fn: Callable[[list[str]], list[list[float]]], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        vectors = fn(TEXTS)
        times.append(time.perf_counter() - started)
        assert len(vectors) == len(TEXTS) and len(vectors[0]) == 384
    return len(TEXTS) / statistics.median(times)


def main() -> None:
    from hfbridge import InferenceClient
    from hfbridge.langchain import HFInferenceEmbeddings

    RESULTS.mkdir(exist_ok=True)
    rows: list[tuple[str, float]] = []
    with StubServer(max_batch=BATCH) as stub:
        url = f"{stub.url}/models/m/feature-extraction"
        session = requests.Session()

        def raw_json(texts: list[str]) -> list[list[float]]:
            out: list[list[float]] = []
            for i in range(0, len(texts), BATCH):
                out += json.loads(session.post(url, json={"inputs": texts[i : i + BATCH]}).content)
            return out

        def raw_json_pydantic(texts: list[str]) -> list[list[float]]:
            out: list[list[float]] = []
            for i in range(0, len(texts), BATCH):
                out += _ValidatedEmbeddings(vectors=json.loads(session.post(url, json={"inputs": texts[i : i + BATCH]}).content)).vectors
            return out

        client = InferenceClient(stub.url, token=False)

        def hfbridge_serial(texts: list[str]) -> list[list[float]]:
            out: list[list[float]] = []
            for i in range(0, len(texts), BATCH):
                out += client.feature_extraction(texts[i : i + BATCH], model="m")
            return out

        lc = HFInferenceEmbeddings(base_url=stub.url, model="m", batch_size=BATCH, max_concurrency=4)

        rows.append(("requests + json.loads", run(raw_json)))
        rows.append(("requests + json + pydantic", run(raw_json_pydantic)))
        try:
            from huggingface_hub import InferenceClient as HubClient

            hub = HubClient(base_url=stub.url + "/models/m")

            def hub_client(texts: list[str]) -> list[list[float]]:
                out: list[list[float]] = []
                for i in range(0, len(texts), BATCH):
                    out += hub.feature_extraction(texts[i : i + BATCH]).tolist()
                return out

            rows.append(("huggingface_hub client", run(hub_client)))
        except Exception as exc:  # reported, not hidden: the peer may be missing or changed
            print(f"huggingface_hub skipped: {type(exc).__name__}: {exc}")
        rows.append(("hfbridge client, serial", run(hfbridge_serial)))
        rows.append(("hfbridge LangChain embeddings, 4 in flight", run(lc.embed_documents)))

    lines = ["# Embedding throughput, client side", "",
             f"{len(TEXTS)} texts in batches of {BATCH}, 384-d vectors, a stub server answering at once (127.0.0.1).",
             "Median of 3 runs; higher is better.", "", "| client | texts/s |", "|---|---:|"]
    lines += [f"| {name} | {value:,.0f} |" for name, value in rows]
    (RESULTS / "embeddings.md").write_text("\n".join(lines) + "\n")
    bar_chart(RESULTS / "embeddings.svg", "Embedding throughput (client side, texts/s)", "texts/s", rows)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
