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

__all__ = ["normalize", "shape_of", "generated_start", "chat_finish_reason", "pool_tokens", "l2_normalize", "normalize_embeddings", "NormalizeContext"]


class NormalizeContext:
    """What a normaliser may need to know about the request (never the token)."""

    __slots__ = ("task", "model", "inputs", "parameters", "extra")

    def __init__(self, task: Task, model: str | None, inputs: Any = None, parameters: dict | None = None, extra: dict | None = None) -> None:
        self.task = task
        self.model = model
        self.inputs = inputs
        self.parameters = parameters or {}
        self.extra = extra or {}

    def for_input(self, index: int) -> "NormalizeContext":
        """The context of one input of a batched call."""
        return NormalizeContext(self.task, self.model, self.inputs[index], self.parameters, self.extra)

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


def _per_row(convert: Callable[[Any], Any], kind: str) -> Callable[[NormalizeContext, Any], list[Any]]:
    """Tabular answers: one value per row of the table, in row order."""

    def run(ctx: NormalizeContext, data: Any) -> list[Any]:
        if not isinstance(data, list) or any(isinstance(x, (list, dict)) or x is None for x in data):
            raise ctx.fail(f"expected a list of {kind}, one per row, got {_preview(data)}")
        expected = ctx.extra.get("count")
        if expected is not None and len(data) != expected:
            raise ctx.fail(f"expected {expected} predictions (one per row), got {len(data)}")
        try:
            return [convert(x) for x in data]
        except (TypeError, ValueError):
            raise ctx.fail(f"expected {kind}, got {_preview(data)}") from None

    return run


def _label(value: Any) -> str:
    """Classes come back as the model's own values (``"setosa"``, ``5``, ``True``); a label is
    their text, as the hosted API documents it."""
    return value if isinstance(value, str) else str(value)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a regression value")
    return float(value)


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


def shape_of(data: Any) -> list[int]:
    """The lengths along the first elements of a nested list: ``[2, 1, 8, 384]``."""
    shape = []
    while isinstance(data, list):
        shape.append(len(data))
        if not data:
            break
        data = data[0]
    return shape


def _openai_embeddings(ctx: NormalizeContext, data: dict[str, Any]) -> list[Any]:
    """``{"data": [{"index", "embedding"}]}`` (OpenAI, TEI's and vLLM's ``/v1/embeddings``) in
    input order; ``embedding`` as floats or base64 little-endian float32 (``encoding_format``)."""
    items = data.get("data")
    if not isinstance(items, list) or not all(isinstance(i, dict) and "embedding" in i for i in items):
        raise ctx.fail(f"expected an OpenAI embeddings list {{'data': [{{'index', 'embedding'}}]}}, got {_preview(data)}")
    ordered = sorted(items, key=lambda item: item.get("index", 0))
    return [_decode_vector(ctx, item["embedding"]) for item in ordered]


def _decode_vector(ctx: NormalizeContext, value: Any) -> Any:
    if isinstance(value, str):
        import array
        import base64
        import sys

        raw = base64.b64decode(value)
        if len(raw) % 4:
            raise ctx.fail(f"a base64 embedding of {len(raw)} bytes is not float32 data")
        floats = array.array("f")
        floats.frombytes(raw)
        if sys.byteorder != "little":  # pragma: no cover - the wire format is little-endian
            floats.byteswap()
        return floats.tolist()
    return value


def normalize_embeddings(ctx: NormalizeContext, data: Any) -> Any:
    """One vector per input, in input order; token-level answers pooled as ``ctx.extra["pooling"]``.

    The shapes real servers send, for N inputs of T tokens and D dimensions:

    * ``[D]``: one input, pooled (sentence-transformers on the hosted API, a single string);
    * ``[N, D]``: pooled vectors (sentence-transformers, TEI ``/embed``);
    * ``[T, D]``: one input, token vectors;
    * ``[N, T, D]``: token vectors per input (TEI ``/embed_all``; also ``[1, T, D]`` for one
      string from transformers' feature-extraction pipeline, the hosted API for plain models);
    * ``[N, 1, T, D]``: transformers' pipeline given a list (each item keeps its batch of one);
    * ``{"data": [{"index", "embedding"}]}``: the OpenAI-compatible ``/v1/embeddings``.

    Anything else raises :class:`ResponseFormatError` saying which shape arrived.
    """
    single = isinstance(ctx.inputs, str)
    count = 1 if single else len(ctx.inputs)
    pooling = ctx.extra.get("pooling", "mean")
    if isinstance(data, dict):
        data = _openai_embeddings(ctx, data)
    depth = _depth(data)
    if depth == 4 and len(data) == count and all(isinstance(item, list) and len(item) == 1 for item in data):
        data, depth = [item[0] for item in data], 3
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
            f"expected {count} embedding(s) shaped [D], [N, D], [N, T, D] or [N, 1, T, D]; "
            f"got shape {shape_of(data) if depth > 0 else type(data).__name__}"
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
    dimensions = ctx.parameters.get("dimensions")
    if dimensions is not None and vectors and len(vectors[0]) > dimensions:
        # The server ignored ``dimensions``: keep the leading ones, as Matryoshka models are read.
        vectors = [v[:dimensions] for v in vectors]
    if ctx.extra.get("normalize"):
        vectors = [l2_normalize(v) for v in vectors]
    return vectors[0] if single else vectors


def _per_input(single: Callable[[NormalizeContext, Any], Any]) -> Callable[[NormalizeContext, Any], Any]:
    """A task answered for one text, extended to a list of texts: one result per input, in order
    (the hosted API and TEI take lists for the text tasks). A single string keeps its type."""

    def run(ctx: NormalizeContext, data: Any) -> Any:
        if not isinstance(ctx.inputs, list):
            return single(ctx, data)
        count = len(ctx.inputs)
        if not isinstance(data, list) or len(data) != count:
            got = f"{len(data)} items" if isinstance(data, list) else type(data).__name__
            raise ctx.fail(f"expected one result per input ({count}), got {got}: {_preview(data)}")
        results = [single(ctx.for_input(i), item) for i, item in enumerate(data)]
        return results[0] if ctx.extra.get("unwrap_single") else results

    return run


#: labels a cross-encoder gives the "relevant" class, when it has more than one
_RELEVANT_LABELS = ("LABEL_1", "relevant", "entailment", "yes", "true")


def _pair_score(ctx: NormalizeContext, item: Any) -> float:
    labels = _validate(ctx, list[s.ClassificationResult], [item] if isinstance(item, dict) else item)
    if len(labels) == 1:
        return labels[0].score
    for label in labels:
        if label.label in _RELEVANT_LABELS:
            return label.score
    raise ctx.fail(f"cannot tell which of the labels {[l.label for l in labels]} means 'relevant'")


def _rerank(ctx: NormalizeContext, data: Any) -> list[s.RerankResult]:
    """Ranked texts, best first, each with its original index: from TEI's ``[{index, score,
    text?}]``, the Cohere-style ``{"results": [{index, relevance_score, document?}]}``, or the
    hosted API's cross-encoder scores (one classification per (query, text) pair, in order)."""
    texts = ctx.inputs["texts"]
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        ranked = []
        for item in data["results"]:
            document = item.get("document")
            text = document.get("text") if isinstance(document, dict) else document
            ranked.append({"index": item.get("index"), "score": item.get("relevance_score", item.get("score")), "text": text})
        results = _validate(ctx, list[s.RerankResult], ranked)
    elif isinstance(data, list) and data and isinstance(data[0], dict) and "index" in data[0]:
        results = _validate(ctx, list[s.RerankResult], data)
    elif isinstance(data, list) and len(data) == len(texts):
        results = [s.RerankResult(index=i, score=_pair_score(ctx, item)) for i, item in enumerate(data)]
    else:
        raise ctx.fail(f"expected one score per text ({len(texts)}), got {_preview(data)}")
    if any(not 0 <= r.index < len(texts) for r in results):
        raise ctx.fail(f"a result's index is outside the {len(texts)} texts given")
    if ctx.parameters.get("return_text"):
        for result in results:
            if result.text is None:
                result.text = texts[result.index]
    results.sort(key=lambda r: r.score, reverse=True)
    top_n = ctx.parameters.get("top_n")
    return results[:top_n] if top_n else results


_NORMALIZERS: dict[Task, Callable[[NormalizeContext, Any], Any]] = {
    Task.TEXT_GENERATION: _text_generation,
    Task.TEXT_CLASSIFICATION: _per_input(_many(s.ClassificationResult)),
    Task.TOKEN_CLASSIFICATION: _per_input(_many(s.TokenClassificationResult)),
    Task.QUESTION_ANSWERING: _question_answering,
    Task.SUMMARIZATION: _per_input(_one(s.SummarizationResult)),
    Task.TRANSLATION: _per_input(_one(s.TranslationResult)),
    Task.FILL_MASK: _per_input(_many(s.FillMaskResult)),
    Task.TEXT2TEXT_GENERATION: _per_input(_one(s.GeneratedText)),
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
    Task.DOCUMENT_QUESTION_ANSWERING: _many(s.DocumentQuestionAnsweringResult),
    Task.VISUAL_QUESTION_ANSWERING: _many(s.VisualQuestionAnsweringResult),
    Task.ZERO_SHOT_IMAGE_CLASSIFICATION: _many(s.ClassificationResult),
    Task.AUDIO_TO_AUDIO: _many(s.AudioToAudioResult),
    Task.TABULAR_CLASSIFICATION: _per_row(_label, "labels"),
    Task.TABULAR_REGRESSION: _per_row(_number, "numbers"),
    Task.TEXT_RANKING: _rerank,
}


def normalize(ctx: NormalizeContext, data: Any) -> Any:
    """The typed result of ``ctx.task`` from its decoded JSON body."""
    try:
        normalizer = _NORMALIZERS[ctx.task]
    except KeyError:
        raise ctx.fail("this task answers with binary data, not JSON") from None
    return normalizer(ctx, data)
