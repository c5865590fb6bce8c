"""The routes TEI and OpenAI-compatible servers add to the Inference API: ``POST /rerank``,
``POST /predict`` and ``POST /v1/embeddings``, each also per model under ``/models/{id}/``.

* ``/rerank`` (TEI's shape): ``{query, texts, return_text?, truncate?, raw_scores?,
  truncation_direction?, top_n?}`` -> ``[{index, score, text?}]`` best first, each with the
  text's index in the request. Served by a model whose registry entry says it reranks
  (``options.rerank``); without a model, ``[defaults] rerank``.
* ``/predict`` (TEI's shape): a text, a pair ``[a, b]`` or a batch ``[[a], [a, b], ...]`` through
  a text-classification model -> every label with its score per sequence.
* ``/v1/embeddings`` (OpenAI's shape): ``{input, model?, dimensions?, encoding_format?}`` ->
  ``{object: "list", data: [{object, index, embedding}], model, usage}``; ``dimensions`` keeps the
  first N dimensions and rescales them to unit length (Matryoshka-style, as OpenAI does);
  ``encoding_format="base64"`` sends little-endian float32 bytes, which the ``openai`` package
  asks for by default. Its errors are OpenAI's ``{"error": {"message", "type", "param"}}``.

Truncation defaults to on (TEI's ``--auto-truncate``); ``truncate: false`` makes an over-long
text a 400 naming it. Each route's work is a :class:`~.backends.Plan`, so its texts share forward
passes with concurrent requests to the same model (:mod:`.batching`).
"""

from __future__ import annotations

import base64
import re
from typing import Any, Callable

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response

from .. import schemas as s
from ..tasks import Task
from .backends import BackendInputError, Plan
from .backends._batch import run_plan
from .cancellation import Cancelled, raise_if_cancelled
from .parsing import HTTPProblem, Job, _validate, decode_json, options_from
from .registry import ModelEntry

__all__ = ["add_serving_routes"]


def add_serving_routes(app: FastAPI, server: Any) -> None:
    """Register the routes on ``app``; call before the ``/models/{rest:path}`` catch-all."""
    from .app import _admit, _entry_or_404, _json

    async def body_of(request: Request, model: type) -> tuple[Any, dict[str, str]]:
        raw = await _admit(server, request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        return _validate(model, decode_json(raw)), headers

    # ---- rerank ---------------------------------------------------------------------------------
    async def rerank(request: Request, entry: ModelEntry | None) -> Response:
        body, headers = await body_of(request, s.RerankRequest)
        if entry is None:
            if server.registry.reranker is None:
                raise HTTPProblem(400, "No default reranker is configured; use /models/{model_id}/rerank")
            entry = _entry_or_404(server, server.registry.reranker)
        kind = entry.reranks
        if kind is None:
            raise HTTPProblem(400, f"Model {entry.model_id} does not rerank (its registry entry has no options.rerank)")
        _at_most(server, "texts", len(body.texts))
        scores = await _execute(server, request, entry, headers, lambda backend: _rerank(backend, kind, body))
        ranked = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[: body.top_n]
        return _json([
            {"index": i, "score": scores[i], **({"text": body.texts[i]} if body.return_text else {})} for i in ranked
        ])

    @app.post("/rerank")
    async def rerank_default(request: Request) -> Response:
        return await rerank(request, None)

    @app.post("/models/{model_id:path}/rerank")
    async def rerank_model(model_id: str, request: Request) -> Response:
        return await rerank(request, _entry_or_404(server, model_id))

    # ---- predict --------------------------------------------------------------------------------
    async def predict(request: Request, entry: ModelEntry | None) -> Response:
        body, headers = await body_of(request, s.PredictRequest)
        entry = entry or _default(server, Task.TEXT_CLASSIFICATION)
        if Task.TEXT_CLASSIFICATION not in entry.tasks:
            raise HTTPProblem(400, f"Model {entry.model_id} is not a text-classification model; /predict needs one")
        sequences, batch = _predict_inputs(body.inputs)
        _at_most(server, "inputs", len(sequences))
        answers = await _execute(server, request, entry, headers, lambda backend: _classify(backend, sequences, body))
        return _json(answers if batch else answers[0])

    @app.post("/predict")
    async def predict_default(request: Request) -> Response:
        return await predict(request, None)

    @app.post("/models/{model_id:path}/predict")
    async def predict_model(model_id: str, request: Request) -> Response:
        return await predict(request, _entry_or_404(server, model_id))

    # ---- OpenAI embeddings ----------------------------------------------------------------------
    async def embeddings(request: Request, model_id: str | None) -> Response:
        body, headers = await body_of(request, s.OpenAIEmbeddingsRequest)
        chosen = model_id or body.model
        entry = _entry_or_404(server, chosen) if chosen else _default(server, Task.FEATURE_EXTRACTION)
        if Task.FEATURE_EXTRACTION not in entry.tasks:
            raise HTTPProblem(400, f"Error in `model`: {entry.model_id} is not an embedding model (feature-extraction)")
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        _at_most(server, "input", len(texts))
        vectors, tokens = await _execute(server, request, entry, headers, lambda backend: _embed(backend, texts, body.dimensions))
        data = [{"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)} for i, v in enumerate(vectors)]
        return _json({"object": "list", "data": data, "model": entry.model_id,
                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def openai_errors(request: Request, model_id: str | None) -> Response:
        """Errors in OpenAI's shape, so OpenAI clients show the message (and the field)."""
        try:
            return await embeddings(request, model_id)
        except HTTPProblem as problem:
            match = re.match(r"Error in `([^`]+)`", problem.message)
            kind = "invalid_request_error" if problem.status < 500 else "server_error"
            error = {"message": problem.message, "type": kind, "param": match.group(1) if match else None, "code": None}
            return _json({"error": error, **problem.extra}, problem.status, problem.headers)

    @app.post("/v1/embeddings")
    async def embeddings_default(request: Request) -> Response:
        return await openai_errors(request, None)

    @app.post("/models/{model_id:path}/v1/embeddings")
    async def embeddings_model(model_id: str, request: Request) -> Response:
        return await openai_errors(request, model_id)


def _default(server: Any, task: Task) -> ModelEntry:
    entry = server.registry.default_for(task)
    if entry is None:
        raise HTTPProblem(400, f"No default model is configured for task '{task.value}'")
    return entry


async def _execute(server: Any, request: Request, entry: ModelEntry, headers: dict[str, str], plan: Callable[[Any], Plan]) -> Any:
    """The answer of ``plan(backend)``, cancelled when the client leaves, as task routes run:
    in forward passes shared with concurrent requests when the model's backend batches,
    otherwise alone on an inference thread under the model's lock."""
    from .app import _ready_backend

    _, wait = options_from(None, headers)
    backend = await _ready_backend(server, entry, Job(entry.task, None, wait_for_model=wait))
    lock = server.models.lock(entry.model_id)

    def run() -> Any:
        with lock:
            raise_if_cancelled()  # the client may have left while this waited for the model
            return run_plan(backend, plan(backend))

    try:
        if server.batchers.takes(backend, entry.task):
            return await server.batchers.run(entry.model_id, backend, lambda: plan(backend), request.receive)
        return await server.jobs.run(server.models.inference, run, request.receive)
    except BackendInputError as exc:
        raise HTTPProblem(400, f"Error in `{exc.field}`: {exc.message}") from None
    except Cancelled:
        raise HTTPProblem(499, "The client closed the connection before the answer was ready") from None


def _at_most(server: Any, field: str, count: int) -> None:
    """The server's ``max_inputs`` cap, as the task routes apply it."""
    limit = server.settings.limits.max_inputs
    if count > limit:
        raise HTTPProblem(400, f"Error in `{field}`: {count} items is more than this server allows ({limit}); "
                               f"the operator can raise it with hfbridge serve --max-inputs")


def _truncate(flag: bool | None) -> bool:
    return flag is not False


def _rerank(backend: Any, kind: str, body: s.RerankRequest) -> Plan:
    from .backends.ranking import rerank_plan

    return rerank_plan(backend, kind, body.query, body.texts, truncate=_truncate(body.truncate),
                       truncation_direction=body.truncation_direction, raw_scores=body.raw_scores)


def _predict_inputs(inputs: Any) -> tuple[list[tuple[str, ...]], bool]:
    """TEI's reading: a string is one text; a list of strings one text or a pair (more is an
    error); a list of lists a batch of texts and pairs."""
    if isinstance(inputs, str):
        sequences, batch = [(inputs,)], False
    elif inputs and all(isinstance(item, str) for item in inputs):
        if len(inputs) > 2:
            raise HTTPProblem(400, f"Error in `inputs`: a list of strings is one text or a pair, got {len(inputs)} strings; send a batch as [[text], [text, text], ...]")
        sequences, batch = [tuple(inputs)], False
    elif inputs and all(isinstance(item, list) for item in inputs):
        for index, item in enumerate(inputs):
            if len(item) not in (1, 2):
                raise HTTPProblem(400, f"Error in `inputs.{index}`: a batch item is [text] or [text, text], got {len(item)} strings")
        sequences, batch = [tuple(item) for item in inputs], True
    else:
        raise HTTPProblem(400, "Error in `inputs`: expected a string, a pair [a, b] or a batch [[a], [a, b], ...]")
    for index, sequence in enumerate(sequences):
        if any(not text.strip() for text in sequence):
            raise HTTPProblem(400, f"Error in `inputs{f'.{index}' if batch else ''}`: texts must not be empty")
    return sequences, batch


def _classify(backend: Any, sequences: list[tuple[str, ...]], body: s.PredictRequest) -> Plan:
    from .backends.ranking import classify_plan

    return classify_plan(backend, sequences, truncate=_truncate(body.truncate),
                         truncation_direction=body.truncation_direction, raw_scores=body.raw_scores)


def _embed(backend: Any, texts: list[str], dimensions: int | None) -> Plan:
    """Sentence vectors (the model's own pooling and normalisation) and the tokens read, as
    a plan: ``dimensions`` is applied per request, after the shared forward pass."""
    width = _width(backend)
    if dimensions is not None and dimensions > width:
        raise BackendInputError("dimensions", f"{dimensions} is more than this model's {width} dimensions")
    inner = backend.plan(Task.FEATURE_EXTRACTION, texts, {})

    def finish(outputs: list[Any]) -> tuple[np.ndarray, int]:
        vectors = np.asarray(inner.finish(outputs), dtype=np.float32)
        if dimensions is not None and dimensions < width:
            vectors = vectors[:, :dimensions]
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms == 0, 1.0, norms)
        return vectors, sum(inner.lengths)

    return Plan(inner.rows, inner.lengths, finish)


def _width(backend: Any) -> int:
    """The model's embedding width: its hidden size once per pooling mode it concatenates."""
    hidden = getattr(backend.model.config, "hidden_size", None)
    modes = getattr(getattr(backend, "recipe", None), "pooling", ("mean",))
    if hidden is None:
        return len(backend.predict(Task.FEATURE_EXTRACTION, ["x"], {})[0])
    return int(hidden) * len(modes)


def _encode(vector: np.ndarray, encoding_format: str) -> Any:
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()
