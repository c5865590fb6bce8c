"""huggingface_hub's own ``InferenceClient`` pointed at ``hfbridge serve``: every task it has a
method for parses, because the hosted routes answer the hosted API's current shapes.

The client is given each model's URL (``{server}/models/{id}``), as it is given an Inference
Endpoint's, so it never asks the Hub anything; huggingface_hub refuses every URL while
``HF_HUB_OFFLINE`` is set, so the flag is lifted for its calls only (the server's models are
loaded already, from local files)."""

from __future__ import annotations

import math
from typing import Any, Callable

import pytest

from hfbridge import Task

from .conftest import ASSETS
from .test_routes import default_model

hub = pytest.importorskip("huggingface_hub")

IMAGE = str(ASSETS / "image.png")
AUDIO = str(ASSETS / "sample1.flac")
IRIS = {"sepal_length": ["5.1", "6.7"], "sepal_width": ["3.5", "3.0"], "petal_length": ["1.4", "5.2"], "petal_width": ["0.2", "2.3"]}
DIABETES = {name: ["0.03", "-0.05"] for name in ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")}


def _labels(result: Any) -> list[str]:
    return [item.label for item in result]


#: task -> (call with the client and the model's URL, check of the parsed answer)
CASES: dict[Task, tuple[Callable[[Any, str], Any], Callable[[Any], bool]]] = {
    Task.TEXT_GENERATION: (
        lambda c, m: c.text_generation("The capital of France is", model=m, max_new_tokens=5),
        lambda r: isinstance(r, str) and r,
    ),
    Task.CONVERSATIONAL: (
        lambda c, m: c.chat_completion([{"role": "user", "content": "What is the capital of France?"}], model=m, max_tokens=12),
        lambda r: "Paris" in r.choices[0].message.content,  # real SmolLM2
    ),
    Task.TEXT_CLASSIFICATION: (
        lambda c, m: c.text_classification("I like you", model=m),
        lambda r: isinstance(r, list) and set(_labels(r)) == {"POSITIVE", "NEGATIVE"},
    ),
    Task.TOKEN_CLASSIFICATION: (
        lambda c, m: c.token_classification("My name is Sarah Jessica Parker", model=m),
        lambda r: isinstance(r, list) and all(0 <= item.start < item.end for item in r),
    ),
    Task.QUESTION_ANSWERING: (
        lambda c, m: c.question_answering("Where do I live?", "My name is Clara and I live in Berkeley.", model=m),
        lambda r: isinstance(r.answer, str) and r.score is not None,
    ),
    Task.SUMMARIZATION: (
        lambda c, m: c.summarization("The sky is blue, the tree is green and the grass is wet.", model=m),
        lambda r: isinstance(r.summary_text, str),
    ),
    Task.TRANSLATION: (lambda c, m: c.translation("Hello world", model=m), lambda r: isinstance(r.translation_text, str)),
    Task.FILL_MASK: (lambda c, m: c.fill_mask("Paris is the [MASK] of France.", model=m), lambda r: len(r) == 5 and "[MASK]" not in r[0].sequence),
    Task.TEXT2TEXT_GENERATION: (
        # huggingface_hub has no text2text method: its text_generation posts the same body
        lambda c, m: c.text_generation("fix the grammar: he go home", model=m, max_new_tokens=5),
        lambda r: isinstance(r, str),
    ),
    Task.FEATURE_EXTRACTION: (lambda c, m: c.feature_extraction("Hi, who are you?", model=m), lambda r: r.shape == (1, 384)),
    Task.SENTENCE_SIMILARITY: (
        lambda c, m: c.sentence_similarity("Machine learning is easy.", ["Deep learning is easy.", "Rockets are hard."],
                                           model=f"{m}/pipeline/sentence-similarity"),
        lambda r: r[0] > r[1],  # real MiniLM
    ),
    Task.ZERO_SHOT_CLASSIFICATION: (
        lambda c, m: c.zero_shot_classification("The match ended in a draw.", ["sport", "politics", "cooking"], model=m),
        lambda r: sorted(_labels(r)) == ["cooking", "politics", "sport"] and r[0].score >= r[-1].score,
    ),
    Task.TABLE_QUESTION_ANSWERING: (
        lambda c, m: c.table_question_answering({"Repo": ["Transformers", "Datasets"], "Stars": ["36542", "4512"]}, "How many stars?", model=m),
        lambda r: isinstance(r.answer, str) and r.aggregator == "NONE",
    ),
    Task.IMAGE_CLASSIFICATION: (lambda c, m: c.image_classification(IMAGE, model=m), lambda r: len(r) == 5 and r[0].score >= r[1].score),
    Task.OBJECT_DETECTION: (lambda c, m: c.object_detection(IMAGE, model=m, threshold=0.0), lambda r: all(d.box.xmax >= d.box.xmin for d in r)),
    Task.IMAGE_SEGMENTATION: (lambda c, m: c.image_segmentation(IMAGE, model=m), lambda r: r and r[0].mask.size == (512, 512)),
    Task.IMAGE_TO_TEXT: (lambda c, m: c.image_to_text(IMAGE, model=m), lambda r: isinstance(r.generated_text, str)),
    Task.TEXT_TO_IMAGE: (lambda c, m: c.text_to_image("An astronaut riding a horse", model=m, num_inference_steps=2), lambda r: r.size == (64, 64)),
    Task.AUTOMATIC_SPEECH_RECOGNITION: (lambda c, m: c.automatic_speech_recognition(AUDIO, model=m), lambda r: "universe" in r.text.lower()),
    Task.AUDIO_CLASSIFICATION: (lambda c, m: c.audio_classification(AUDIO, model=m), lambda r: len(r) == 5),
    Task.TEXT_TO_SPEECH: (lambda c, m: c.text_to_speech("Hello world", model=m), lambda r: bytes(r[:4]) == b"fLaC"),
    # the hosted API's tasks beyond the spec
    Task.DOCUMENT_QUESTION_ANSWERING: (
        lambda c, m: c.document_question_answering(IMAGE, "What is the total?", model=m),
        lambda r: len(r) == 1 and isinstance(r[0].answer, str),
    ),
    Task.VISUAL_QUESTION_ANSWERING: (
        lambda c, m: c.visual_question_answering(IMAGE, "Who is in the picture?", model=m, top_k=3),
        lambda r: len(r) == 3 and r[0].score >= r[1].score >= r[2].score,
    ),
    Task.ZERO_SHOT_IMAGE_CLASSIFICATION: (
        lambda c, m: c.zero_shot_image_classification(IMAGE, ["woman", "cat", "tree"], model=m),
        lambda r: sorted(_labels(r)) == ["cat", "tree", "woman"] and math.isclose(sum(x.score for x in r), 1.0, rel_tol=1e-4),
    ),
    Task.AUDIO_TO_AUDIO: (
        lambda c, m: c.audio_to_audio(AUDIO, model=m),
        lambda r: len(r) == 1 and r[0].blob[:4] == b"fLaC" and r[0].content_type == "audio/flac",
    ),
    Task.IMAGE_TO_IMAGE: (lambda c, m: c.image_to_image(IMAGE, prompt="a tiger", model=m), lambda r: r.size == (64, 64)),
    Task.TABULAR_CLASSIFICATION: (
        lambda c, m: c.tabular_classification(IRIS, model=m),
        lambda r: r == ["setosa", "virginica"],  # real: trained on the iris flowers
    ),
}


@pytest.fixture
def hub_client(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", False)
    return hub.InferenceClient(timeout=120)


def test_every_task_with_a_method_is_covered() -> None:
    """28 tasks; tabular-regression is the one huggingface_hub refuses itself (below)."""
    assert set(CASES) | {Task.TABULAR_REGRESSION, Task.TEXT_RANKING} == set(Task)  # the hub client has no rerank


@pytest.mark.parametrize("task", sorted(CASES, key=lambda t: t.value), ids=lambda t: t.value)
def test_hub_client_parses_every_answer(task: Task, hub_client: Any, live_server: Any) -> None:
    call, check = CASES[task]
    result = call(hub_client, f"{live_server.url}/models/{default_model(task)}")
    assert check(result), result


def test_hub_client_refuses_tabular_regression_itself(hub_client: Any, live_server: Any) -> None:
    """huggingface_hub 2.x maps no hf-inference helper to tabular-regression, so it raises before
    sending; the route itself answers the hosted shape (a list of numbers) all the same."""
    import requests

    with pytest.raises(ValueError, match="not supported"):
        hub_client.tabular_regression(DIABETES, model=f"{live_server.url}/models/{default_model(Task.TABULAR_REGRESSION)}")
    # what huggingface_hub sends for tabular-classification: the table at the top level
    answer = requests.post(f"{live_server.url}/models/{default_model(Task.TABULAR_REGRESSION)}",
                           json={"table": DIABETES, "parameters": {}}, timeout=60)
    assert answer.status_code == 200 and len(answer.json()) == 2 and all(isinstance(x, float) for x in answer.json())
