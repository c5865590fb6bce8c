"""The server's behaviour as the spec and the hosted API define it: errors, loading, auth, rate
limits, the answer cache, streaming and concurrency."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from hfbridge import AsyncInferenceClient, Task
from hfbridge.server.app import ServerSettings
from hfbridge.server.registry import Registry
from hfbridge.server.runner import EmbeddedServer
from hfbridge.tasks import PIPELINE_TASKS, TASKS

from .test_routes import BODIES, default_model

#: for every task, bodies that must be refused with 400, and the field the error must name
BAD_BODIES: dict[Task, list[tuple[Any, str]]] = {
    Task.TEXT_GENERATION: [({"inputs": ""}, "inputs"), ({"inputs": "x", "parameters": {"top_p": 5}}, "parameters.top_p"),
                           ({"inputs": "x", "parameters": {"max_new_tokens": 0}}, "parameters.max_new_tokens"),
                           ({"inputs": "x", "parameters": {"nonsense": 1}}, "parameters.nonsense")],
    Task.TEXT_CLASSIFICATION: [({"inputs": 42}, "inputs"), ({}, "inputs"), ({"inputs": "x", "parameters": {"top_k": 0}}, "parameters.top_k")],
    Task.TOKEN_CLASSIFICATION: [({"inputs": []}, "inputs"), ({"inputs": ["ok", " "]}, "inputs.1"), ({"inputs": "x", "parameters": {"aggregation_strategy": "bogus"}}, "parameters.aggregation_strategy")],
    Task.QUESTION_ANSWERING: [({"inputs": {"question": "What's my name?"}}, "inputs.context"), ({"inputs": "x"}, "inputs")],
    Task.SUMMARIZATION: [({"inputs": None}, "inputs"), ({"inputs": "x", "parameters": {"max_length": -1}}, "parameters.max_length")],
    Task.TRANSLATION: [({"inputs": ""}, "inputs"), ({"inputs": "x", "extra": 1}, "extra")],
    Task.FILL_MASK: [({"inputs": "there is no mask here"}, "inputs"), ({"inputs": "a [MASK]", "parameters": {"top_k": "many"}}, "parameters.top_k")],
    Task.TEXT2TEXT_GENERATION: [({"inputs": ""}, "inputs")],
    Task.FEATURE_EXTRACTION: [({"inputs": []}, "inputs"), ({"inputs": ["ok", ""]}, "inputs.1"), ({"inputs": {"a": 1}}, "inputs")],
    Task.SENTENCE_SIMILARITY: [({"inputs": {"source_sentence": "a", "sentences": []}}, "inputs.sentences"),
                               ({"inputs": {"source_sentence": "a"}}, "inputs.sentences")],
    Task.ZERO_SHOT_CLASSIFICATION: [({"inputs": "x"}, "parameters"), ({"inputs": "x", "parameters": {"candidate_labels": []}}, "parameters.candidate_labels")],
    Task.TABLE_QUESTION_ANSWERING: [({"inputs": {"query": "q", "table": {"a": ["1"], "b": ["1", "2"]}}}, "inputs.table"),
                                    ({"inputs": {"table": {"a": ["1"]}}}, "inputs.query")],
    Task.CONVERSATIONAL: [({"inputs": "x", "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
                          ({"inputs": "x", "parameters": {"max_tokens": 0}}, "parameters.max_tokens")],
    Task.IMAGE_CLASSIFICATION: [({"inputs": "not base64 at all!"}, "inputs"), ({"inputs": "aGVsbG8="}, "inputs")],
    Task.OBJECT_DETECTION: [({"inputs": "aGVsbG8="}, "inputs"), ({"inputs": "aGVsbG8=", "parameters": {"threshold": 2}}, "parameters.threshold")],
    Task.IMAGE_SEGMENTATION: [({"inputs": "aGVsbG8="}, "inputs")],
    Task.IMAGE_TO_TEXT: [({"inputs": "aGVsbG8="}, "inputs")],
    Task.TEXT_TO_IMAGE: [({"inputs": ""}, "inputs"), ({"inputs": "cat", "parameters": {"width": 3}}, "parameters.width")],
    Task.AUTOMATIC_SPEECH_RECOGNITION: [({"inputs": "aGVsbG8="}, "inputs"), ({"inputs": "https://example.com/a.flac"}, "inputs")],
    Task.AUDIO_CLASSIFICATION: [({"inputs": "aGVsbG8="}, "inputs")],
    Task.TEXT_TO_SPEECH: [({"inputs": ""}, "inputs"), ({"inputs": 7}, "inputs")],
    Task.DOCUMENT_QUESTION_ANSWERING: [({"inputs": {"image": "aGVsbG8=", "question": ""}}, "inputs.question"),
                                       ({"inputs": {"image": "not base64!", "question": "q"}}, "inputs.image"),
                                       ({"inputs": {"image": "aGVsbG8=", "question": "q"}}, "inputs.image"),
                                       ({"inputs": {"image": "aGVsbG8=", "question": "q"}, "parameters": {"top_k": 0}}, "parameters.top_k")],
    Task.VISUAL_QUESTION_ANSWERING: [({"inputs": "aGVsbG8="}, "question"), ({"inputs": {"question": "q"}}, "inputs.image"),
                                     ({"inputs": {"image": "aGVsbG8=", "question": "q"}}, "inputs.image")],
    Task.ZERO_SHOT_IMAGE_CLASSIFICATION: [({"inputs": "aGVsbG8=", "parameters": {"candidate_labels": []}}, "parameters.candidate_labels"),
                                          ({"inputs": BODIES[Task.IMAGE_CLASSIFICATION]["inputs"], "parameters": {}}, "parameters.candidate_labels")],
    Task.AUDIO_TO_AUDIO: [({"inputs": "aGVsbG8="}, "inputs"), ({"inputs": "aGVsbG8=", "parameters": {"x": 1}}, "parameters.x")],
    Task.IMAGE_TO_IMAGE: [({"inputs": "aGVsbG8="}, "inputs"), ({"inputs": "aGVsbG8=", "parameters": {"strength": 2}}, "parameters.strength")],
    Task.TABULAR_CLASSIFICATION: [({"inputs": {"data": {"a": ["1"], "b": ["1", "2"]}}}, "inputs.data"),
                                  ({"inputs": {"data": {"sepal_length": ["1"]}}}, "inputs.data"),
                                  ({"inputs": {"data": {}}, "table": {"a": ["1"]}}, "table")],
    Task.TABULAR_REGRESSION: [({"inputs": {"data": {name: ["x"] for name in ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")}}}, "inputs.data.age.0"),
                              ({"inputs": {"data": {"age": []}}}, "inputs.data"), ({"inputs": None}, "inputs")],
}


@pytest.mark.parametrize("task", PIPELINE_TASKS, ids=lambda t: t.value)
def test_bad_bodies_get_400_naming_the_field(task: Task, live_server: Any) -> None:
    for body, field in BAD_BODIES[task]:
        response = requests.post(f"{live_server.url}/pipeline/{task.value}", json=body, timeout=60)
        assert response.status_code == 400, (task, body, response.status_code, response.text)
        error = response.json()["error"]
        assert f"`{field}`" in error, (task, body, error)


def test_malformed_json_and_wrong_content_type_are_400(live_server: Any) -> None:
    url = f"{live_server.url}/pipeline/text-classification"
    broken = requests.post(url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
    wrong = requests.post(url, data=b"hello", headers={"Content-Type": "text/plain"}, timeout=10)
    assert wrong.status_code == 400 and "application/json" in wrong.json()["error"]
    empty_image = requests.post(f"{live_server.url}/pipeline/image-classification", data=b"", headers={"Content-Type": "image/png"}, timeout=10)
    assert empty_image.status_code == 400


def test_unknown_model_is_404_and_unknown_task_is_400(live_server: Any) -> None:
    missing = requests.post(f"{live_server.url}/models/nobody/nothing", json={"inputs": "x"}, timeout=10)
    assert missing.status_code == 404 and "nobody/nothing" in missing.json()["error"]
    task = requests.post(f"{live_server.url}/pipeline/mind-reading", json={"inputs": "x"}, timeout=10)
    assert task.status_code == 400 and "mind-reading" in task.json()["error"]


def test_model_asked_for_a_task_it_does_not_serve_is_400(live_server: Any) -> None:
    model = default_model(Task.FEATURE_EXTRACTION)
    response = requests.post(f"{live_server.url}/models/{model}/fill-mask", json={"inputs": "a [MASK]"}, timeout=10)
    assert response.status_code == 400
    assert "fill-mask" in response.json()["error"] and model in response.json()["error"]


def test_url_inputs_need_allow_urls(live_server: Any) -> None:
    response = requests.post(f"{live_server.url}/pipeline/image-classification", json={"inputs": "http://127.0.0.1:9/cat.png"}, timeout=10)
    assert response.status_code == 400 and "--allow-urls" in response.json()["error"]


def test_use_cache_answers_identical_requests_from_the_cache(live_server: Any) -> None:
    url = f"{live_server.url}/pipeline/fill-mask"
    body = {"inputs": "The [MASK] is shining today."}
    first = requests.post(url, json=body, timeout=30)
    second = requests.post(url, json=body, timeout=30)
    assert second.headers["X-Compute-Type"] == "cache" and second.json() == first.json()
    fresh = requests.post(url, json=body, headers={"X-Use-Cache": "false"}, timeout=30)
    assert fresh.headers["X-Compute-Type"] == "cpu"
    in_body = requests.post(url, json={**body, "options": {"use_cache": False}}, timeout=30)
    assert in_body.headers["X-Compute-Type"] == "cpu"


def test_sampling_without_a_seed_is_never_cached(live_server: Any) -> None:
    url = f"{live_server.url}/pipeline/text-generation"
    body = {"inputs": "Once upon a time", "parameters": {"max_new_tokens": 3, "do_sample": True}}
    requests.post(url, json=body, timeout=60)
    assert requests.post(url, json=body, timeout=60).headers["X-Compute-Type"] == "cpu"


def test_text_generation_streams_tgi_events(live_server: Any) -> None:
    body = {"inputs": "The capital of France is", "parameters": {"max_new_tokens": 6}, "stream": True}
    with requests.post(f"{live_server.url}/pipeline/text-generation", json=body, stream=True, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith(b"data:")]
    assert all(set(e) >= {"token", "generated_text", "details"} for e in events)
    assert events[-1]["generated_text"] == "".join(e["token"]["text"] for e in events)
    assert all(e["generated_text"] is None for e in events[:-1])


def test_chat_streams_chunks_and_done(live_server: Any) -> None:
    body = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 6, "stream": True}
    with requests.post(f"{live_server.url}/v1/chat/completions", json=body, stream=True, timeout=60) as response:
        lines = [line for line in response.iter_lines() if line.startswith(b"data:")]
    assert lines[-1] == b"data: [DONE]"
    chunks = [json.loads(line[5:]) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_streaming_a_task_that_cannot_stream_is_400(live_server: Any) -> None:
    response = requests.post(f"{live_server.url}/pipeline/summarization", json={**BODIES[Task.SUMMARIZATION], "stream": True}, timeout=10)
    assert response.status_code == 400 and "stream" in response.json()["error"]


def test_many_concurrent_requests_are_answered(live_server: Any) -> None:
    async def main() -> list[Any]:
        async with AsyncInferenceClient(live_server.url, max_concurrency=16) as client:
            calls = []
            for i in range(40):
                if i % 2:
                    calls.append(client.feature_extraction(f"sentence number {i}"))
                else:
                    calls.append(client.fill_mask(f"Number {i} is a [MASK] number.", use_cache=False))
            return await asyncio.gather(*calls)

    results = asyncio.run(main())
    assert len(results) == 40
    assert all(len(r) == 384 for r in results[1::2])


# ---- servers of their own ------------------------------------------------------------------------
@pytest.fixture
def fresh_server(tmp_path: Path) -> Any:
    """A server with an empty cache: its first request finds the model unloaded."""
    servers: list[EmbeddedServer] = []

    def make(**settings: Any) -> EmbeddedServer:
        registry = Registry.default()
        server = EmbeddedServer(ServerSettings(registry=registry, cache_dir=tmp_path / "cache", **settings)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def test_503_while_loading_then_200_with_wait_for_model(fresh_server: Any) -> None:
    server = fresh_server()
    url = f"{server.url}/pipeline/text-classification"
    loading = requests.post(url, json={"inputs": "I like you"}, timeout=10)
    assert loading.status_code == 503
    body = loading.json()
    assert "currently loading" in body["error"] and body["estimated_time"] > 0
    waited = requests.post(url, json={"inputs": "I like you"}, headers={"X-Wait-For-Model": "true"}, timeout=120)
    assert waited.status_code == 200 and waited.json()[0]["label"] in ("NEGATIVE", "POSITIVE")  # generic route: flat
    assert requests.post(url, json={"inputs": "again"}, timeout=30).status_code == 200


def test_wait_for_model_in_the_body_options(fresh_server: Any) -> None:
    server = fresh_server()
    body = {"inputs": "Paris is the [MASK].", "options": {"wait_for_model": True}}
    assert requests.post(f"{server.url}/pipeline/fill-mask", json=body, timeout=120).status_code == 200


def test_tokens_401_without_and_403_with_a_wrong_one(fresh_server: Any) -> None:
    server = fresh_server(tokens=["hf_good_token_1", "hf_good_token_2"])
    url = f"{server.url}/pipeline/fill-mask"
    body = {"inputs": "a [MASK]", "options": {"wait_for_model": True}}
    assert requests.post(url, json=body, timeout=10).status_code == 401
    wrong = requests.post(url, json=body, headers={"Authorization": "Bearer hf_wrong"}, timeout=10)
    assert wrong.status_code == 403 and "hf_wrong" not in wrong.text
    right = requests.post(url, json=body, headers={"Authorization": "Bearer hf_good_token_2"}, timeout=120)
    assert right.status_code == 200


def test_rate_limit_gives_429_with_retry_after_per_token(fresh_server: Any) -> None:
    server = fresh_server(tokens=["hf_a_token", "hf_b_token"], rate_limit=3)
    url = f"{server.url}/pipeline/does-not-matter"
    statuses = [requests.post(url, json={}, headers={"Authorization": "Bearer hf_a_token"}, timeout=10) for _ in range(4)]
    assert [r.status_code for r in statuses[:3]] == [400, 400, 400]
    limited = statuses[3]
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "3 requests per minute" in limited.json()["error"]
    other = requests.post(url, json={}, headers={"Authorization": "Bearer hf_b_token"}, timeout=10)
    assert other.status_code == 400  # another token has its own window


def test_a_model_whose_weights_are_missing_fails_clearly(tmp_path: Path) -> None:
    registry = Registry.from_toml(
        '[models."me/broken"]\nsource = "path:does-not-exist"\ntasks = ["fill-mask"]\n', origin="test", root=tmp_path
    )
    with EmbeddedServer(ServerSettings(registry=registry, cache_dir=tmp_path / "cache")) as server:
        response = requests.post(f"{server.url}/models/me/broken", json={"inputs": "a [MASK]"}, headers={"X-Wait-For-Model": "true"}, timeout=30)
    assert response.status_code == 500 and "does-not-exist" in response.json()["error"]


def test_offline_hub_source_fails_fast_not_hangs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    registry = Registry.from_toml('[models."org/not-downloaded"]\nsource = "hub:org/not-downloaded"\ntasks = ["fill-mask"]\n', origin="test")
    with EmbeddedServer(ServerSettings(registry=registry, cache_dir=tmp_path / "cache")) as server:
        response = requests.post(f"{server.url}/models/org/not-downloaded", json={"inputs": "a [MASK]"}, headers={"X-Wait-For-Model": "true"}, timeout=30)
    assert response.status_code == 500 and "HF_HUB_OFFLINE" in response.json()["error"]


def test_every_bad_body_table_covers_every_task() -> None:
    assert set(BAD_BODIES) == set(PIPELINE_TASKS)  # reranking: test_serving_routes.py
