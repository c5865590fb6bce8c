"""Concurrent requests to one encoder model share forward passes, and each still gets the answer
it would get alone: in order, with its own parameters, its own errors, and none once it has left.

To make "concurrent" exact rather than a race, a test holds the model's lock (as a long request
to the same model would) while its requests arrive; they queue, and once the model is free the
batcher plans them all and merges them. Batches are counted with the batcher's own statistics
(the same figures ``GET /stats`` serves). Nothing here asserts a time.
"""

from __future__ import annotations

import math
import socket
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from hfbridge.server.app import ServerSettings
from hfbridge.server.batching import BatchSettings
from hfbridge.server.limits import Limits
from hfbridge.server.runner import EmbeddedServer

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
CLASSIFIER = "hfbridge/tiny-text-classification"
ENTITIES = "hfbridge/tiny-token-classification"
FILL_MASK = "hfbridge/tiny-fill-mask"
ZERO_SHOT = "hfbridge/tiny-zero-shot-classification"
CROSS_ENCODER = "hfbridge/tiny-cross-encoder"
MODELS = [MINILM, CLASSIFIER, ENTITIES, FILL_MASK, ZERO_SHOT, CROSS_ENCODER]
#: small bounds, so a handful of requests reaches each of them
BOUNDS = BatchSettings(max_batch_tokens=200, max_batch_size=8, max_batch_wait_ms=20)
NO_CACHE = {"use_cache": False}
#: the most any wait below may take (a bound on the run, not a measurement)
BOUND = 60.0
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def server(model_cache: Path) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(ServerSettings(cache_dir=model_cache, batching=BOUNDS, limits=Limits(shutdown_timeout=1.0))).start()
    srv.wait_until_loaded(MODELS)
    yield srv
    srv.stop()


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {BOUND} s: {what}")
        time.sleep(0.005)


def _batcher(server: EmbeddedServer, model_id: str) -> Any:
    return server.batchers.batcher(model_id, server.models.backend(model_id))


def _post(server: EmbeddedServer, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(server.url + path, json=body, timeout=BOUND)


def together(server: EmbeddedServer, model_id: str, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` while the model is busy, so that all of them queue before any runs."""
    batcher = _batcher(server, model_id)
    queued = len(batcher)
    with ThreadPoolExecutor(len(calls)) as pool:
        with server.models.lock(model_id):
            futures = [pool.submit(call) for call in calls]
            _until(lambda: len(batcher) == queued + len(calls), f"{len(calls)} requests queued for {model_id}")
        return [future.result(timeout=BOUND) for future in futures]


def _close(a: Any, b: Any, tolerance: float = TOLERANCE) -> bool:
    """Equal JSON, floats within ``tolerance``."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tolerance) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tolerance) for k in a)
    return a == b


def _shared_and_alone(server: EmbeddedServer, model_id: str, cases: list[tuple[str, dict[str, Any]]]) -> tuple[list, list, dict]:
    """Each case sent concurrently (queued behind a busy model), then each alone; and the
    batcher's statistics of the concurrent round."""
    batcher = _batcher(server, model_id)
    before = batcher.stats.as_dict()
    shared = together(server, model_id, [lambda path=path, body=body: _post(server, path, body) for path, body in cases])
    after = batcher.stats.as_dict()
    alone = [_post(server, path, body) for path, body in cases]
    counts = {key: after[key] - before[key] for key in ("batches", "rows", "requests", "shared_requests", "failed_requests")}
    counts["recent"] = after["recent"][-counts["batches"]:] if counts["batches"] else []
    return shared, alone, counts


def _assert_same(shared: list[requests.Response], alone: list[requests.Response]) -> None:
    for index, (a, b) in enumerate(zip(shared, alone)):
        assert a.status_code == b.status_code, (index, a.text, b.text)
        assert _close(a.json(), b.json()), f"request {index} answered differently in a batch than alone"


def fe(inputs: Any, **parameters: Any) -> tuple[str, dict[str, Any]]:
    return f"/models/{MINILM}/feature-extraction", {"inputs": inputs, "parameters": parameters, "options": NO_CACHE}


# --------------------------------------------------------------------------------------------
# feature-extraction: sharing, parameters per request, order
# --------------------------------------------------------------------------------------------
def test_concurrent_requests_share_one_forward_pass_and_get_their_lone_answers(server: EmbeddedServer) -> None:
    cases = [fe(f"sentence {i} about the weather in the mountains") for i in range(6)]
    shared, alone, counts = _shared_and_alone(server, MINILM, cases)
    _assert_same(shared, alone)
    assert all(r.status_code == 200 and len(r.json()) == 1 and len(r.json()[0]) == 384 for r in shared)
    assert counts["batches"] == 1 and counts["rows"] == 6  # six requests, one forward pass
    assert counts["shared_requests"] == 6
    assert counts["recent"] == [{"rows": 6, "requests": 6, "padded_tokens": counts["recent"][0]["padded_tokens"]}]


def test_requests_with_different_parameters_share_a_pass_and_keep_their_own(server: EmbeddedServer) -> None:
    """Parameters are applied per request after the shared pass (pooling, normalize) or before
    it (truncate decides the tokens)."""
    cases = [
        fe("the cat sat on the mat"),
        fe("the cat sat on the mat", normalize=False),
        fe("the cat sat on the mat", pooling="cls"),
        fe(["the cat sat", "on the mat"], pooling="none"),
        fe("the cat sat on the mat", pooling="none", normalize=True),
        fe("the cat sat on the mat", truncate=False),
    ]
    shared, alone, counts = _shared_and_alone(server, MINILM, cases)
    _assert_same(shared, alone)
    assert counts["batches"] == 1 and counts["rows"] == 7
    vectors = [r.json() for r in shared]
    assert not _close(vectors[0], vectors[1]) and not _close(vectors[0], vectors[2])  # the parameters did act
    assert math.isclose(sum(x * x for x in vectors[0][0]), 1.0, rel_tol=1e-4)  # the model's own rule: normalised
    assert len(vectors[3]) == 2 and len(vectors[3][0]) == 5  # token vectors of "the cat sat": [CLS] 3 tokens [SEP]


def test_a_large_request_is_split_and_its_answers_keep_the_input_order(server: EmbeddedServer) -> None:
    texts = [" ".join(["word"] * n) + f" {n}" for n in (3, 40, 1, 25, 7, 60, 2, 12, 33, 5, 18, 9)]
    batcher = _batcher(server, MINILM)
    before = batcher.stats.as_dict()
    response = _post(server, *fe(texts))
    after = batcher.stats.as_dict()
    assert response.status_code == 200
    assert after["split_requests"] == before["split_requests"] + 1 and after["batches"] - before["batches"] > 1
    one_by_one = [_post(server, *fe(text)).json()[0] for text in texts]
    assert _close(response.json(), one_by_one)  # the i-th vector is the i-th text's


def test_batches_stay_within_the_row_and_token_budgets(server: EmbeddedServer) -> None:
    """Twelve texts of 3 to 70 tokens (and one of 230, over the 200-token budget) queued at
    once: no batch holds more than 8 rows or 200 padded tokens, except the long text, alone."""
    lengths = [5, 70, 12, 40, 3, 55, 20, 8, 66, 30, 9, 45]
    cases = [fe(" ".join(["word"] * (n - 2))) for n in lengths] + [fe(" ".join(["word"] * 228), truncate=False)]
    shared, alone, counts = _shared_and_alone(server, MINILM, cases)
    _assert_same(shared, alone)
    assert all(r.status_code == 200 for r in shared)
    batches = counts["recent"]
    assert sum(b["rows"] for b in batches) == len(cases) and len(batches) == counts["batches"] > 2
    for batch in batches:
        assert batch["rows"] <= BOUNDS.max_batch_size
        assert batch["padded_tokens"] <= BOUNDS.max_batch_tokens or batch["rows"] == 1, batch
    assert [b["padded_tokens"] for b in batches if b["padded_tokens"] > BOUNDS.max_batch_tokens] == [230]


def test_a_bad_request_fails_alone_and_its_batch_is_answered(server: EmbeddedServer) -> None:
    too_long = " ".join(["word"] * 400)  # past the model's 256 tokens
    cases = [fe("a good text"), fe(too_long, truncate=False), fe(["fine", "also fine"]), fe("another good one")]
    shared, alone, counts = _shared_and_alone(server, MINILM, cases)
    _assert_same(shared, alone)
    assert [r.status_code for r in shared] == [200, 400, 200, 200]
    assert "Error in `inputs`" in shared[1].json()["error"] and "256" in shared[1].json()["error"]
    assert counts["batches"] == 1 and counts["rows"] == 4 and counts["failed_requests"] == 1


# --------------------------------------------------------------------------------------------
# cancellation and shutdown
# --------------------------------------------------------------------------------------------
def _raw_request(server: EmbeddedServer, path: str, body: dict[str, Any]) -> socket.socket:
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(head.encode() + data)
    return sock


def test_a_request_whose_client_leaves_is_removed_from_the_queue(server: EmbeddedServer) -> None:
    batcher = _batcher(server, MINILM)
    before = batcher.stats.as_dict()
    cancelled_jobs = server.jobs.cancelled
    with ThreadPoolExecutor(2) as pool, server.models.lock(MINILM):
        stays = [pool.submit(_post, server, *fe(f"a text that stays {i}")) for i in range(2)]
        _until(lambda: len(batcher) == 2, "two requests queued")
        with _raw_request(server, *fe("a text whose client leaves")):
            _until(lambda: len(batcher) == 3, "the third request queued")
        _until(lambda: len(batcher) == 2, "the abandoned request left the queue")
    answers = [future.result(timeout=BOUND) for future in stays]
    after = batcher.stats.as_dict()
    assert [a.status_code for a in answers] == [200, 200]
    assert after["cancelled_requests"] == before["cancelled_requests"] + 1
    assert server.jobs.cancelled == cancelled_jobs + 1
    assert after["rows"] - before["rows"] == 2  # the abandoned text never reached the model


def test_stopping_the_server_ends_queued_requests(model_cache: Path) -> None:
    srv = EmbeddedServer(ServerSettings(cache_dir=model_cache, batching=BOUNDS, limits=Limits(shutdown_timeout=0.2))).start()
    srv.wait_until_loaded([CLASSIFIER])
    batcher = _batcher(srv, CLASSIFIER)
    body = {"inputs": "queued at shutdown", "options": NO_CACHE}
    with srv.models.lock(CLASSIFIER):
        sock = _raw_request(srv, f"/models/{CLASSIFIER}", body)
        _until(lambda: len(batcher) == 1, "the request queued")
        srv.stop()  # gives it shutdown_timeout, then cancels it
        assert len(batcher) == 0
    sock.close()
    assert batcher.stats.batches == 0 and batcher.stats.cancelled_requests == 1


# --------------------------------------------------------------------------------------------
# the other encoder tasks and routes
# --------------------------------------------------------------------------------------------
TASK_CASES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    CLASSIFIER: [
        (f"/models/{CLASSIFIER}", {"inputs": "I like you"}),
        (f"/models/{CLASSIFIER}", {"inputs": ["I like you", "this film was terrible and boring"], "parameters": {"top_k": 1}}),
        (f"/models/{CLASSIFIER}/text-classification", {"inputs": "the weather today", "parameters": {"function_to_apply": "none"}}),
        (f"/models/{CLASSIFIER}/predict", {"inputs": [["a text"], ["a premise", "a hypothesis"]]}),
    ],
    ENTITIES: [
        (f"/models/{ENTITIES}", {"inputs": "My name is Sarah and I live in Paris"}),
        (f"/models/{ENTITIES}", {"inputs": "Apple and Google are companies", "parameters": {"aggregation_strategy": "none"}}),
        # longer than the tiny model's 64 positions: read in overlapping windows, rows of one request
        (f"/models/{ENTITIES}", {"inputs": " ".join(["Sarah lives in Paris and works at Google."] * 6), "parameters": {"stride": 8}}),
    ],
    FILL_MASK: [
        (f"/models/{FILL_MASK}", {"inputs": "Paris is the [MASK] of France."}),
        (f"/models/{FILL_MASK}", {"inputs": ["the [MASK] sat on the mat", "a [MASK] day"], "parameters": {"top_k": 2}}),
        (f"/models/{FILL_MASK}", {"inputs": "no mask here"}),  # refused alone
        (f"/models/{FILL_MASK}", {"inputs": "the [MASK] is blue", "parameters": {"targets": ["sky", "sea"]}}),
    ],
    ZERO_SHOT: [
        (f"/models/{ZERO_SHOT}", {"inputs": "a football match", "parameters": {"candidate_labels": ["sport", "politics", "music"]}}),
        (f"/models/{ZERO_SHOT}/zero-shot-classification", {"inputs": "an election", "parameters": {"candidate_labels": ["politics"], "multi_label": True}}),
        (f"/models/{ZERO_SHOT}", {"inputs": "a song", "parameters": {"candidate_labels": ["music", "sport"], "hypothesis_template": "No {} here."}}),
    ],
    MINILM: [
        (f"/models/{MINILM}/sentence-similarity", {"inputs": {"source_sentence": "a cat", "sentences": ["a kitten", "a car"]}}),
        ("/v1/embeddings", {"model": MINILM, "input": ["first text", "second text"]}),
        ("/v1/embeddings", {"model": MINILM, "input": "cut to 64 dimensions", "dimensions": 64}),
        (f"/models/{MINILM}/rerank", {"query": "a cat", "texts": ["a kitten", "a car"]}),
        fe("a feature-extraction request in the same pass"),
    ],
    CROSS_ENCODER: [
        (f"/models/{CROSS_ENCODER}/rerank", {"query": "what is a cat", "texts": ["a small animal", "a vehicle", "a cat"]}),
        (f"/models/{CROSS_ENCODER}/rerank", {"query": "q", "texts": ["one", "two"], "raw_scores": True, "top_n": 1}),
    ],
}


@pytest.mark.parametrize("model_id", list(TASK_CASES), ids=lambda m: m.rsplit("/", 1)[-1])
def test_every_encoder_task_and_route_is_batched_with_lone_answers(server: EmbeddedServer, model_id: str) -> None:
    cases = [(path, {**body, "options": NO_CACHE} if not path.endswith(("/v1/embeddings", "/rerank", "/predict")) else body)
             for path, body in TASK_CASES[model_id]]
    shared, alone, counts = _shared_and_alone(server, model_id, cases)
    _assert_same(shared, alone)
    good = [r for r in shared if r.status_code == 200]
    assert len(good) >= len(cases) - 1, [r.text for r in shared]
    assert counts["batches"] >= 1 and counts["shared_requests"] >= 2  # requests did share forward passes
    assert counts["batches"] < len(good)


def test_stats_endpoint_reports_the_batchers(server: EmbeddedServer) -> None:
    assert _post(server, *fe("counted")).status_code == 200
    data = requests.get(f"{server.url}/stats", timeout=BOUND).json()
    assert data["batching"]["settings"] == {"max_batch_tokens": 200, "max_batch_size": 8, "max_batch_wait_ms": 20}
    minilm = data["batching"]["models"][MINILM]
    assert minilm["batches"] >= 1 and minilm["largest_batch_rows"] <= 8


def test_a_request_that_breaks_the_forward_pass_fails_alone(server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forward pass that raises is rerun request by request: the request whose rows break it
    gets a 500, its batch-mates their answers."""
    backend = server.models.backend(CLASSIFIER)
    forward = backend.forward
    poison = backend.tokenizer("poison")["input_ids"]

    def fragile(rows: list[Any]) -> list[Any]:
        if any(r["input_ids"] == poison for r in rows):
            raise RuntimeError("this row breaks the model")
        return forward(rows)

    cases = [(f"/models/{CLASSIFIER}", {"inputs": text, "options": NO_CACHE}) for text in ("fine", "poison", "also fine")]
    batcher = _batcher(server, CLASSIFIER)
    reruns = batcher.stats.reruns
    monkeypatch.setattr(backend, "forward", fragile)
    shared = together(server, CLASSIFIER, [lambda path=path, body=body: _post(server, path, body) for path, body in cases])
    monkeypatch.setattr(backend, "forward", forward)
    assert [r.status_code for r in shared] == [200, 500, 200]
    assert "this row breaks" not in shared[1].text and "incident" in shared[1].json()["error"]
    assert batcher.stats.reruns == reruns + 1
    alone = [_post(server, path, body) for path, body in cases]
    assert _close(shared[0].json(), alone[0].json()) and _close(shared[2].json(), alone[2].json())
