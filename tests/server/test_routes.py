"""Every route of the spec, answered by the built-in registry's models, checked against the
spec's response schema; the hosted layout's routes too. Plain ``requests`` on the wire, so the
server is judged independently of hfbridge's own client."""

from __future__ import annotations

import base64
import io
from typing import Any

import jsonschema
import pytest
import requests
from pydantic import TypeAdapter

from hfbridge import Task
from hfbridge import schemas as s
from hfbridge.server.registry import Registry
from hfbridge.tasks import PIPELINE_TASKS, TASKS

from .conftest import ASSETS
from .spec_schema import response_schema, task_route_paths

PNG = (ASSETS / "image.png").read_bytes()
FLAC = (ASSETS / "sample1.flac").read_bytes()
B64 = {"image": base64.b64encode(PNG).decode(), "audio": base64.b64encode(FLAC).decode()}

#: a valid JSON body per task (binary tasks: the base64 JSON form)
BODIES: dict[Task, dict[str, Any]] = {
    Task.TEXT_GENERATION: {"inputs": "The capital of France is", "parameters": {"max_new_tokens": 5}},
    Task.TEXT_CLASSIFICATION: {"inputs": "I like you"},
    Task.TOKEN_CLASSIFICATION: {"inputs": "My name is Sarah Jessica Parker"},
    Task.QUESTION_ANSWERING: {"inputs": {"question": "What's my name?", "context": "My name is Clara and I live in Berkeley."}},
    Task.SUMMARIZATION: {"inputs": "The sky is blue, the tree is green and the grass is wet.", "parameters": {"max_length": 12}},
    Task.TRANSLATION: {"inputs": "Hello world"},
    Task.FILL_MASK: {"inputs": "Paris is the [MASK] of France."},
    Task.TEXT2TEXT_GENERATION: {"inputs": "fix the grammar: he go home", "parameters": {"max_new_tokens": 8}},
    Task.FEATURE_EXTRACTION: {"inputs": ["Embeddings map text to vectors.", "A second sentence."]},
    Task.SENTENCE_SIMILARITY: {"inputs": {"source_sentence": "Machine learning is easy.", "sentences": ["Deep learning is easy.", "Rockets are hard."]}},
    Task.ZERO_SHOT_CLASSIFICATION: {"inputs": "The match ended in a draw.", "parameters": {"candidate_labels": ["sport", "politics"]}},
    Task.TABLE_QUESTION_ANSWERING: {"inputs": {"query": "How many stars?", "table": {"Repo": ["Transformers", "Datasets"], "Stars": ["36542", "4512"]}}},
    Task.CONVERSATIONAL: {"inputs": "What is deep learning?", "parameters": {"max_tokens": 8}},
    Task.IMAGE_CLASSIFICATION: {"inputs": B64["image"]},
    Task.OBJECT_DETECTION: {"inputs": B64["image"], "parameters": {"threshold": 0.0}},
    Task.IMAGE_SEGMENTATION: {"inputs": B64["image"]},
    Task.IMAGE_TO_TEXT: {"inputs": B64["image"], "parameters": {"max_new_tokens": 5}},
    Task.TEXT_TO_IMAGE: {"inputs": "An astronaut riding a horse", "parameters": {"num_inference_steps": 2, "seed": 1}},
    Task.AUTOMATIC_SPEECH_RECOGNITION: {"inputs": B64["audio"]},
    Task.AUDIO_CLASSIFICATION: {"inputs": B64["audio"]},
    Task.TEXT_TO_SPEECH: {"inputs": "Hello world"},
    Task.DOCUMENT_QUESTION_ANSWERING: {"inputs": {"image": B64["image"], "question": "What is the total?"}},
    Task.VISUAL_QUESTION_ANSWERING: {"inputs": {"image": B64["image"], "question": "Who is in the picture?"}, "parameters": {"top_k": 3}},
    Task.ZERO_SHOT_IMAGE_CLASSIFICATION: {"inputs": B64["image"], "parameters": {"candidate_labels": ["woman", "cat", "tree"]}},
    Task.AUDIO_TO_AUDIO: {"inputs": B64["audio"]},
    Task.IMAGE_TO_IMAGE: {"inputs": B64["image"], "parameters": {"prompt": "a tiger", "target_size": {"width": 64, "height": 64}}},
    Task.TABULAR_CLASSIFICATION: {"inputs": {"data": {"sepal_length": ["5.1", "6.7"], "sepal_width": ["3.5", "3.0"],
                                                      "petal_length": ["1.4", "5.2"], "petal_width": ["0.2", "2.3"]}}},
    Task.TABULAR_REGRESSION: {"inputs": {"data": {name: ["0.03", "-0.05"] for name in
                                                  ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")}}},
}

#: the typed shape every answer must have (the spec's where it defines one)
SHAPES: dict[Task, Any] = {
    Task.TEXT_GENERATION: list[s.TextGenerationResult],
    Task.TEXT_CLASSIFICATION: list[list[s.ClassificationResult]],
    Task.TOKEN_CLASSIFICATION: list[s.TokenClassificationResult],
    Task.QUESTION_ANSWERING: s.QuestionAnsweringResult,
    Task.SUMMARIZATION: list[s.SummarizationResult],
    Task.TRANSLATION: list[s.TranslationResult],
    Task.FILL_MASK: list[s.FillMaskResult],
    Task.TEXT2TEXT_GENERATION: list[s.GeneratedText],
    Task.FEATURE_EXTRACTION: list[list[float]],
    Task.SENTENCE_SIMILARITY: list[float],
    Task.ZERO_SHOT_CLASSIFICATION: s.ZeroShotClassificationResult,
    Task.TABLE_QUESTION_ANSWERING: s.TableQuestionAnsweringResult,
    Task.CONVERSATIONAL: s.ChatCompletion,
    Task.IMAGE_CLASSIFICATION: list[s.ClassificationResult],
    Task.OBJECT_DETECTION: list[s.ObjectDetectionResult],
    Task.IMAGE_SEGMENTATION: list[s.ImageSegmentationResult],
    Task.IMAGE_TO_TEXT: list[s.GeneratedText],
    Task.AUTOMATIC_SPEECH_RECOGNITION: s.SpeechRecognitionResult,
    Task.AUDIO_CLASSIFICATION: list[s.ClassificationResult],
    Task.DOCUMENT_QUESTION_ANSWERING: list[s.DocumentQuestionAnsweringResult],
    Task.VISUAL_QUESTION_ANSWERING: list[s.VisualQuestionAnsweringResult],
    Task.ZERO_SHOT_IMAGE_CLASSIFICATION: list[s.ClassificationResult],
    Task.AUDIO_TO_AUDIO: list[s.AudioToAudioResult],
    Task.TABULAR_CLASSIFICATION: list[str],
    Task.TABULAR_REGRESSION: list[float],
}

REGISTRY = Registry.default()


def default_model(task: Task) -> str:
    entry = REGISTRY.default_for(task)
    assert entry is not None, task
    return entry.model_id


#: /pipeline/{task}: the spec's generic schema has no list of lists
GENERIC_SHAPES = {**SHAPES, Task.TEXT_CLASSIFICATION: list[s.ClassificationResult]}
#: the hosted API's routes (/models/{id}, /models/{id}/pipeline/{task}): its current shapes
HOSTED_SHAPES = {**SHAPES, Task.ZERO_SHOT_CLASSIFICATION: list[s.ClassificationResult]}


def check_answer(task: Task, response: requests.Response, *, generic: bool = False, hosted: bool = False) -> Any:
    assert response.status_code == 200, (task, response.status_code, response.text[:500])
    assert float(response.headers["X-Compute-Time"]) >= 0
    if task in (Task.TEXT_TO_IMAGE, Task.IMAGE_TO_IMAGE):
        assert response.headers["content-type"] == "image/png"
        from PIL import Image

        assert Image.open(io.BytesIO(response.content)).size[0] > 0
        return response.content
    if task is Task.TEXT_TO_SPEECH:
        assert response.headers["content-type"].startswith("audio/")
        assert response.content[:4] in (b"fLaC", b"RIFF")
        return response.content
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    TypeAdapter((HOSTED_SHAPES if hosted else GENERIC_SHAPES if generic else SHAPES)[task]).validate_python(data)
    return data


def spec_task(path: str) -> Task:
    return Task(path.rsplit("/", 1)[1])


@pytest.mark.parametrize("path", task_route_paths(), ids=lambda p: p.rsplit("/", 1)[1])
def test_spec_task_route_conforms_to_the_spec(path: str, live_server: Any) -> None:
    task = spec_task(path)
    url = live_server.url + path.replace("{model_id}", default_model(task))
    if TASKS[task].input_kind.is_binary:  # the spec's raw-bytes form
        data = PNG if TASKS[task].input_kind.value == "image" else FLAC
        mime = "image/png" if data is PNG else "audio/flac"
        response = requests.post(url, data=data, headers={"Content-Type": mime}, timeout=120)
    else:
        response = requests.post(url, json=BODIES[task], timeout=120)
    answer = check_answer(task, response)
    media_type, schema = response_schema(path)
    if media_type == "application/json":
        jsonschema.validate(answer, schema)
    else:
        assert response.headers["content-type"] == media_type


def test_image_classification_json_form_takes_base64(live_server: Any) -> None:
    url = f"{live_server.url}/models/{default_model(Task.IMAGE_CLASSIFICATION)}/image-classification"
    check_answer(Task.IMAGE_CLASSIFICATION, requests.post(url, json={"inputs": B64["image"]}, timeout=60))


@pytest.mark.parametrize("task", PIPELINE_TASKS, ids=lambda t: t.value)
def test_pipeline_route_answers_with_the_default_model(task: Task, live_server: Any) -> None:
    response = requests.post(f"{live_server.url}/pipeline/{task.value}", json=BODIES[task], timeout=120)
    check_answer(task, response, generic=True)


@pytest.mark.parametrize("model_id", sorted({e.model_id for e in REGISTRY}), ids=str)
def test_generic_model_route_runs_the_models_own_task(model_id: str, live_server: Any) -> None:
    entry = REGISTRY.get(model_id)
    assert entry is not None
    response = requests.post(f"{live_server.url}/models/{model_id}", json=BODIES[entry.task], timeout=120)
    check_answer(entry.task, response, hosted=True)


def test_hosted_pipeline_routes(live_server: Any) -> None:
    model = default_model(Task.FEATURE_EXTRACTION)
    new = requests.post(f"{live_server.url}/models/{model}/pipeline/feature-extraction", json={"inputs": "Hi, who are you?"}, timeout=60)
    old = requests.post(f"{live_server.url}/pipeline/feature-extraction/{model}", json={"inputs": "Hi, who are you?"}, timeout=60)
    assert check_answer(Task.FEATURE_EXTRACTION, new) == check_answer(Task.FEATURE_EXTRACTION, old)
    assert len(new.json()[0]) == 384
    similarity = requests.post(f"{live_server.url}/models/{model}/pipeline/sentence-similarity",
                               json=BODIES[Task.SENTENCE_SIMILARITY], timeout=60)
    scores = check_answer(Task.SENTENCE_SIMILARITY, similarity)
    assert scores[0] > scores[1]  # real MiniLM: "deep learning is easy" is closer than "rockets are hard"


def test_hosted_raw_binary_on_the_model_route(live_server: Any) -> None:
    model = default_model(Task.AUTOMATIC_SPEECH_RECOGNITION)
    response = requests.post(f"{live_server.url}/models/{model}", data=FLAC, headers={"Content-Type": "audio/flac"}, timeout=120)
    text = check_answer(Task.AUTOMATIC_SPEECH_RECOGNITION, response)["text"].lower()
    assert "universe" in text and "exist" in text  # real Whisper tiny.en


@pytest.mark.parametrize("route", ["model", "root"])
def test_chat_completions_routes(route: str, live_server: Any) -> None:
    model = default_model(Task.CONVERSATIONAL)
    body = {"model": model, "messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 12}
    url = f"{live_server.url}/models/{model}/v1/chat/completions" if route == "model" else f"{live_server.url}/v1/chat/completions"
    chat = check_answer(Task.CONVERSATIONAL, requests.post(url, json=body, timeout=120))
    assert chat["object"] == "chat.completion" and chat["choices"][0]["message"]["content"]
    assert chat["usage"]["completion_tokens"] <= 12


def test_index_lists_models_and_labels_tiny_ones(live_server: Any) -> None:
    info = requests.get(live_server.url + "/", timeout=10).json()
    states = {m["id"]: m for m in info["models"]}
    assert states["sentence-transformers/all-MiniLM-L6-v2"]["meaningless"] is False
    assert states["hfbridge/tiny-fill-mask"]["meaningless"] is True
    assert all(m["state"] == "ready" for m in info["models"])
