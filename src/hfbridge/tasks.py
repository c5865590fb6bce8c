"""The task registry: one entry per task of the API, and everything that differs between tasks.

Every other part of hfbridge is written against this table rather than against task names: the
protocol picks routes and body shapes from it, the server picks handlers from it, and the
LangChain and LlamaIndex tool factories generate one tool per entry from its ``summary`` and
``tool_args``. Adding a task here (plus its client method and server handler) gives it tools in
both frameworks with no adapter code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from . import schemas as s

__all__ = ["Task", "InputKind", "OutputKind", "TaskSpec", "TASKS", "get_task", "find_task", "SPEC_TASK_ROUTES", "SPEC_TASKS",
           "HOSTED_ONLY_TASKS", "PIPELINE_TASKS"]


class Task(str, Enum):
    """The spec's ``/pipeline/{task}`` enum (the first 21), then the tasks the hosted API serves
    beyond it (:data:`HOSTED_ONLY_TASKS`), then reranking (TEI's and the router's)."""

    TEXT_GENERATION = "text-generation"
    TEXT_CLASSIFICATION = "text-classification"
    TOKEN_CLASSIFICATION = "token-classification"
    QUESTION_ANSWERING = "question-answering"
    SUMMARIZATION = "summarization"
    TRANSLATION = "translation"
    FILL_MASK = "fill-mask"
    TEXT2TEXT_GENERATION = "text2text-generation"
    FEATURE_EXTRACTION = "feature-extraction"
    SENTENCE_SIMILARITY = "sentence-similarity"
    ZERO_SHOT_CLASSIFICATION = "zero-shot-classification"
    TABLE_QUESTION_ANSWERING = "table-question-answering"
    CONVERSATIONAL = "conversational"
    IMAGE_CLASSIFICATION = "image-classification"
    OBJECT_DETECTION = "object-detection"
    IMAGE_SEGMENTATION = "image-segmentation"
    IMAGE_TO_TEXT = "image-to-text"
    TEXT_TO_IMAGE = "text-to-image"
    AUTOMATIC_SPEECH_RECOGNITION = "automatic-speech-recognition"
    AUDIO_CLASSIFICATION = "audio-classification"
    TEXT_TO_SPEECH = "text-to-speech"
    # served by the hosted API, not in the spec
    DOCUMENT_QUESTION_ANSWERING = "document-question-answering"
    VISUAL_QUESTION_ANSWERING = "visual-question-answering"
    ZERO_SHOT_IMAGE_CLASSIFICATION = "zero-shot-image-classification"
    AUDIO_TO_AUDIO = "audio-to-audio"
    IMAGE_TO_IMAGE = "image-to-image"
    TABULAR_CLASSIFICATION = "tabular-classification"
    TABULAR_REGRESSION = "tabular-regression"
    #: reranking (TEI's ``/rerank``); the hub's name for the task
    TEXT_RANKING = "text-ranking"

    def __str__(self) -> str:
        return self.value


class InputKind(str, Enum):
    """What the main input is; decides the body's ``inputs`` and how binary data travels."""

    TEXT = "text"
    TEXTS = "text or list of texts"
    QUESTION_CONTEXT = "question and context"
    SENTENCES = "source sentence and sentences"
    ZERO_SHOT = "text and candidate labels"
    TABLE = "query and table"
    MESSAGES = "chat messages"
    IMAGE_QUESTION = "image and question"
    TABULAR = "table of feature columns"
    QUERY_TEXTS = "query and texts"
    IMAGE = "image"
    AUDIO = "audio"

    @property
    def is_binary(self) -> bool:
        return self in (InputKind.IMAGE, InputKind.AUDIO)


class OutputKind(str, Enum):
    JSON = "json"
    IMAGE = "image"
    AUDIO = "audio"


# --------------------------------------------------------------------------------------------
# Arguments an agent gives a task's tool. Field names equal the client method's parameter names,
# so a tool call is ``getattr(client, spec.method)(**args)``.
# --------------------------------------------------------------------------------------------
#: Measured on SmolLM2-135M: a description that lists file types ("flac, wav, mp3") makes a small
#: model write the type instead of the file the user named; this wording gets the name copied.
_IMAGE_INPUT = "The image file's name or path, as the user gave it, or an http(s) URL."
_AUDIO_INPUT = "The audio file's name or path, as the user gave it, or an http(s) URL."


class _ToolArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class TextArgs(_ToolArgs):
    text: str = Field(min_length=1, description="The text to process.")


class PromptArgs(_ToolArgs):
    prompt: str = Field(min_length=1, description="The prompt to continue.")
    max_new_tokens: int | None = Field(default=None, ge=1, description="Most tokens to generate.")


class QuestionContextArgs(_ToolArgs):
    question: str = Field(min_length=1, description="The question to answer.")
    context: str = Field(min_length=1, description="The text that contains the answer.")


class TranslationArgs(_ToolArgs):
    text: str = Field(min_length=1, description="The text to translate.")
    src_lang: str | None = Field(default=None, description="Source language code, if the model needs it.")
    tgt_lang: str | None = Field(default=None, description="Target language code, if the model needs it.")


class FillMaskArgs(_ToolArgs):
    text: str = Field(min_length=1, description="Text containing the model's mask token, e.g. [MASK].")


class EmbedArgs(_ToolArgs):
    text: str = Field(min_length=1, description="The text to embed.")


class SentenceSimilarityArgs(_ToolArgs):
    source_sentence: str = Field(min_length=1, description="The sentence to compare against.")
    sentences: list[str] = Field(min_length=1, description="Sentences to score against the source.")


class ZeroShotArgs(_ToolArgs):
    text: str = Field(min_length=1, description="The text to classify.")
    candidate_labels: list[str] = Field(min_length=1, description="Labels to choose from.")
    multi_label: bool = Field(default=False, description="True if several labels can apply at once.")


class TableArgs(_ToolArgs):
    query: str = Field(min_length=1, description="The question about the table.")
    table: dict[str, list[str]] = Field(
        description="The table as columns: {column name: [cell, cell, ...]}, all columns of equal length."
    )


class ImageArgs(_ToolArgs):
    image: str = Field(min_length=1, description=_IMAGE_INPUT)


class AudioArgs(_ToolArgs):
    audio: str = Field(min_length=1, description=_AUDIO_INPUT)


class TextToImageArgs(_ToolArgs):
    prompt: str = Field(min_length=1, description="What the image should show.")
    negative_prompt: str | None = Field(default=None, description="What the image should not show.")
    width: int | None = Field(default=None, ge=8, le=4096, description="Width in pixels.")
    height: int | None = Field(default=None, ge=8, le=4096, description="Height in pixels.")


class ImageQuestionArgs(_ToolArgs):
    image: str = Field(min_length=1, description=_IMAGE_INPUT)
    question: str = Field(min_length=1, description="The question about the image.")


class ImageLabelsArgs(_ToolArgs):
    image: str = Field(min_length=1, description=_IMAGE_INPUT)
    candidate_labels: list[str] = Field(min_length=2, description="Labels to choose from (at least two).")


class ImageToImageArgs(_ToolArgs):
    image: str = Field(min_length=1, description=_IMAGE_INPUT)
    prompt: str | None = Field(default=None, description="How the image should change.")


class TabularArgs(_ToolArgs):
    table: dict[str, list[str]] = Field(
        description="Feature columns: {column name: [value per row, ...]}, all columns of equal length."
    )


class RerankArgs(_ToolArgs):
    query: str = Field(min_length=1, description="What the texts should be relevant to.")
    texts: list[str] = Field(min_length=1, description="The texts to rank.")
    top_n: int | None = Field(default=None, ge=1, description="Keep only the best N texts.")


class ChatArgs(_ToolArgs):
    message: str = Field(min_length=1, description="The user's message.")


@dataclass(frozen=True)
class TaskSpec:
    """Everything about one task that the rest of the library needs to know."""

    task: Task
    method: str
    input_kind: InputKind
    request_model: type[BaseModel]
    parameters_model: type[BaseModel] | None
    summary: str
    tool_args: type[BaseModel]
    output: OutputKind = OutputKind.JSON
    #: one of the 13 ``/models/{model_id}/{task}`` routes of the spec
    spec_route: bool = False
    #: the hosted API serves it at ``/models/{model_id}/pipeline/{task}``
    hosted_pipeline_route: bool = False
    #: the spec's task route also takes JSON ``{"inputs": url}`` (image-classification)
    spec_route_accepts_url: bool = False
    #: one of the spec's 21 ``/pipeline/{task}`` values (False: the hosted API's or TEI's own)
    in_spec: bool = True
    #: served by the task routes (``/pipeline/{task}``, ``/models/{id}``); False: a route of its own
    task_routes: bool = True

    @property
    def name(self) -> str:
        return self.task.value

    @property
    def tool_name(self) -> str:
        return self.task.value.replace("-", "_")

    @property
    def tool_schema(self) -> type[BaseModel]:
        """``tool_args`` with its schema built. The argument models defer building (imports stay
        cheap), and not every framework builds one before reading it: langchain-core 1.2.7 gave
        a tool of a deferred model no properties at all."""
        if not getattr(self.tool_args, "__pydantic_complete__", True):
            self.tool_args.model_rebuild(force=True)
        return self.tool_args


_T = Task
_K = InputKind

TASKS: dict[Task, TaskSpec] = {
    spec.task: spec
    for spec in [
        TaskSpec(_T.TEXT_GENERATION, "text_generation", _K.TEXT, s.TextGenerationRequest,
                 s.TextGenerationParameters, "Continue a prompt with a text-generation model.",
                 PromptArgs, spec_route=True),
        TaskSpec(_T.TEXT_CLASSIFICATION, "text_classification", _K.TEXT, s.TextClassificationRequest,
                 s.ClassificationParameters,
                 "Classify a text (for example its sentiment); returns labels with scores.",
                 TextArgs, spec_route=True),
        TaskSpec(_T.TOKEN_CLASSIFICATION, "token_classification", _K.TEXT, s.TokenClassificationRequest,
                 s.TokenClassificationParameters,
                 "Find named entities (people, places, organisations) in a text.", TextArgs),
        TaskSpec(_T.QUESTION_ANSWERING, "question_answering", _K.QUESTION_CONTEXT,
                 s.QuestionAnsweringRequest, s.QuestionAnsweringParameters,
                 "Answer a question by extracting the answer from a given context text.",
                 QuestionContextArgs, spec_route=True),
        TaskSpec(_T.SUMMARIZATION, "summarization", _K.TEXT, s.SummarizationRequest,
                 s.SummarizationParameters, "Summarise a long text.", TextArgs, spec_route=True),
        TaskSpec(_T.TRANSLATION, "translation", _K.TEXT, s.TranslationRequest, s.TranslationParameters,
                 "Translate a text into another language.", TranslationArgs, spec_route=True),
        TaskSpec(_T.FILL_MASK, "fill_mask", _K.TEXT, s.FillMaskRequest, s.FillMaskParameters,
                 "Predict the word hidden behind the mask token in a text.", FillMaskArgs,
                 spec_route=True),
        TaskSpec(_T.TEXT2TEXT_GENERATION, "text2text_generation", _K.TEXT, s.Text2TextGenerationRequest,
                 s.Text2TextGenerationParameters,
                 "Rewrite a text with a sequence-to-sequence model (instruction in, text out).", TextArgs),
        TaskSpec(_T.FEATURE_EXTRACTION, "feature_extraction", _K.TEXTS, s.FeatureExtractionRequest,
                 s.FeatureExtractionParameters, "Embed a text as a vector of floats.", EmbedArgs,
                 spec_route=True, hosted_pipeline_route=True),
        TaskSpec(_T.SENTENCE_SIMILARITY, "sentence_similarity", _K.SENTENCES, s.SentenceSimilarityRequest,
                 s.NoParameters,
                 "Score how similar each of several sentences is to a source sentence (0 to 1).",
                 SentenceSimilarityArgs, spec_route=True, hosted_pipeline_route=True),
        TaskSpec(_T.ZERO_SHOT_CLASSIFICATION, "zero_shot_classification", _K.ZERO_SHOT,
                 s.ZeroShotClassificationRequest, s.ZeroShotClassificationParameters,
                 "Classify a text into labels you choose, with no training.", ZeroShotArgs,
                 spec_route=True),
        TaskSpec(_T.TABLE_QUESTION_ANSWERING, "table_question_answering", _K.TABLE,
                 s.TableQuestionAnsweringRequest, s.TableQuestionAnsweringParameters,
                 "Answer a question about a table given as columns of cells.", TableArgs),
        TaskSpec(_T.CONVERSATIONAL, "conversational", _K.MESSAGES, s.ConversationalRequest,
                 s.ChatCompletionParameters, "Reply to a chat message.", ChatArgs),
        TaskSpec(_T.IMAGE_CLASSIFICATION, "image_classification", _K.IMAGE, s.BinaryJSONRequest,
                 s.ClassificationParameters, "Say what an image shows; returns labels with scores.",
                 ImageArgs, spec_route=True, spec_route_accepts_url=True),
        TaskSpec(_T.OBJECT_DETECTION, "object_detection", _K.IMAGE, s.BinaryJSONRequest,
                 s.ObjectDetectionParameters,
                 "Find objects in an image; returns labels, scores and bounding boxes.", ImageArgs,
                 spec_route=True),
        TaskSpec(_T.IMAGE_SEGMENTATION, "image_segmentation", _K.IMAGE, s.BinaryJSONRequest,
                 s.ImageSegmentationParameters,
                 "Split an image into labelled regions; returns a mask per region.", ImageArgs),
        TaskSpec(_T.IMAGE_TO_TEXT, "image_to_text", _K.IMAGE, s.BinaryJSONRequest,
                 s.ImageToTextParameters, "Describe an image in words (captioning).", ImageArgs),
        TaskSpec(_T.TEXT_TO_IMAGE, "text_to_image", _K.TEXT, s.TextToImageRequest,
                 s.TextToImageParameters, "Generate an image from a text prompt; returns its file path.",
                 TextToImageArgs, output=OutputKind.IMAGE, spec_route=True),
        TaskSpec(_T.AUTOMATIC_SPEECH_RECOGNITION, "automatic_speech_recognition", _K.AUDIO,
                 s.BinaryJSONRequest, s.NoParameters, "Transcribe speech in an audio file to text.",
                 AudioArgs, spec_route=True),
        TaskSpec(_T.AUDIO_CLASSIFICATION, "audio_classification", _K.AUDIO, s.BinaryJSONRequest,
                 s.ClassificationParameters, "Classify an audio clip; returns labels with scores.",
                 AudioArgs),
        TaskSpec(_T.TEXT_TO_SPEECH, "text_to_speech", _K.TEXT, s.TextToSpeechRequest, s.NoParameters,
                 "Speak a text aloud; returns the path of the audio file written.", TextArgs,
                 output=OutputKind.AUDIO),
        # the hosted API's tasks beyond the spec
        TaskSpec(_T.DOCUMENT_QUESTION_ANSWERING, "document_question_answering", _K.IMAGE_QUESTION,
                 s.DocumentQuestionAnsweringRequest, s.DocumentQuestionAnsweringParameters,
                 "Answer a question about a document image (an invoice, a form, a scanned page).",
                 ImageQuestionArgs, in_spec=False),
        TaskSpec(_T.VISUAL_QUESTION_ANSWERING, "visual_question_answering", _K.IMAGE_QUESTION,
                 s.VisualQuestionAnsweringRequest, s.VisualQuestionAnsweringParameters,
                 "Answer a question about what an image shows; returns answers with scores.", ImageQuestionArgs, in_spec=False),
        TaskSpec(_T.ZERO_SHOT_IMAGE_CLASSIFICATION, "zero_shot_image_classification", _K.IMAGE, s.BinaryJSONRequest,
                 s.ZeroShotImageClassificationParameters,
                 "Classify an image into labels you choose, with no training; returns labels with scores.",
                 ImageLabelsArgs, in_spec=False),
        TaskSpec(_T.AUDIO_TO_AUDIO, "audio_to_audio", _K.AUDIO, s.BinaryJSONRequest, s.NoParameters,
                 "Transform an audio clip (enhance, separate or re-encode it); returns the output clips.",
                 AudioArgs, in_spec=False),
        TaskSpec(_T.IMAGE_TO_IMAGE, "image_to_image", _K.IMAGE, s.BinaryJSONRequest, s.ImageToImageParameters,
                 "Transform an image as a prompt says; returns the path of the image written.", ImageToImageArgs,
                 output=OutputKind.IMAGE, in_spec=False),
        TaskSpec(_T.TABULAR_CLASSIFICATION, "tabular_classification", _K.TABULAR, s.TabularRequest, s.NoParameters,
                 "Predict a class for each row of a table of features; returns one label per row.", TabularArgs, in_spec=False),
        TaskSpec(_T.TABULAR_REGRESSION, "tabular_regression", _K.TABULAR, s.TabularRequest, s.NoParameters,
                 "Predict a number for each row of a table of features; returns one value per row.", TabularArgs, in_spec=False),
        TaskSpec(_T.TEXT_RANKING, "rerank", _K.QUERY_TEXTS, s.RerankRequest, s.TextRankingParameters,
                 "Rank texts by how relevant each is to a query, best first; returns indices and scores.",
                 RerankArgs, in_spec=False, task_routes=False),
    ]
}

SPEC_TASK_ROUTES: frozenset[Task] = frozenset(t for t, spec in TASKS.items() if spec.spec_route)
#: the tasks the hosted API serves that the spec does not name
HOSTED_ONLY_TASKS: frozenset[Task] = frozenset({
    Task.DOCUMENT_QUESTION_ANSWERING, Task.VISUAL_QUESTION_ANSWERING, Task.ZERO_SHOT_IMAGE_CLASSIFICATION,
    Task.AUDIO_TO_AUDIO, Task.IMAGE_TO_IMAGE, Task.TABULAR_CLASSIFICATION, Task.TABULAR_REGRESSION,
})
#: the tasks the task routes serve (reranking has ``/rerank``)
PIPELINE_TASKS: tuple[Task, ...] = tuple(t for t, spec in TASKS.items() if spec.task_routes)
#: the 21 tasks of the spec's enum
SPEC_TASKS: frozenset[Task] = frozenset(t for t, spec in TASKS.items() if spec.in_spec)


def get_task(task: Task | str) -> TaskSpec:
    """The registry entry for ``task``; an unknown name is an error that lists the known ones."""
    from .errors import InvalidInputError

    try:
        return TASKS[Task(task)]
    except ValueError:
        known = ", ".join(t.value for t in Task)
        raise InvalidInputError("task", f"unknown task {task!r}; known tasks: {known}") from None


def find_task(name: Task | str, field: str = "tasks") -> Task:
    """The task called ``name``: its id (``text-classification``) or its tool's name
    (``text_classification``), since people who configure tools think in tool names. An unknown
    name is an :class:`~hfbridge.InvalidInputError` on ``field`` that lists both spellings."""
    from .errors import InvalidInputError

    if isinstance(name, Task):
        return name
    if isinstance(name, str):
        for task in Task:
            if name in (task.value, TASKS[task].tool_name):
                return task
    known = ", ".join(f"{t.value} ({TASKS[t].tool_name})" for t in Task)
    raise InvalidInputError(field, f"unknown task {name!r}; known tasks (and tool names): {known}")
