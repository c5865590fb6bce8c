"""A short mixed-task load: 64 clients at once, each with its own connection, sending requests
of several tasks (good ones and bad ones, streamed and not) to one server with default settings.

Asserted: every request is answered (none lost, none timed out), none with a 5xx, each with the
status and shape its task gives. Reported, never asserted: latency percentiles and throughput,
in the terminal summary ("hfbridge serve under load")."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any, Callable

import aiohttp

from .conftest import REPORTS

CLIENTS = 64
ROUNDS = 4
#: the whole load must finish within this (a bound on the run, not a measurement)
DEADLINE = 300.0
LOADED = [
    "hfbridge/tiny-fill-mask", "hfbridge/tiny-text-classification", "hfbridge/tiny-token-classification",
    "sentence-transformers/all-MiniLM-L6-v2", "hfbridge/tiny-question-answering", "hfbridge/tiny-summarization",
    "hfbridge/tiny-text-generation", "hfbridge/tiny-image-classification", "hfbridge/tiny-zero-shot-classification",
]


def _list_of(key: str) -> Callable[[Any], bool]:
    return lambda body: isinstance(body, list) and bool(body) and key in body[0]


#: (name, path, request keyword arguments, expected status, check of the answer)
CASES: list[tuple[str, str, dict[str, Any], int, Callable[[Any], bool]]] = [
    ("fill-mask", "/models/hfbridge/tiny-fill-mask", {"json": {"inputs": "Paris is the [MASK] of France."}}, 200, _list_of("token_str")),
    ("text-classification", "/models/hfbridge/tiny-text-classification/text-classification", {"json": {"inputs": "I like it"}}, 200, lambda b: isinstance(b[0], list)),
    ("token-classification", "/models/hfbridge/tiny-token-classification", {"json": {"inputs": "Sarah lives in Paris"}}, 200, lambda b: isinstance(b, list)),
    ("feature-extraction", "/pipeline/feature-extraction", {"json": {"inputs": ["first text", "second text"]}}, 200, lambda b: len(b) == 2 and len(b[0]) == 384),
    ("question-answering", "/models/hfbridge/tiny-question-answering", {"json": {"inputs": {"question": "Who?", "context": "Sarah lives in Paris."}}}, 200, lambda b: "answer" in b),
    ("summarization", "/models/hfbridge/tiny-summarization", {"json": {"inputs": "A long text to be summarised in a few words.", "parameters": {"max_length": 12}}}, 200, _list_of("summary_text")),
    ("text-generation", "/models/hfbridge/tiny-text-generation", {"json": {"inputs": "Once upon", "parameters": {"max_new_tokens": 8}}}, 200, _list_of("generated_text")),
    ("zero-shot", "/models/hfbridge/tiny-zero-shot-classification", {"json": {"inputs": "a match", "parameters": {"candidate_labels": ["sport", "politics"]}}}, 200, lambda b: "labels" in b),
    ("image-classification", "/models/hfbridge/tiny-image-classification", {"image": True}, 200, _list_of("label")),
    ("stream", "/models/hfbridge/tiny-text-generation", {"json": {"inputs": "Once upon", "parameters": {"max_new_tokens": 8}, "stream": True}}, 200,
     lambda events: events and events[-1]["generated_text"] is not None),
    ("bad: empty", "/models/hfbridge/tiny-fill-mask", {"json": {"inputs": ""}}, 400, lambda b: "`inputs`" in b["error"]),
    ("bad: over a cap", "/models/hfbridge/tiny-text2text-generation", {"json": {"inputs": "x", "parameters": {"max_new_tokens": 10**6}}}, 400,
     lambda b: "max_new_tokens" in b["error"]),
]


async def _one(session: aiohttp.ClientSession, url: str, case: tuple, image: bytes) -> tuple[str, int, float, bool]:
    name, path, kwargs, _, check = case
    started = time.perf_counter()
    if kwargs.get("image"):
        request = {"data": image, "headers": {"Content-Type": "image/png", "X-Use-Cache": "false"}}
    else:
        request = {"json": {**kwargs["json"], "options": {"use_cache": False}}}
    async with session.post(url + path, **request) as response:
        raw = await response.read()
    elapsed = time.perf_counter() - started
    if name == "stream" and response.status == 200:
        body: Any = [json.loads(line[5:]) for line in raw.splitlines() if line.startswith(b"data:")]
    else:
        body = json.loads(raw)
    return name, response.status, elapsed, bool(check(body))


async def _client(index: int, url: str, image: bytes) -> list[tuple[str, int, float, bool]]:
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=1)) as session:
        return [await _one(session, url, CASES[(index + round_) % len(CASES)], image) for round_ in range(ROUNDS)]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def test_64_clients_of_mixed_tasks_are_all_answered_without_5xx(default_server: Any, sample_image: bytes) -> None:
    default_server.wait_until_loaded(LOADED)

    async def load() -> list[Any]:
        return await asyncio.wait_for(asyncio.gather(*(_client(i, default_server.url, sample_image) for i in range(CLIENTS))), DEADLINE)

    started = time.perf_counter()
    results = [result for client in asyncio.run(load()) for result in client]
    wall = time.perf_counter() - started

    assert len(results) == CLIENTS * ROUNDS  # none lost
    expected = {case[0]: case[3] for case in CASES}
    assert not [r for r in results if r[1] >= 500], "5xx under load"
    wrong = [(name, status) for name, status, _, ok in results if status != expected[name] or not ok]
    assert not wrong, wrong

    latencies = [r[2] for r in results]
    REPORTS.append(
        f"{len(results)} requests from {CLIENTS} concurrent clients ({len(CASES)} kinds, {ROUNDS} each) in {wall:.1f} s "
        f"({len(results) / wall:.1f} req/s): p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {_percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; no 5xx, none lost"
    )
    print(REPORTS[-1])
