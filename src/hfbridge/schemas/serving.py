"""Bodies of the routes that TEI and OpenAI-compatible servers add to the task routes:
``/rerank``, ``/predict`` and ``/v1/embeddings``.

The shapes are TEI's and OpenAI's own, so their clients (the ``openai`` package, langchain-openai,
TEI's users) talk to ``hfbridge serve`` unchanged.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import Field, field_validator

from ._base import _Request, _Response

__all__ = [
    "TruncationDirection",
    "RerankRequest",
    "RerankResult",
    "PredictRequest",
    "PredictResult",
    "OpenAIEmbeddingsRequest",
    "OpenAIEmbedding",
    "OpenAIEmbeddingsUsage",
    "OpenAIEmbeddingsResponse",
]

#: TEI spells them "Left"/"Right" in its schema and accepts lower case too
TruncationDirection = Literal["left", "right", "Left", "Right"]


def _non_empty(texts: list[str]) -> list[str]:
    for i, text in enumerate(texts):
        if not text.strip():
            raise ValueError(f"text {i} is empty")
    return texts


class RerankRequest(_Request):
    """TEI's ``/rerank`` body, plus ``top_n`` (Cohere's and the router's name for "keep the
    best N")."""

    query: str = Field(min_length=1)
    texts: list[str] = Field(min_length=1)
    return_text: bool = False
    truncate: bool | None = None
    truncation_direction: TruncationDirection = "right"
    raw_scores: bool = False
    top_n: int | None = Field(default=None, ge=1)

    _texts = field_validator("texts")(_non_empty)

    @field_validator("query")
    @classmethod
    def _query(cls, query: str) -> str:
        if not query.strip():
            raise ValueError("must not be empty")
        return query


class RerankResult(_Response):
    """One ranked text: its index in the request's ``texts``, its score, the text itself when
    ``return_text`` was set."""

    index: int
    score: float
    text: str | None = None


#: TEI's predict inputs: a text, a pair of texts, or a batch of ``[text]`` / ``[text, text]``
PredictInputs = Union[str, list[str], list[list[str]]]


class PredictRequest(_Request):
    inputs: PredictInputs
    truncate: bool | None = None
    truncation_direction: TruncationDirection = "right"
    raw_scores: bool = False


class PredictResult(_Response):
    score: float
    label: str


class OpenAIEmbeddingsRequest(_Request):
    """OpenAI's ``/v1/embeddings`` body. Token-id inputs (lists of integers) are OpenAI-only:
    this server embeds text."""

    input: Union[str, list[str]]
    model: str | None = None
    dimensions: int | None = Field(default=None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _text_only(cls, value: object) -> object:
        if isinstance(value, list) and value and not all(isinstance(item, str) for item in value):
            raise ValueError("must be a string or a list of strings (token ids are not accepted: send the text)")
        return value

    @field_validator("input")
    @classmethod
    def _not_empty(cls, value: Union[str, list[str]]) -> Union[str, list[str]]:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("must not be empty")
            return value
        if not value:
            raise ValueError("must contain at least one text")
        return _non_empty(value)


class OpenAIEmbedding(_Response):
    object: Literal["embedding"] = "embedding"
    index: int
    #: floats, or base64 of little-endian float32 values (``encoding_format="base64"``)
    embedding: Union[list[float], str]


class OpenAIEmbeddingsUsage(_Response):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingsResponse(_Response):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIEmbeddingsUsage
