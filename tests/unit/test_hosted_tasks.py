"""Tables for the hosted API's tasks beyond the spec: the answers the client reads, the request
forms the server accepts (each with the field it names when wrong), the checks the client
makes before sending, and the server's per-route answer shapes and batches (all pure)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from hfbridge import InvalidInputError, ResponseFormatError, Task
from hfbridge import schemas as s
from hfbridge.shapes import NormalizeContext, normalize
from hfbridge.validation import first_problem

from .capture import CaptureClient

B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(8)).decode()
FLAC_B64 = base64.b64encode(b"fLaC" + bytes(8)).decode()


def _normalize(task: Task, body: Any, **extra: Any) -> Any:
    return normalize(NormalizeContext(task, "org/model", extra=extra), body)


# --------------------------------------------------------------------------------------------
# answers
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("task", "body", "expected"), [
    # the hosted API's recorded Donut answer: the answer alone
    (Task.DOCUMENT_QUESTION_ANSWERING, [{"answer": "$1,0000,000,00"}], [("$1,0000,000,00", None)]),
    # an extractive reader (LayoutLM) adds score and word span; one object is one answer
    (Task.DOCUMENT_QUESTION_ANSWERING, {"answer": "us-001", "score": 0.99, "start": 16, "end": 16}, [("us-001", 0.99)]),
    (Task.VISUAL_QUESTION_ANSWERING, [{"score": 0.93, "answer": "woman"}, {"score": 0.34, "answer": "girl"}], [("woman", 0.93), ("girl", 0.34)]),
    (Task.ZERO_SHOT_IMAGE_CLASSIFICATION, [{"score": 0.99, "label": "woman"}, {"score": 0.01, "label": "cat"}], [("woman", 0.99), ("cat", 0.01)]),
])
def test_answers_read_as_typed_lists(task: Task, body: Any, expected: list[tuple[str, Any]]) -> None:
    result = _normalize(task, body)
    assert [(getattr(r, "answer", None) or getattr(r, "label", None), r.score) for r in result] == expected


def test_audio_to_audio_blobs_decode_to_audio() -> None:
    result = _normalize(Task.AUDIO_TO_AUDIO, [{"label": "label_0", "blob": FLAC_B64, "content-type": "audio/flac"}])
    assert isinstance(result[0], s.AudioToAudioResult) and result[0].content_type == "audio/flac"
    audio = result[0].audio()
    assert bytes(audio[:4]) == b"fLaC" and audio.content_type == "audio/flac" and audio.extension == "flac"


@pytest.mark.parametrize(("task", "body", "expected"), [
    (Task.TABULAR_CLASSIFICATION, ["setosa", "virginica"], ["setosa", "virginica"]),
    (Task.TABULAR_CLASSIFICATION, [5, 5, 6], ["5", "5", "6"]),  # numeric classes read as labels
    (Task.TABULAR_REGRESSION, [110, 120.5], [110.0, 120.5]),
])
def test_tabular_answers_one_value_per_row(task: Task, body: Any, expected: list[Any]) -> None:
    assert _normalize(task, body, count=len(expected)) == expected


@pytest.mark.parametrize(("task", "body", "count", "says"), [
    (Task.TABULAR_CLASSIFICATION, ["a"], 2, "expected 2 predictions"),
    (Task.TABULAR_REGRESSION, ["high"], 1, "expected numbers"),
    (Task.TABULAR_REGRESSION, [True], 1, "expected numbers"),
    (Task.TABULAR_CLASSIFICATION, {"label": "a"}, 1, "one per row"),
    (Task.VISUAL_QUESTION_ANSWERING, [{"answer": "x"}], None, "score"),
    (Task.AUDIO_TO_AUDIO, [{"label": "label_0"}], None, "blob"),
])
def test_wrong_answers_are_format_errors(task: Task, body: Any, count: int | None, says: str) -> None:
    with pytest.raises(ResponseFormatError, match=says):
        _normalize(task, body, **({} if count is None else {"count": count}))


# --------------------------------------------------------------------------------------------
# request forms the server accepts
# --------------------------------------------------------------------------------------------
def test_visual_question_answering_takes_both_forms() -> None:
    documented = s.VisualQuestionAnsweringRequest.model_validate({"inputs": {"image": B64, "question": "Who?"}, "parameters": {"top_k": 2}})
    hub_form = s.VisualQuestionAnsweringRequest.model_validate({"inputs": B64, "question": "Who?", "image": B64, "parameters": {"top_k": 2}})
    assert documented == hub_form


def test_tabular_takes_inputs_data_or_a_top_level_table() -> None:
    table = {"a": ["1", 2.5], "b": [True, None]}
    documented = s.TabularRequest.model_validate({"inputs": {"data": table}})
    assert documented.inputs == s.TabularRequest.model_validate({"table": table, "parameters": {}}).inputs
    assert documented.inputs.data == table


@pytest.mark.parametrize(("model", "body", "field"), [
    (s.VisualQuestionAnsweringRequest, {"inputs": B64}, "question"),
    (s.VisualQuestionAnsweringRequest, {"inputs": {"image": "no base64!", "question": "q"}}, "inputs.image"),
    (s.VisualQuestionAnsweringRequest, {"inputs": {"image": "https://x/cat.png", "question": "q"}}, "inputs.image"),
    (s.DocumentQuestionAnsweringRequest, {"inputs": {"image": B64, "question": " "}}, "inputs.question"),
    (s.DocumentQuestionAnsweringRequest, {"inputs": {"image": B64, "question": "q"}, "parameters": {"top_k": 0}}, "parameters.top_k"),
    (s.TabularRequest, {"inputs": {"data": {"a": ["1"], "b": []}}}, "inputs.data"),
    (s.TabularRequest, {"inputs": {"data": {}}}, "inputs.data"),
    (s.TabularRequest, {"inputs": {"data": {"a": ["1"]}}, "table": {"a": ["1"]}}, "table"),
    (s.TabularRequest, {"inputs": {"data": {"a": ["1"]}}, "parameters": {"top_k": 1}}, "parameters"),
    (s.ZeroShotImageClassificationParameters, {"candidate_labels": ["a", "a"]}, "candidate_labels"),
    (s.ZeroShotImageClassificationParameters, {"candidate_labels": ["a", "b"], "hypothesis_template": "no slot"}, "hypothesis_template"),
    (s.ImageToImageParameters, {"target_size": {"width": 4, "height": 64}}, "target_size.width"),
    (s.RerankRequest, {"query": "q", "texts": []}, "texts"),
    (s.RerankRequest, {"query": "q", "texts": ["a"], "top_n": 0}, "top_n"),
    (s.OpenAIEmbeddingsRequest, {"input": [1, 2]}, "input"),
    (s.OpenAIEmbeddingsRequest, {"input": "x", "encoding_format": "int8"}, "encoding_format"),
])
def test_bad_requests_name_their_field(model: type, body: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    assert first_problem(info.value)[0] == field


@pytest.mark.parametrize("task", [Task.TEXT_CLASSIFICATION, Task.TOKEN_CLASSIFICATION, Task.FILL_MASK,
                                  Task.SUMMARIZATION, Task.TRANSLATION, Task.TEXT2TEXT_GENERATION], ids=str)
def test_batched_text_tasks_take_a_text_or_a_list(task: Task) -> None:
    from hfbridge.tasks import TASKS

    model = TASKS[task].request_model
    assert model.model_validate({"inputs": "one"}).inputs == "one"
    assert model.model_validate({"inputs": ["one", "two"]}).inputs == ["one", "two"]
    with pytest.raises(ValidationError):
        model.model_validate({"inputs": [1]})


# --------------------------------------------------------------------------------------------
# the client's checks before sending
# --------------------------------------------------------------------------------------------
PNG = b"\x89PNG\r\n\x1a\n" + bytes(8)


@pytest.mark.parametrize(("call", "field"), [
    (lambda c: c.visual_question_answering(PNG, "", model="m"), "question"),
    (lambda c: c.document_question_answering(b"", "q", model="m"), "image"),
    (lambda c: c.document_question_answering(PNG, "q", model="m", top_k=0), "parameters.top_k"),
    (lambda c: c.zero_shot_image_classification(PNG, ["only"], model="m"), "candidate_labels"),
    (lambda c: c.zero_shot_image_classification(PNG, "cat,dog", model="m"), "candidate_labels"),
    (lambda c: c.zero_shot_image_classification(PNG, ["a", "b"], model="m", hypothesis_template="x"), "parameters.hypothesis_template"),
    (lambda c: c.image_to_image(PNG, "", model="m"), "prompt"),
    (lambda c: c.image_to_image(PNG, model="m", strength=1.5), "parameters.strength"),
    (lambda c: c.audio_to_audio("/no/such/file.flac", model="m"), "audio"),
    (lambda c: c.tabular_classification({"a": ["1"], "b": ["1", "2"]}, model="m"), "table"),
    (lambda c: c.tabular_regression({}, model="m"), "table"),
])
def test_bad_input_is_refused_before_sending(call: Any, field: str) -> None:
    client = CaptureClient(base_url="https://router.huggingface.co/hf-inference", token=False)
    with pytest.raises(InvalidInputError) as info:
        call(client)
    assert info.value.field == field


def test_an_image_url_inside_a_json_body_is_downloaded_by_the_client() -> None:
    from hfbridge.protocol import build_request, needs_download

    client = CaptureClient(base_url="https://router.huggingface.co/hf-inference", token=False)
    captured: list[Any] = []
    client._execute = captured.append  # type: ignore[method-assign]
    client.visual_question_answering("https://example.com/cat.png", "Who?", model="m")
    call = captured[0]
    assert needs_download(client.config, call) == "https://example.com/cat.png"
    request = build_request(client.config, call.with_binary(PNG))
    assert request.content == b'{"inputs":{"image":"%s","question":"Who?"}}' % base64.b64encode(PNG)


# --------------------------------------------------------------------------------------------
# the server's route shapes and batches (pure)
# --------------------------------------------------------------------------------------------
def test_route_shapes() -> None:
    from hfbridge.server.answers import RouteKind, route_shape

    zero_shot = {"sequence": "t", "labels": ["a", "b"], "scores": [0.7, 0.3]}
    assert route_shape(Task.ZERO_SHOT_CLASSIFICATION, zero_shot, "t", RouteKind.HOSTED) == [{"label": "a", "score": 0.7}, {"label": "b", "score": 0.3}]
    for route in (RouteKind.SPEC_TASK, RouteKind.SPEC_GENERIC):
        assert route_shape(Task.ZERO_SHOT_CLASSIFICATION, zero_shot, "t", route) == zero_shot
    nested = [[{"label": "POSITIVE", "score": 0.9}]]
    assert route_shape(Task.TEXT_CLASSIFICATION, nested, "t", RouteKind.SPEC_GENERIC) == nested[0]
    assert route_shape(Task.TEXT_CLASSIFICATION, nested, "t", RouteKind.HOSTED) == nested  # as the hosted API answers
    assert route_shape(Task.TEXT_CLASSIFICATION, nested, ["t"], RouteKind.SPEC_GENERIC) == nested  # a batch of one


class _Echo:
    """A backend answering each text in its task's one-text shape."""

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        if "bad" in inputs:
            from hfbridge.server.backends import BackendInputError

            raise BackendInputError("inputs", "is bad")
        if task is Task.TEXT_CLASSIFICATION:
            return [[{"label": inputs, "score": 1.0}]]
        if task is Task.FILL_MASK:
            return [{"sequence": inputs, "score": 1.0, "token": 1, "token_str": "x"}]
        return [{"summary_text": inputs}]


def test_batches_answer_per_text_in_order_and_name_the_bad_one() -> None:
    from hfbridge.server.answers import predict
    from hfbridge.server.backends import BackendInputError

    backend = _Echo()
    assert predict(backend, Task.TEXT_CLASSIFICATION, ["a", "b"], {}) == [[{"label": "a", "score": 1.0}], [{"label": "b", "score": 1.0}]]
    assert predict(backend, Task.SUMMARIZATION, ["a", "b"], {}) == [{"summary_text": "a"}, {"summary_text": "b"}]
    assert [r[0]["sequence"] for r in predict(backend, Task.FILL_MASK, ["a", "b"], {})] == ["a", "b"]
    assert predict(backend, Task.SUMMARIZATION, "a", {}) == [{"summary_text": "a"}]  # one text: unchanged
    with pytest.raises(BackendInputError) as info:
        predict(backend, Task.SUMMARIZATION, ["a", "bad"], {})
    assert info.value.field == "inputs.1"


@pytest.mark.parametrize(("task", "inputs", "parameters", "field"), [
    (Task.FILL_MASK, ["a [MASK]"] * 3, {}, "inputs"),
    (Task.SUMMARIZATION, ["a"] * 3, {}, "inputs"),
    (Task.TABULAR_REGRESSION, {"data": {"x": ["1", "2", "3"]}}, {}, "inputs.data"),
    (Task.ZERO_SHOT_IMAGE_CLASSIFICATION, b"", {"candidate_labels": ["a", "b", "c"]}, "parameters.candidate_labels"),
    (Task.IMAGE_TO_IMAGE, b"", {"target_size": {"width": 64, "height": 4096}}, "parameters.target_size.height"),
    (Task.IMAGE_TO_IMAGE, b"", {"num_inference_steps": 500}, "parameters.num_inference_steps"),
])
def test_server_caps_cover_batches_and_the_new_tasks(task: Task, inputs: Any, parameters: dict[str, Any], field: str) -> None:
    from hfbridge.server.limits import Limits, check_job
    from hfbridge.server.parsing import HTTPProblem, Job

    with pytest.raises(HTTPProblem) as info:
        check_job(Job(task, inputs, parameters), Limits(max_inputs=2))
    assert f"`{field}`" in info.value.message
    within = inputs[:2] if isinstance(inputs, list) else {"data": {"x": ["1", "2"]}} if isinstance(inputs, dict) else inputs
    check_job(Job(task, within, {}), Limits(max_inputs=2))  # at the cap: accepted


def test_an_image_inside_json_inputs_is_bounded_from_its_header() -> None:
    import io

    from PIL import Image

    from hfbridge.server.limits import Limits, check_media
    from hfbridge.server.parsing import HTTPProblem, Job

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200)).save(buffer, format="PNG")
    inputs = {"image": base64.b64encode(buffer.getvalue()).decode(), "question": "q"}
    check_media(Job(Task.VISUAL_QUESTION_ANSWERING, inputs, {}), Limits())
    with pytest.raises(HTTPProblem) as info:
        check_media(Job(Task.DOCUMENT_QUESTION_ANSWERING, inputs, {}), Limits(max_image_pixels=300 * 199))
    assert "`inputs.image`" in info.value.message and "max-image-pixels" in info.value.message
