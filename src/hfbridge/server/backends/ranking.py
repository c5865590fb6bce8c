"""Scoring texts against a query (``/rerank``) and classifying texts or text pairs (TEI's
``/predict``), on backends already loaded for their own tasks.

Two kinds of reranker, as a registry entry's ``options.rerank`` says:

* ``cross-encoder``: a sequence-classification model with one output (MS MARCO-style rerankers)
  reads each (query, text) pair together; the score is the sigmoid of its logit (the logit
  itself with ``raw_scores``), as TEI gives it;
* ``bi-encoder``: an embedding model embeds the query and each text apart; the score is their
  cosine similarity. Weaker than a cross-encoder, but it ranks meaningfully with real weights.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from . import BackendInputError, Plan
from ._batch import row, run_plan
from ._common import MEANINGLESS, TINY_MAX_POSITIONS, write_tiny_marker

__all__ = ["rerank_scores", "rerank_plan", "classify_sequences", "classify_plan", "TINY_BUILDERS"]

@contextlib.contextmanager
def _truncation_side(tokenizer: Any, direction: str) -> Iterator[None]:
    """TEI's ``truncation_direction`` for one request (callers hold the model's lock)."""
    saved = tokenizer.truncation_side
    tokenizer.truncation_side = direction.lower()
    try:
        yield
    finally:
        tokenizer.truncation_side = saved


def rerank_scores(backend: Any, kind: str, query: str, texts: list[str], *, truncate: bool = True,
                  truncation_direction: str = "right", raw_scores: bool = False) -> list[float]:
    """One relevance score per text, in the order of ``texts``."""
    return run_plan(backend, rerank_plan(backend, kind, query, texts, truncate=truncate,
                                         truncation_direction=truncation_direction, raw_scores=raw_scores))


def rerank_plan(backend: Any, kind: str, query: str, texts: list[str], *, truncate: bool = True,
                truncation_direction: str = "right", raw_scores: bool = False) -> Plan:
    """:func:`rerank_scores` as a plan: one row per (query, text) pair (cross-encoder), or the
    query and each text (bi-encoder), so the server batches it with other requests."""
    if kind == "bi-encoder":
        with _truncation_side(backend.tokenizer, truncation_direction):
            try:
                rows = backend._rows([query, *texts], truncate)
            except BackendInputError as exc:
                raise BackendInputError("texts", exc.message) from None

        def cosines(matrices: list[torch.Tensor]) -> list[float]:
            from .embeddings import _pooled

            vectors = torch.nn.functional.normalize(_pooled(matrices, backend.recipe.pooling), dim=-1)
            return (vectors[1:] @ vectors[0]).tolist()

        return Plan(rows, [len(r["input_ids"]) for r in rows], cosines)
    labels = backend.model.config.num_labels
    rows = _pair_rows(backend, [(query, text) for text in texts], truncate, truncation_direction, "texts")
    if labels != 1:
        raise BackendInputError("model", f"a cross-encoder reranker has one output; this model has {labels} labels")

    def scores(outputs: list[np.ndarray]) -> list[float]:
        logits = np.stack(outputs)[:, 0]
        return (logits if raw_scores else 1.0 / (1.0 + np.exp(-logits))).tolist()

    return Plan(rows, [len(r["input_ids"]) for r in rows], scores)


def classify_sequences(backend: Any, sequences: list[tuple[str, ...]], *, truncate: bool = True,
                       truncation_direction: str = "right", raw_scores: bool = False) -> list[list[dict[str, Any]]]:
    """TEI's ``/predict``: every label with its score, best first, per text or text pair. Scores
    are a softmax over labels (a sigmoid for a one-output model), or the logits with
    ``raw_scores``."""
    return run_plan(backend, classify_plan(backend, sequences, truncate=truncate,
                                           truncation_direction=truncation_direction, raw_scores=raw_scores))


def classify_plan(backend: Any, sequences: list[tuple[str, ...]], *, truncate: bool = True,
                  truncation_direction: str = "right", raw_scores: bool = False) -> Plan:
    """:func:`classify_sequences` as a plan: one row per text or pair."""
    rows = _pair_rows(backend, sequences, truncate, truncation_direction, "inputs")

    def labelled(outputs: list[np.ndarray]) -> list[list[dict[str, Any]]]:
        logits = np.stack(outputs)
        if raw_scores:
            scores = logits
        elif logits.shape[1] == 1:
            scores = 1.0 / (1.0 + np.exp(-logits))
        else:
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            scores = shifted / shifted.sum(axis=1, keepdims=True)
        labels = backend.id2label
        return [
            sorted(({"score": float(score), "label": labels[i]} for i, score in enumerate(r)), key=lambda x: x["score"], reverse=True)
            for r in scores
        ]

    return Plan(rows, [len(r["input_ids"]) for r in rows], labelled)


def _pair_rows(backend: Any, sequences: list[tuple[str, ...]], truncate: bool, direction: str, field: str) -> list[dict[str, list[int]]]:
    """Rows of a sequence-classification backend for texts or pairs, in order: one sequence at
    a time, padded together only at the forward pass (so texts and pairs mix in one pass)."""
    tokenizer, limit = backend.tokenizer, backend.max_length
    if not truncate:
        for index, sequence in enumerate(sequences):
            length = len(tokenizer(*sequence).input_ids)
            if length > limit:
                raise BackendInputError(f"{field}.{index}", f"is {length} tokens with the query; the model reads at most {limit} (set truncate to cut it)")
    with _truncation_side(tokenizer, direction):
        return [row(tokenizer(*sequence, truncation=True, max_length=limit)) for sequence in sequences]


def build_tiny_cross_encoder(target: Path) -> None:
    """A 2-layer BERT with one relevance logit per (query, text) pair."""
    from transformers import BertConfig, BertForSequenceClassification

    from ._tokenizers import train_wordpiece

    target = Path(target)
    tokenizer = train_wordpiece(target)
    tokenizer.model_max_length = TINY_MAX_POSITIONS
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=TINY_MAX_POSITIONS, pad_token_id=tokenizer.pad_token_id, num_labels=1,
        initializer_range=0.5,  # so that different pairs get visibly different scores
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    write_tiny_marker(target, f"tiny BERT cross-encoder (one relevance logit) for reranking; {MEANINGLESS}")


TINY_BUILDERS = {"cross-encoder": build_tiny_cross_encoder}
