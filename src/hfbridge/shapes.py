"""Every response shape seen on the real API, normalised to one typed result per task.

Pure functions from decoded JSON to results. Where servers disagree (a nested list or a flat one,
an object or a list of one) the function accepts each known variant and returns one type; a body
that matches none raises :class:`ResponseFormatError` naming task and model.

Embeddings are the hot path: they are never validated float by float. ``orjson`` has already
produced Python floats; we only check the nesting depth and the count.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Callable, Sequence

from pydantic import TypeAdapter, ValidationError

from . import schemas as s
from .errors import ResponseFormatError
from .tasks import Task
from .validation import field_path

__all__ = ["normalize", "generated_start", "chat_finish_reason", "pool_tokens", "l2_normalize", "normalize_embeddings", "NormalizeContext"]


class NormalizeContext:
    """What a normaliser may need to know about the request (never the token)."""

    __slots__ = ("task", "model", "inputs", "parameters", "extra")

    def __init__(self, task: Task, model: str | None, inputs: Any = None, parameters: dict | None = None, extra: dict | None = None) -> None:
        self.task = task
        self.model = model
        self.inputs = inputs
        self.parameters = parameters or {}
        self.extra = extra or {}

    def fail(self, what: str) -> ResponseFormatError:
        return ResponseFormatError(what, task=self.task.value, model=self.model)


@lru_cache(maxsize=None)
def _adapter(tp: Any) -> TypeAdapter:
    return TypeAdapter(tp)


def _validate(ctx: NormalizeContext, tp: Any, data: Any) -> Any:
    try:
        return _adapter(tp).validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(first["loc"])
        raise ctx.fail(f"unexpected response body: {first['msg']} at {where or 'top level'}: {_preview(data)}") from None


def _preview(data: Any, limit: int = 200) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + "..."


def _unwrap_single(data: Any) -> Any:
    """``[x]`` -> ``x``: the hosted API wraps many single results in a list of one."""
    if isinstance(data, list) and len(data) == 1:
        return data[0]
    return data


def _flatten_nested(data: Any) -> Any:
    """``[[...]]`` -> ``[...]`` for one input: text-classification's two known shapes."""
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], list):
        return data[0]
    return data


def _one(model: type) -> Callable[[NormalizeContext, Any], Any]:
    def run(ctx: NormalizeContext, data: Any) -> Any:
        return _validate(ctx, model, _unwrap_single(data))

    return run


def _many(model: type) -> Callable[[NormalizeContext, Any], Any]:
    def run(ctx: NormalizeContext, data: Any) -> Any:
        if isinstance(data, dict):
            data = [data]
        return _validate(ctx, list[model], _flatten_nested(data))

    return run


def _text_generation(ctx: NormalizeContext, data: Any) -> s.TextGenerationResult:
    result: s.TextGenerationResult = _validate(ctx, s.TextGenerationResult, _unwrap_single(data))
    stops = ctx.parameters.get("stop") or []
    if stops:
        prompt = ctx.inputs if isinstance(ctx.inputs, str) else ""
        start = generated_start(result.generated_text, prompt, ctx.parameters.get("return_full_text"))
        cut = truncate_at_stop(result.generated_text[start:], stops)
        if cut is not None:
            result.generated_text = result.generated_text[:start] + cut
            if result.details is not None:
                result.details.finish_reason = "stop_sequence"
    return result


def generated_start(text: str, prompt: str, return_full_text: bool | None) -> int:
    """Where the generated part of ``text`` begins: after the prompt when the server put it in
    front (``return_full_text`` True, or unset: many servers default to True), else at 0.

    Stop sequences apply to the generated part only; a prompt that itself contains a stop
    sequence (``"Q: ...\\nA:"`` with ``stop=["\\n"]``) must not cut the answer away."""
    if return_full_text is False or not prompt:
        return 0
    return len(prompt) if text.startswith(prompt) else 0


def truncate_at_stop(text: str, stops: Sequence[str]) -> str | None:
    """``text`` up to its earliest stop sequence; None when none occurs."""
    positions = [text.find(stop) for stop in stops if stop]
    positions = [p for p in positions if p >= 0]
    return text[: min(positions)] if positions else None


def _question_answering(ctx: NormalizeContext, data: Any) -> Any:
    top_k = ctx.parameters.get("top_k") or 1
    if top_k > 1:
        if isinstance(data, dict):
            data = [data]
        return _validate(ctx, list[s.QuestionAnsweringResult], data)
    return _validate(ctx, s.QuestionAnsweringResult, _unwrap_single(data))


def _zero_shot(ctx: NormalizeContext, data: Any) -> s.ZeroShotClassificationResult:
    data = _unwrap_single(data) if isinstance(data, list) and data and isinstance(data[0], dict) and "labels" in data[0] else data
    if isinstance(data, list):  # [{label, score}, ...]: the newer hosted shape
        pairs = _validate(ctx, list[s.ClassificationResult], data)
        pairs = sorted(pairs, key=lambda p: p.score, reverse=True)
        return s.ZeroShotClassificationResult(
            sequence=ctx.inputs if isinstance(ctx.inputs, str) else "",
            labels=[p.label for p in pairs],
            scores=[p.score for p in pairs],
        )
    result = _validate(ctx, s.ZeroShotClassificationResult, data)
    if len(result.labels) != len(result.scores):
        raise ctx.fail(f"{len(result.labels)} labels but {len(result.scores)} scores")
    return result


def _sentence_similarity(ctx: NormalizeContext, data: Any) -> list[float]:
    if not isinstance(data, list) or not all(isinstance(x, (int, float)) for x in data):
        raise ctx.fail(f"expected a list of scores, got {_preview(data)}")
    expected = ctx.extra.get("count")
    if expected is not None and len(data) != expected:
        raise ctx.fail(f"expected {expected} scores (one per sentence), got {len(data)}")
    return [float(x) for x in data]


#: servers' own finish reasons, in OpenAI's words
_FINISH_REASONS = {"eos_token": "stop", "stop_sequence": "stop", "end_turn": "stop", "max_tokens": "length", "tool_call": "tool_calls"}


def chat_finish_reason(reason: str | None, called_tools: bool) -> str | None:
    """OpenAI's finish reason: ``tool_calls`` when the model called a tool and the server said
    only that it stopped; TGI's ``eos_token`` / ``stop_sequence`` are ``stop``."""
    normal = _FINISH_REASONS.get(reason, reason) if reason is not None else None
    if called_tools and normal in (None, "stop"):
        return "tool_calls"
    return normal


def _chat(ctx: NormalizeContext, data: Any) -> s.ChatCompletion:
    result: s.ChatCompletion = _validate(ctx, s.ChatCompletion, data)
    stops = ctx.parameters.get("stop") or []
    for choice in result.choices:
        if stops and choice.message.content:
            cut = truncate_at_stop(choice.message.content, stops)
            if cut is not None:
                choice.message.content = cut
                choice.finish_reason = "stop"
        choice.finish_reason = chat_finish_reason(choice.finish_reason, bool(choice.message.tool_calls))
    return result


# --------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------
def _depth(data: Any) -> int:
    depth = 0
    while isinstance(data, list):
        if not data:
            return depth + 1
        depth += 1
        data = data[0]
    return depth if isinstance(data, (int, float)) else -1


def pool_tokens(tokens: list[list[float]], how: str) -> list[float]:
    """Pool a token-level matrix to one vector: ``mean`` (over all tokens), ``cls`` (the first
    token) or ``max`` (per dimension). The server sends only real tokens (no padding), so a plain
    mean equals sentence-transformers' masked mean."""
    if not tokens:
        raise ValueError("cannot pool zero tokens")
    if how == "cls":
        return list(tokens[0])
    if how == "max":
        return [max(column) for column in zip(*tokens)]
    if how == "mean":
        n = len(tokens)
        return [sum(column) / n for column in zip(*tokens)]
    raise ValueError(f"unknown pooling {how!r}; use 'mean', 'cls', 'max' or 'none'")


def l2_normalize(vector: list[float]) -> list[float]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return list(vector) if norm == 0.0 else [x / norm for x in vector]


def normalize_embeddings(ctx: NormalizeContext, data: Any) -> Any:
    """One vector per input, in input order; token-level answers pooled as ``ctx.extra["pooling"]``.

    Known shapes: ``[f]`` (one input), ``[[f]]`` (one vector per input), ``[[[f]]]`` (token
    vectors per input), and ``[[f], ...]`` for one input, which is token-level.
    """
    single = isinstance(ctx.inputs, str)
    count = 1 if single else len(ctx.inputs)
    pooling = ctx.extra.get("pooling", "mean")
    depth = _depth(data)
    if depth == 1 and count == 1:
        vectors: list[Any] = [data]
        token_level = False
    elif depth == 2 and len(data) == count:
        vectors, token_level = data, False
    elif depth == 2 and count == 1:
        vectors, token_level = [data], True  # tokens x dim for the one input
    elif depth == 3 and len(data) == count:
        vectors, token_level = data, True
    else:
        raise ctx.fail(
            f"expected {count} embedding(s) as [f], [[f]] or [[[f]]] nesting; got depth {depth} "
            f"with {len(data) if isinstance(data, list) else 0} rows"
        )
    if token_level:
        if pooling == "none":
            return vectors[0] if single else vectors
        try:
            vectors = [pool_tokens(tokens, pooling) for tokens in vectors]
        except ValueError as exc:
            raise ctx.fail(str(exc)) from None
    elif pooling == "none":
        raise ctx.fail("pooling='none' asks for token-level vectors, but the server sent pooled ones")
    if ctx.extra.get("normalize"):
        vectors = [l2_normalize(v) for v in vectors]
    return vectors[0] if single else vectors


_NORMALIZERS: dict[Task, Callable[[NormalizeContext, Any], Any]] = {
    Task.TEXT_GENERATION: _text_generation,
    Task.TEXT_CLASSIFICATION: _many(s.ClassificationResult),
    Task.TOKEN_CLASSIFICATION: _many(s.TokenClassificationResult),
    Task.QUESTION_ANSWERING: _question_answering,
    Task.SUMMARIZATION: _one(s.SummarizationResult),
    Task.TRANSLATION: _one(s.TranslationResult),
    Task.FILL_MASK: _many(s.FillMaskResult),
    Task.TEXT2TEXT_GENERATION: _one(s.GeneratedText),
    Task.FEATURE_EXTRACTION: normalize_embeddings,
    Task.SENTENCE_SIMILARITY: _sentence_similarity,
    Task.ZERO_SHOT_CLASSIFICATION: _zero_shot,
    Task.TABLE_QUESTION_ANSWERING: _one(s.TableQuestionAnsweringResult),
    Task.CONVERSATIONAL: _chat,
    Task.IMAGE_CLASSIFICATION: _many(s.ClassificationResult),
    Task.OBJECT_DETECTION: _many(s.ObjectDetectionResult),
    Task.IMAGE_SEGMENTATION: _many(s.ImageSegmentationResult),
    Task.IMAGE_TO_TEXT: _one(s.GeneratedText),
    Task.AUTOMATIC_SPEECH_RECOGNITION: _one(s.SpeechRecognitionResult),
    Task.AUDIO_CLASSIFICATION: _many(s.ClassificationResult),
}


def normalize(ctx: NormalizeContext, data: Any) -> Any:
    """The typed result of ``ctx.task`` from its decoded JSON body."""
    try:
        normalizer = _NORMALIZERS[ctx.task]
    except KeyError:
        raise ctx.fail("this task answers with binary data, not JSON") from None
    return normalizer(ctx, data)
