"""Bodies of the tasks the hosted API serves beyond the spec's 21: document and visual question
answering, zero-shot image classification, audio-to-audio, image-to-image and the two tabular
tasks.

The shapes are the hosted API's own, as its recorded answers and huggingface_hub's
``InferenceClient`` show them. Where that client sends another form of the same request than
the documented one (visual question answering's question at the top level next to a bare
base64 ``inputs``; a tabular ``table`` at the top level instead of ``inputs.data``), the request
model accepts both and normalises them to the documented form, so the server never has to know
which client spoke.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Union

from pydantic import Field, field_validator, model_validator

from ._base import FieldProblem, _Request, _Response
from .tasks import Options

__all__ = [
    "ImageQuestionInputs",
    "DocumentQuestionAnsweringParameters",
    "DocumentQuestionAnsweringInputs",
    "DocumentQuestionAnsweringRequest",
    "DocumentQuestionAnsweringResult",
    "VisualQuestionAnsweringParameters",
    "VisualQuestionAnsweringInputs",
    "VisualQuestionAnsweringRequest",
    "VisualQuestionAnsweringResult",
    "ZeroShotImageClassificationParameters",
    "AudioToAudioResult",
    "ImageToImageTargetSize",
    "ImageToImageParameters",
    "TabularInputs",
    "TabularRequest",
    "TableCell",
]

#: a tabular cell: the hosted API documents strings, huggingface_hub sends whatever it was given
TableCell = Union[str, int, float, bool, None]


def _base64_image(value: str) -> str:
    """Checked, not decoded: the server decodes once, where the image is used."""
    raw = value.strip()
    if not raw:
        raise ValueError("must be a base64-encoded image, got an empty string")
    if raw.startswith(("http://", "https://")):
        raise ValueError("must be base64-encoded image data; URLs are not fetched for this task")
    try:
        base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64-encoded image data") from None
    return raw


def _question(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


# --------------------------------------------------------------------------------------------
# document-question-answering
# --------------------------------------------------------------------------------------------
class DocumentQuestionAnsweringParameters(_Request):
    """The hosted API's parameters (transformers' pipeline's). A model that cannot honour one
    (a generative reader has no OCR language, no word boxes, one answer) refuses it by name."""

    doc_stride: int | None = Field(default=None, ge=0)
    handle_impossible_answer: bool | None = None
    lang: str | None = None
    max_answer_len: int | None = Field(default=None, ge=1)
    max_question_len: int | None = Field(default=None, ge=1)
    max_seq_len: int | None = Field(default=None, ge=1)
    top_k: int | None = Field(default=None, ge=1)
    word_boxes: list[Union[str, list[float]]] | None = None


class ImageQuestionInputs(_Request):
    """A base64 image and a question about it (document and visual question answering)."""

    image: str
    question: str

    _image = field_validator("image")(_base64_image)
    _text = field_validator("question")(_question)


DocumentQuestionAnsweringInputs = VisualQuestionAnsweringInputs = ImageQuestionInputs


class DocumentQuestionAnsweringRequest(_Request):
    inputs: ImageQuestionInputs
    parameters: DocumentQuestionAnsweringParameters | None = None
    options: Options | None = None


class DocumentQuestionAnsweringResult(_Response):
    """Extractive readers (LayoutLM) give ``score``/``start``/``end`` (word indices); generative
    ones (Donut) only the answer, as the hosted API's recorded answer shows."""

    answer: str
    score: float | None = None
    start: int | None = None
    end: int | None = None


# --------------------------------------------------------------------------------------------
# visual-question-answering
# --------------------------------------------------------------------------------------------
class VisualQuestionAnsweringParameters(_Request):
    top_k: int | None = Field(default=None, ge=1)


class VisualQuestionAnsweringRequest(_Request):
    """Documented: ``{"inputs": {"image", "question"}}``. huggingface_hub sends
    ``{"inputs": <base64 image>, "question", "image"}``; both end as ``inputs`` objects."""

    inputs: ImageQuestionInputs
    parameters: VisualQuestionAnsweringParameters | None = None
    options: Options | None = None

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("inputs"), str):
            return data
        data = dict(data)
        question = data.pop("question", None)
        image = data.pop("image", None) or data["inputs"]
        if question is None:
            raise FieldProblem("question", "is required (or send inputs as {\"image\", \"question\"})")
        data["inputs"] = {"image": image, "question": question}
        return data


class VisualQuestionAnsweringResult(_Response):
    answer: str
    score: float


# --------------------------------------------------------------------------------------------
# zero-shot-image-classification (answers are ClassificationResult lists)
# --------------------------------------------------------------------------------------------
class ZeroShotImageClassificationParameters(_Request):
    candidate_labels: list[str] = Field(min_length=1)
    hypothesis_template: str | None = None

    @field_validator("candidate_labels")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        if any(not label.strip() for label in labels):
            raise ValueError("labels must not be empty")
        if len(set(labels)) != len(labels):
            raise ValueError("must not repeat a label")
        return labels

    @field_validator("hypothesis_template")
    @classmethod
    def _template(cls, template: str | None) -> str | None:
        if template is not None and "{}" not in template:
            raise ValueError("must contain '{}' where the label goes")
        return template


# --------------------------------------------------------------------------------------------
# audio-to-audio
# --------------------------------------------------------------------------------------------
class AudioToAudioResult(_Response):
    """One output clip: ``blob`` is the base64 audio, as the hosted API sends it; :meth:`audio`
    decodes it."""

    label: str
    blob: str
    content_type: str = Field(default="audio/flac", alias="content-type")

    def audio(self) -> Any:
        """The clip's bytes as a :class:`~hfbridge.media.BinaryOutput`."""
        from ..media import BinaryOutput

        return BinaryOutput(base64.b64decode(self.blob), self.content_type)


# --------------------------------------------------------------------------------------------
# image-to-image
# --------------------------------------------------------------------------------------------
class ImageToImageTargetSize(_Request):
    width: int = Field(ge=8, le=4096)
    height: int = Field(ge=8, le=4096)


class ImageToImageParameters(_Request):
    prompt: str | None = None
    negative_prompt: str | None = None
    num_inference_steps: int | None = Field(default=None, ge=1, le=500)
    guidance_scale: float | None = Field(default=None, ge=0.0)
    target_size: ImageToImageTargetSize | None = None
    #: how far from the input image the result may move (0: unchanged, 1: ignore it)
    strength: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0)


# --------------------------------------------------------------------------------------------
# tabular-classification and tabular-regression (answers: one value per row)
# --------------------------------------------------------------------------------------------
class TabularInputs(_Request):
    data: dict[str, list[TableCell]]

    @field_validator("data")
    @classmethod
    def _columns(cls, data: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not data:
            raise ValueError("must have at least one column")
        lengths = {len(cells) for cells in data.values()}
        if len(lengths) != 1:
            sizes = ", ".join(f"{name!r}: {len(cells)}" for name, cells in data.items())
            raise ValueError(f"columns must all have the same number of rows ({sizes})")
        if lengths == {0}:
            raise ValueError("must have at least one row")
        return data


class TabularRequest(_Request):
    """Documented: ``{"inputs": {"data": {column: [cells]}}}``; huggingface_hub sends
    ``{"table": {...}}`` at the top level, read here as the same thing."""

    inputs: TabularInputs
    parameters: dict[str, Any] | None = None
    options: Options | None = None

    @model_validator(mode="before")
    @classmethod
    def _lift(cls, data: Any) -> Any:
        if isinstance(data, dict) and "table" in data:
            data = dict(data)
            if data.get("inputs") is not None:
                raise FieldProblem("table", "give the table once: as inputs.data or as table, not both")
            data["inputs"] = {"data": data.pop("table")}
        return data

    @field_validator("parameters")
    @classmethod
    def _no_parameters(cls, parameters: dict[str, Any] | None) -> dict[str, Any] | None:
        if parameters:
            raise ValueError(f"tabular tasks take no parameters, got {sorted(parameters)}")
        return parameters
