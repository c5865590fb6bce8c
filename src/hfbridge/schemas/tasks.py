"""Pydantic models of the task routes' bodies (the spec's components plus the hosted API's
documented parameters for the same tasks). Chat models live in :mod:`.chat`, grammars in
:mod:`.grammar`."""

from __future__ import annotations

from typing import Any, Literal, Mapping, Union

from pydantic import ConfigDict, Field, field_validator, model_validator

from ._base import FieldProblem, _Request, _Response  # noqa: F401
from .grammar import Grammar

# --------------------------------------------------------------------------------------------
# Shared request parts
# --------------------------------------------------------------------------------------------
class Options(_Request):
    """Body ``options`` (spec layout); the hosted layout sends them as X-* headers instead."""

    use_cache: bool | None = None
    wait_for_model: bool | None = None


class _TaskRequest(_Request):
    options: Options | None = None


# --------------------------------------------------------------------------------------------
# Parameters per task
# --------------------------------------------------------------------------------------------
class TextGenerationParameters(_Request):
    max_new_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=100.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1)
    repetition_penalty: float | None = Field(default=None, gt=0.0)
    do_sample: bool | None = None
    return_full_text: bool | None = None
    stop: list[str] | None = None
    seed: int | None = Field(default=None, ge=0)
    details: bool | None = None
    # TGI's parameters, typed rather than passed through
    grammar: Grammar | None = None
    truncate: int | None = Field(default=None, ge=1, description="Keep only the last N prompt tokens.")
    typical_p: float | None = Field(default=None, gt=0.0, lt=1.0)
    watermark: bool | None = None
    best_of: int | None = Field(default=None, ge=1, le=16)
    decoder_input_details: bool | None = None
    top_n_tokens: int | None = Field(default=None, ge=0, le=10)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)


class ClassificationParameters(_Request):
    top_k: int | None = Field(default=None, ge=1)
    function_to_apply: Literal["sigmoid", "softmax", "none"] | None = None


class TokenClassificationParameters(_Request):
    aggregation_strategy: Literal["none", "simple", "first", "average", "max"] | None = None
    ignore_labels: list[str] | None = None
    stride: int | None = Field(default=None, ge=0)


class QuestionAnsweringParameters(_Request):
    top_k: int | None = Field(default=None, ge=1)
    max_answer_len: int | None = Field(default=None, ge=1)
    handle_impossible_answer: bool | None = None


class SummarizationParameters(_Request):
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)


class TranslationParameters(_Request):
    src_lang: str | None = None
    tgt_lang: str | None = None
    max_length: int | None = Field(default=None, ge=1)


class Text2TextGenerationParameters(_Request):
    max_new_tokens: int | None = Field(default=None, ge=1)
    max_length: int | None = Field(default=None, ge=1)


class FillMaskParameters(_Request):
    top_k: int | None = Field(default=None, ge=1)
    targets: list[str] | None = None


class FeatureExtractionParameters(_Request):
    """``pooling="none"`` asks for token-level vectors; ``normalize`` for unit-length vectors.
    The rest are TEI's: ``truncation_direction`` (which end a long input loses),
    ``prompt_name`` (one of the model's configured prompts, e.g. ``"query"``) and
    ``dimensions`` (keep the first N dimensions of a Matryoshka model)."""

    normalize: bool | None = None
    truncate: bool | None = None
    pooling: Literal["mean", "cls", "none"] | None = None
    truncation_direction: Literal["left", "right"] | None = None
    prompt_name: str | None = Field(default=None, min_length=1)
    dimensions: int | None = Field(default=None, ge=1)

    @field_validator("truncation_direction", mode="before")
    @classmethod
    def _direction(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value  # TEI and huggingface_hub write "Left"/"Right"


class TextRankingParameters(_Request):
    """Reranking (TEI's ``/rerank``): ``top_n`` best texts, with their ``text`` if asked."""

    top_n: int | None = Field(default=None, ge=1)
    return_text: bool | None = None
    truncate: bool | None = None
    raw_scores: bool | None = None
    truncation_direction: Literal["left", "right"] | None = None


class ZeroShotClassificationParameters(_Request):
    candidate_labels: list[str] = Field(min_length=1)
    multi_label: bool | None = None
    hypothesis_template: str | None = None


class ObjectDetectionParameters(_Request):
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class ImageSegmentationParameters(_Request):
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    mask_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    subtask: Literal["semantic", "instance", "panoptic"] | None = None


class ImageToTextParameters(_Request):
    max_new_tokens: int | None = Field(default=None, ge=1)


class TextToImageParameters(_Request):
    negative_prompt: str | None = None
    height: int | None = Field(default=None, ge=8, le=4096)
    width: int | None = Field(default=None, ge=8, le=4096)
    num_inference_steps: int | None = Field(default=None, ge=1, le=500)
    guidance_scale: float | None = Field(default=None, ge=0.0)
    seed: int | None = Field(default=None, ge=0)


class TableQuestionAnsweringParameters(_Request):
    """The hosted API's parameters. huggingface_hub also repeats the model (id or URL) here;
    the route already names it, so it is accepted and carries no meaning."""

    model: str | None = None
    padding: Literal["do_not_pad", "longest", "max_length"] | None = None
    truncation: bool | None = None
    sequential: bool | None = None

    @field_validator("sequential")
    @classmethod
    def _one_query(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("sequential (TAPAS's conversational mode) is not supported: each query is answered on its own")
        return value


class NoParameters(_Request):
    """Tasks whose spec defines no parameters still accept an empty ``parameters`` object."""


# --------------------------------------------------------------------------------------------
# Inputs with structure
# --------------------------------------------------------------------------------------------
class QuestionAnsweringInputs(_Request):
    question: str
    context: str


class SentenceSimilarityInputs(_Request):
    source_sentence: str
    sentences: list[str] = Field(min_length=1)


class TableQuestionAnsweringInputs(_Request):
    query: str
    table: dict[str, list[str]]


# --------------------------------------------------------------------------------------------
# Request bodies (JSON)
# --------------------------------------------------------------------------------------------
#: the hosted API and TEI take a batch of texts where they take one: one answer per text, in order
TextOrTexts = Union[str, list[str]]

class InferenceRequest(_TaskRequest):
    """The generic body of ``/models/{model_id}`` and ``/pipeline/{task}``."""

    model_config = ConfigDict(extra="allow")
    inputs: Any
    parameters: dict[str, Any] | None = None


def stream_problem(parameters: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """Why text-generation ``parameters`` cannot be streamed (TGI's rules), as (field, problem):
    ``best_of`` > 1 picks its answer only at the end, ``decoder_input_details`` belongs to the
    whole answer. None when they can."""
    parameters = parameters or {}
    if (parameters.get("best_of") or 1) > 1:
        return "parameters.best_of", "best_of > 1 cannot be streamed (the best sequence is only known at the end)"
    if parameters.get("decoder_input_details"):
        return "parameters.decoder_input_details", "cannot be streamed; send the request without stream"
    return None


class TextGenerationRequest(_TaskRequest):
    inputs: str
    parameters: TextGenerationParameters | None = None
    stream: bool | None = None

    @model_validator(mode="after")
    def _streamable(self) -> "TextGenerationRequest":
        problem = stream_problem(self.parameters.model_dump(exclude_none=True)) if self.stream and self.parameters else None
        if problem:
            raise FieldProblem(*problem)
        return self


class TextClassificationRequest(_TaskRequest):
    inputs: TextOrTexts
    parameters: ClassificationParameters | None = None


class TokenClassificationRequest(_TaskRequest):
    inputs: TextOrTexts
    parameters: TokenClassificationParameters | None = None


class QuestionAnsweringRequest(_TaskRequest):
    inputs: QuestionAnsweringInputs
    parameters: QuestionAnsweringParameters | None = None


class SummarizationRequest(_TaskRequest):
    inputs: TextOrTexts
    parameters: SummarizationParameters | None = None


class TranslationRequest(_TaskRequest):
    inputs: TextOrTexts
    parameters: TranslationParameters | None = None


class Text2TextGenerationRequest(_TaskRequest):
    inputs: TextOrTexts
    parameters: Text2TextGenerationParameters | None = None


class FillMaskRequest(_TaskRequest):
    inputs: TextOrTexts
    parameters: FillMaskParameters | None = None


class FeatureExtractionRequest(_TaskRequest):
    inputs: Union[str, list[str]]
    parameters: FeatureExtractionParameters | None = None


class SentenceSimilarityRequest(_TaskRequest):
    inputs: SentenceSimilarityInputs
    parameters: NoParameters | None = None


class ZeroShotClassificationRequest(_TaskRequest):
    inputs: str
    parameters: ZeroShotClassificationParameters


class TableQuestionAnsweringRequest(_TaskRequest):
    inputs: TableQuestionAnsweringInputs
    parameters: TableQuestionAnsweringParameters | None = None


class BinaryJSONRequest(_TaskRequest):
    """A binary task in JSON form: ``inputs`` is base64 data, or a URL where allowed."""

    inputs: str
    parameters: dict[str, Any] | None = None


class TextToImageRequest(_TaskRequest):
    inputs: str
    parameters: TextToImageParameters | None = None


class TextToSpeechRequest(_TaskRequest):
    inputs: str
    parameters: NoParameters | None = None


# --------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------
class ClassificationResult(_Response):
    label: str
    score: float


class TokenClassificationResult(_Response):
    """``entity_group`` when aggregated, ``entity`` when not; both read back as ``label``."""

    entity_group: str | None = None
    entity: str | None = None
    score: float
    word: str
    start: int | None = None
    end: int | None = None

    @property
    def label(self) -> str:
        return self.entity_group or self.entity or ""


class QuestionAnsweringResult(_Response):
    answer: str
    score: float | None = None
    start: int | None = None
    end: int | None = None


class SummarizationResult(_Response):
    summary_text: str


class TranslationResult(_Response):
    translation_text: str


class GeneratedText(_Response):
    """text2text-generation and image-to-text answers."""

    generated_text: str


class FillMaskResult(_Response):
    sequence: str
    score: float
    token: int
    token_str: str


class ZeroShotClassificationResult(_Response):
    sequence: str
    labels: list[str]
    scores: list[float]


class BoundingBox(_Response):
    xmin: int
    ymin: int
    xmax: int
    ymax: int


class ObjectDetectionResult(_Response):
    label: str
    score: float
    box: BoundingBox


class ImageSegmentationResult(_Response):
    """``mask`` is a base64-encoded single-channel PNG, as the hosted API sends it."""

    label: str
    score: float | None = None
    mask: str


class SpeechRecognitionResult(_Response):
    text: str


class TableQuestionAnsweringResult(_Response):
    answer: str
    coordinates: list[list[int]] = Field(default_factory=list)
    cells: list[str] = Field(default_factory=list)
    aggregator: str | None = None


class StreamToken(_Response):
    id: int
    text: str
    logprob: float | None = None
    special: bool = False


class PrefillToken(_Response):
    id: int
    text: str
    logprob: float | None = None


class GeneratedSequence(_Response):
    """One of TGI's ``best_of_sequences``."""

    generated_text: str
    finish_reason: str | None = None
    generated_tokens: int | None = None
    seed: int | None = None
    prefill: list[PrefillToken] = Field(default_factory=list)
    tokens: list[StreamToken] = Field(default_factory=list)
    top_tokens: list[list[StreamToken]] = Field(default_factory=list)


class GenerationDetails(_Response):
    finish_reason: str | None = None
    generated_tokens: int | None = None
    prompt_tokens: int | None = None
    seed: int | None = None
    prefill: list[PrefillToken] = Field(default_factory=list)
    tokens: list[StreamToken] = Field(default_factory=list)
    top_tokens: list[list[StreamToken]] = Field(default_factory=list)
    best_of_sequences: list[GeneratedSequence] | None = None


class TextGenerationResult(_Response):
    generated_text: str
    details: GenerationDetails | None = None


class TextGenerationStreamOutput(_Response):
    index: int | None = None
    token: StreamToken
    top_tokens: list[StreamToken] = Field(default_factory=list)
    generated_text: str | None = None
    details: GenerationDetails | None = None


class ErrorBody(_Response):
    error: Union[str, list[str]]
    estimated_time: float | None = None
