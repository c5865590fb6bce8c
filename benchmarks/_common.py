"""What every benchmark section shares: the budget (full or quick), the statistics, the
interleaved repetition loop and the JSON results files the report is written from."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_DIR = HERE / "results"


@dataclass(frozen=True)
class Budget:
    """How much each section measures. ``quick`` checks the harness in a few minutes; its
    figures are too few to quote."""

    name: str
    embed_texts: int = 2000
    embed_reps: int = 15
    latency_calls: int = 200
    latency_warmup: int = 10
    import_reps: int = 11
    #: ``-X importtime`` runs per case for the where-it-goes breakdown (medians per package)
    importtime_reps: int = 3
    server_reps: int = 5
    generation_reps: int = 3
    #: requests per repetition of each server embedding run, by texts per request, shared by
    #: its clients (each sends at least one)
    server_requests: tuple[tuple[int, int], ...] = ((1, 192), (32, 32))
    #: texts per repetition of the raw in-process forward pass
    raw_embed_texts: int = 256
    generation_tokens: int = 32
    #: requests per repetition of each server generation run, by concurrent clients
    generation_requests: tuple[tuple[int, int], ...] = ((1, 4), (4, 8), (16, 16))
    profile_calls: int = 2000

    @classmethod
    def full(cls) -> "Budget":
        return cls("full")

    @classmethod
    def quick(cls) -> "Budget":
        return cls("quick", embed_reps=2, latency_calls=20, latency_warmup=3, import_reps=2, importtime_reps=1, server_reps=1,
                   generation_reps=1, server_requests=((1, 32), (32, 8)), raw_embed_texts=64,
                   generation_tokens=8, generation_requests=((1, 1), (4, 4), (16, 16)), profile_calls=200)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def interleaved(cases: Sequence[Any], reps: int, measure: Callable[[Any, int], None]) -> None:
    """``measure(case, rep)`` for every case, in rounds: A, B, C, A, B, C, ... so that a slow
    spell on the shared machine hits every case alike rather than one case's whole run."""
    for rep in range(reps):
        for case in cases:
            measure(case, rep)


#: the distributions whose versions each result records
VERSIONED = ("hfbridge", "huggingface_hub", "langchain-core", "langchain-huggingface", "llama-index-core",
             "llama-index-llms-huggingface-api", "llama-index-embeddings-huggingface-api", "requests", "httpx",
             "aiohttp", "torch", "transformers")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, Any]:
    """Where and when a section ran; the load average is read as the section ends."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in load], "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "versions": versions()}


def save(section: str, data: dict[str, Any], out_dir: Path = RESULTS_DIR) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{section}.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=False, default=str) + "\n")
    return path


def load(section: str, out_dir: Path = RESULTS_DIR) -> dict[str, Any] | None:
    path = out_dir / f"{section}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def child_env() -> dict[str, str]:
    """The environment for child interpreters: this checkout's sources first, offline."""
    env = dict(os.environ)
    paths = [str(REPO / "src"), str(REPO)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # bytecode is cached as an installed package's is (pip compiles it); without this every cold
    # import of the checkout's sources would compile them again
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def httpx_client() -> Any:
    """The raw baselines' clients: kept-alive pools, imported only by the sections that use them."""
    import httpx

    return httpx.Client()


def requests_session() -> Any:
    import requests

    return requests.Session()


def describe_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 300 else text[:297] + "..."
