"""Which async transport: httpx against aiohttp (both unbounded), and hfbridge's client, as the
number of concurrent requests grows. This is the measurement behind AsyncInferenceClient's
choice of aiohttp, with a semaphore in front of its pool.

    .venv/bin/python benchmarks/bench_async_transport.py   # writes results/async_transport.{md,svg}
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Awaitable, Callable

import aiohttp
import httpx
import orjson

from _stub import StubServer
from svg import bar_chart

RESULTS = Path(__file__).parent / "results"
BODY = orjson.dumps({"inputs": ["a short text to embed"] * 8})
LEVELS = [1, 16, 64, 256]
REQUESTS = 512


async def timed(make: Callable[[], Awaitable[None]]) -> float:
    """Requests per second (median of 3), or NaN when the run failed: a transport that drops
    requests under load is reported as failing, not left out."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        try:
            await make()
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            print(f"  run failed: {type(exc).__name__}: {exc}")
            return float("nan")
        times.append(time.perf_counter() - started)
    return REQUESTS / statistics.median(times)


async def measure(url: str, concurrency: int) -> dict[str, float]:
    from hfbridge import AsyncInferenceClient

    results: dict[str, float] = {}

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=None)) as client:
        async def httpx_unbounded() -> None:
            async def one() -> None:
                response = await client.post(url, content=BODY, headers={"content-type": "application/json"})
                orjson.loads(response.content)

            for start in range(0, REQUESTS, concurrency):
                await asyncio.gather(*(one() for _ in range(min(concurrency, REQUESTS - start))))

        results["httpx, no bound"] = await timed(httpx_unbounded)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def aiohttp_run() -> None:
            async def one() -> None:
                async with session.post(url, data=BODY, headers={"content-type": "application/json"}) as response:
                    orjson.loads(await response.read())

            for start in range(0, REQUESTS, concurrency):
                await asyncio.gather(*(one() for _ in range(min(concurrency, REQUESTS - start))))

        results["aiohttp, no bound"] = await timed(aiohttp_run)

    async with AsyncInferenceClient(url.rsplit("/models/", 1)[0], token=False, max_concurrency=16) as ours:
        async def hfbridge_run() -> None:
            for start in range(0, REQUESTS, concurrency):
                await asyncio.gather(*(ours.feature_extraction(["a short text to embed"] * 8, model="m")
                                       for _ in range(min(concurrency, REQUESTS - start))))

        results["hfbridge (aiohttp + semaphore 16)"] = await timed(hfbridge_run)
    return results


def _cell(value: float) -> str:
    return "failed" if value != value else f"{value:,.0f}"


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    table: dict[int, dict[str, float]] = {}
    with StubServer(max_batch=8) as stub:
        url = f"{stub.url}/models/m/feature-extraction"
        for level in LEVELS:
            table[level] = asyncio.run(measure(url, level))
    names = list(table[LEVELS[0]])
    lines = ["# Async transports under concurrency", "",
             f"{REQUESTS} POSTs of 8 texts each (8 x 384 floats back) per run, issued {', '.join(map(str, LEVELS))} at a time;",
             "stub server on 127.0.0.1 sharing the 2 cores. Requests per second, median of 3; higher is better.", "",
             "| in flight | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for level in LEVELS:
        lines.append(f"| {level} | " + " | ".join(_cell(table[level][n]) for n in names) + " |")
    (RESULTS / "async_transport.md").write_text("\n".join(lines) + "\n")
    bar_chart(RESULTS / "async_transport.svg", f"Requests/s at {LEVELS[-1]} in flight (0: failed)", "req/s",
              [(name, 0.0 if table[LEVELS[-1]][name] != table[LEVELS[-1]][name] else table[LEVELS[-1]][name]) for name in names])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
