"""The URL, body and headers of every task in every layout, as a table (no network)."""

from __future__ import annotations

import base64
import json
from typing import Any, Callable

import pytest

from hfbridge import InvalidInputError, Task
from hfbridge.tasks import TASKS

from .capture import CaptureClient

PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)
FLAC = b"fLaC" + bytes(24)
B = "http://127.0.0.1:8000"
M = "org/model"

# task -> (call, spec path, body in the spec layout or RAW, hosted path, hosted body or RAW)
RAW = object()
CASES: dict[Task, tuple[Callable[[CaptureClient], Any], str, Any, str, Any]] = {
    Task.TEXT_GENERATION: (
        lambda c: c.text_generation("Hi", model=M, max_new_tokens=5, stop=["\n"]),
        f"/models/{M}/text-generation", {"inputs": "Hi", "parameters": {"max_new_tokens": 5, "stop": ["\n"]}},
        f"/models/{M}", {"inputs": "Hi", "parameters": {"max_new_tokens": 5, "stop": ["\n"]}},
    ),
    Task.TEXT_CLASSIFICATION: (
        lambda c: c.text_classification("I like you", model=M, top_k=2),
        f"/models/{M}/text-classification", {"inputs": "I like you", "parameters": {"top_k": 2}},
        f"/models/{M}", {"inputs": "I like you", "parameters": {"top_k": 2}},
    ),
    Task.TOKEN_CLASSIFICATION: (
        lambda c: c.token_classification("My name is Sarah", model=M, aggregation_strategy="simple"),
        f"/models/{M}", {"inputs": "My name is Sarah", "parameters": {"aggregation_strategy": "simple"}},
        f"/models/{M}", {"inputs": "My name is Sarah", "parameters": {"aggregation_strategy": "simple"}},
    ),
    Task.QUESTION_ANSWERING: (
        lambda c: c.question_answering("Who?", "Me.", model=M),
        f"/models/{M}/question-answering", {"inputs": {"question": "Who?", "context": "Me."}},
        f"/models/{M}", {"inputs": {"question": "Who?", "context": "Me."}},
    ),
    Task.SUMMARIZATION: (
        lambda c: c.summarization("Long text", model=M, max_length=20),
        f"/models/{M}/summarization", {"inputs": "Long text", "parameters": {"max_length": 20}},
        f"/models/{M}", {"inputs": "Long text", "parameters": {"max_length": 20}},
    ),
    Task.TRANSLATION: (
        lambda c: c.translation("Hello", model=M, src_lang="en_XX", tgt_lang="fr_XX"),
        f"/models/{M}/translation", {"inputs": "Hello", "parameters": {"src_lang": "en_XX", "tgt_lang": "fr_XX"}},
        f"/models/{M}", {"inputs": "Hello", "parameters": {"src_lang": "en_XX", "tgt_lang": "fr_XX"}},
    ),
    Task.FILL_MASK: (
        lambda c: c.fill_mask("Paris is the [MASK].", model=M),
        f"/models/{M}/fill-mask", {"inputs": "Paris is the [MASK]."},
        f"/models/{M}", {"inputs": "Paris is the [MASK]."},
    ),
    Task.TEXT2TEXT_GENERATION: (
        lambda c: c.text2text_generation("Fix: teh", model=M),
        f"/models/{M}", {"inputs": "Fix: teh"},
        f"/models/{M}", {"inputs": "Fix: teh"},
    ),
    Task.FEATURE_EXTRACTION: (
        lambda c: c.feature_extraction(["a", "b"], model=M),
        f"/models/{M}/feature-extraction", {"inputs": ["a", "b"]},
        f"/models/{M}/pipeline/feature-extraction", {"inputs": ["a", "b"]},
    ),
    Task.SENTENCE_SIMILARITY: (
        lambda c: c.sentence_similarity("a", ["b", "c"], model=M),
        f"/models/{M}/sentence-similarity", {"inputs": {"source_sentence": "a", "sentences": ["b", "c"]}},
        f"/models/{M}/pipeline/sentence-similarity", {"inputs": {"source_sentence": "a", "sentences": ["b", "c"]}},
    ),
    Task.ZERO_SHOT_CLASSIFICATION: (
        lambda c: c.zero_shot_classification("text", ["x", "y"], multi_label=True, model=M),
        f"/models/{M}/zero-shot-classification",
        {"inputs": "text", "parameters": {"candidate_labels": ["x", "y"], "multi_label": True}},
        f"/models/{M}", {"inputs": "text", "parameters": {"candidate_labels": ["x", "y"], "multi_label": True}},
    ),
    Task.TABLE_QUESTION_ANSWERING: (
        lambda c: c.table_question_answering("How many?", {"Repo": ["a", "b"], "Stars": ["1", "2"]}, model=M),
        f"/models/{M}", {"inputs": {"query": "How many?", "table": {"Repo": ["a", "b"], "Stars": ["1", "2"]}}},
        f"/models/{M}", {"inputs": {"query": "How many?", "table": {"Repo": ["a", "b"], "Stars": ["1", "2"]}}},
    ),
    Task.CONVERSATIONAL: (
        lambda c: c.conversational([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], model=M, max_tokens=8),
        f"/models/{M}/v1/chat/completions",
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "model": M, "max_tokens": 8},
        f"/models/{M}/v1/chat/completions",
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "model": M, "max_tokens": 8},
    ),
    Task.IMAGE_CLASSIFICATION: (
        lambda c: c.image_classification(PNG, model=M),
        f"/models/{M}/image-classification", RAW, f"/models/{M}", RAW,
    ),
    Task.OBJECT_DETECTION: (
        lambda c: c.object_detection(PNG, model=M),
        f"/models/{M}/object-detection", RAW, f"/models/{M}", RAW,
    ),
    Task.IMAGE_SEGMENTATION: (
        lambda c: c.image_segmentation(PNG, model=M),
        f"/models/{M}", {"inputs": base64.b64encode(PNG).decode()}, f"/models/{M}", RAW,
    ),
    Task.IMAGE_TO_TEXT: (
        lambda c: c.image_to_text(PNG, model=M),
        f"/models/{M}", {"inputs": base64.b64encode(PNG).decode()}, f"/models/{M}", RAW,
    ),
    Task.TEXT_TO_IMAGE: (
        lambda c: c.text_to_image("A cat", model=M, width=64, height=64),
        f"/models/{M}/text-to-image", {"inputs": "A cat", "parameters": {"height": 64, "width": 64}},
        f"/models/{M}", {"inputs": "A cat", "parameters": {"height": 64, "width": 64}},
    ),
    Task.AUTOMATIC_SPEECH_RECOGNITION: (
        lambda c: c.automatic_speech_recognition(FLAC, model=M),
        f"/models/{M}/automatic-speech-recognition", RAW, f"/models/{M}", RAW,
    ),
    Task.AUDIO_CLASSIFICATION: (
        lambda c: c.audio_classification(FLAC, model=M),
        f"/models/{M}", {"inputs": base64.b64encode(FLAC).decode()}, f"/models/{M}", RAW,
    ),
    Task.TEXT_TO_SPEECH: (
        lambda c: c.text_to_speech("Hello", model=M),
        f"/models/{M}", {"inputs": "Hello"}, f"/models/{M}", {"inputs": "Hello"},
    ),
}


def test_every_task_has_a_case() -> None:
    assert set(CASES) == set(TASKS) and len(CASES) == 21


def _check(request: Any, url: str, body: Any, raw_input: bytes | None) -> None:
    assert request.method == "POST"
    assert request.url == url
    if body is RAW:
        assert request.content == raw_input
        assert request.headers["Content-Type"] == ("image/png" if raw_input == PNG else "audio/flac")
    else:
        assert request.headers["Content-Type"] == "application/json"
        assert json.loads(request.content) == body


def _raw_input(task: Task) -> bytes | None:
    return FLAC if TASKS[task].input_kind.value == "audio" else PNG


@pytest.mark.parametrize("task", list(CASES), ids=lambda t: t.value)
def test_spec_layout(task: Task) -> None:
    call, path, body, _, _ = CASES[task]
    request = call(CaptureClient(base_url=B, layout="spec", token=False))
    _check(request, B + path, body, _raw_input(task))


@pytest.mark.parametrize("task", list(CASES), ids=lambda t: t.value)
def test_hosted_layout(task: Task) -> None:
    call, _, _, path, body = CASES[task]
    base = "https://router.huggingface.co/hf-inference"
    request = call(CaptureClient(base_url=base, token="hf_abc"))
    _check(request, base + path, body, _raw_input(task))
    assert request.headers["Authorization"] == "Bearer hf_abc"


@pytest.mark.parametrize("task", list(CASES), ids=lambda t: t.value)
def test_endpoint_layout_posts_to_the_base_url(task: Task) -> None:
    call, _, spec_body, _, hosted_body = CASES[task]
    base = "https://xyz.endpoints.huggingface.cloud"
    request = call(CaptureClient(base_url=base, layout="endpoint", token=False))
    if task is Task.CONVERSATIONAL:
        assert request.url == base + "/v1/chat/completions"
        assert json.loads(request.content) == hosted_body
        return
    _check(request, base, hosted_body, _raw_input(task))


@pytest.mark.parametrize("task", list(CASES), ids=lambda t: t.value)
def test_spec_layout_without_model_uses_the_pipeline_route(task: Task) -> None:
    call, _, _, _, _ = CASES[task]
    # The same call with model=None: the lambda runs against a client that drops the model.
    request = call(_DropModel(CaptureClient(base_url=B, layout="spec", token=False)))
    if task is Task.CONVERSATIONAL:  # chat goes to the server's OpenAI-compatible root route
        assert request.url == f"{B}/v1/chat/completions"
        assert "model" not in json.loads(request.content)
        return
    assert request.url == f"{B}/pipeline/{task.value}"
    body = json.loads(request.content)
    assert "inputs" in body  # the generic InferenceRequest always carries inputs
    if TASKS[task].input_kind.is_binary:
        assert base64.b64decode(body["inputs"]) == _raw_input(task)


class _DropModel:
    def __init__(self, client: CaptureClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs.pop("model", None)
            return method(*args, **kwargs)

        return call


@pytest.mark.parametrize("task", list(CASES), ids=lambda t: t.value)
def test_hosted_layout_needs_a_model(task: Task) -> None:
    call = CASES[task][0]
    client = _DropModel(CaptureClient(base_url="https://router.huggingface.co/hf-inference", token=False))
    with pytest.raises(InvalidInputError) as info:
        call(client)
    assert info.value.field == "model" and task.value in str(info.value)


def test_legacy_host_uses_the_old_pipeline_route() -> None:
    client = CaptureClient(base_url="https://api-inference.huggingface.co", token=False)
    request = client.fill_mask("Hi [MASK]", model="bert-base-uncased")
    assert request.url == "https://api-inference.huggingface.co/pipeline/fill-mask/bert-base-uncased"


def test_options_travel_in_the_body_for_spec_and_as_headers_when_hosted() -> None:
    spec = CaptureClient(base_url=B, token=False).text_classification("x", model=M, use_cache=False, wait_for_model=True)
    assert json.loads(spec.content)["options"] == {"use_cache": False, "wait_for_model": True}
    assert "X-Use-Cache" not in spec.headers
    hosted = CaptureClient(base_url="https://router.huggingface.co/hf-inference", token=False).text_classification(
        "x", model=M, use_cache=False, wait_for_model=True
    )
    assert "options" not in json.loads(hosted.content)
    assert hosted.headers["X-Use-Cache"] == "false" and hosted.headers["X-Wait-For-Model"] == "true"


def test_raw_binary_options_go_in_headers_even_in_the_spec_layout() -> None:
    request = CaptureClient(base_url=B, token=False).object_detection(PNG, model=M, wait_for_model=True)
    assert request.content == PNG and request.headers["X-Wait-For-Model"] == "true"


def test_binary_with_parameters_is_sent_as_base64_json() -> None:
    request = CaptureClient(base_url=B, token=False).image_classification(PNG, model=M, top_k=3)
    assert json.loads(request.content) == {"inputs": base64.b64encode(PNG).decode(), "parameters": {"top_k": 3}}


def test_image_url_is_passed_through_only_where_the_spec_allows_json() -> None:
    client = CaptureClient(base_url=B, token=False)
    request = client.image_classification("https://example.com/cat.png", model=M)
    assert json.loads(request.content) == {"inputs": "https://example.com/cat.png"}
    from hfbridge.protocol import needs_download

    detect_call = _call_of(client, lambda c: c.object_detection("https://example.com/cat.png", model=M))
    assert needs_download(client.config, detect_call) == "https://example.com/cat.png"


def _call_of(client: CaptureClient, fn: Callable[[CaptureClient], Any]) -> Any:
    original = client._execute
    captured: list[Any] = []
    client._execute = captured.append  # type: ignore[method-assign]
    try:
        fn(client)
    finally:
        client._execute = original  # type: ignore[method-assign]
    return captured[0]


def test_streaming_asks_for_event_stream_and_sets_stream_in_the_body() -> None:
    request = CaptureClient(base_url=B, token=False).text_generation("Hi", model=M, stream=True)
    assert request.stream and request.headers["Accept"] == "text/event-stream"
    assert json.loads(request.content)["stream"] is True


def test_headers_identify_the_client_and_add_extra_headers() -> None:
    request = CaptureClient(base_url=B, token="tok", headers={"X-Trace": "1"}).text_classification("x", model=M)
    assert request.headers["User-Agent"].startswith("hfbridge/")
    assert request.headers["X-Trace"] == "1"
    assert request.headers["Authorization"] == "Bearer tok"
    assert "tok" not in repr(request)


def test_run_and_run_pipeline_send_the_generic_body() -> None:
    client = CaptureClient(base_url=B, token=False)
    request = client.run(M, "hello", {"top_k": 1}, {"use_cache": False})
    assert request.url == f"{B}/models/{M}"
    assert json.loads(request.content) == {"inputs": "hello", "parameters": {"top_k": 1}, "options": {"use_cache": False}}
    request = client.run_pipeline("fill-mask", "a [MASK]")
    assert request.url == f"{B}/pipeline/fill-mask"
    hosted = CaptureClient(base_url="https://router.huggingface.co/hf-inference", token=False)
    forced = hosted.run("sentence-transformers/x", "hello", task="feature-extraction")
    assert forced.url.endswith("/models/sentence-transformers/x/pipeline/feature-extraction")
