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

from ...tasks import Task
from . import BackendInputError
from ._common import MEANINGLESS, TINY_MAX_POSITIONS, write_tiny_marker

__all__ = ["rerank_scores", "classify_sequences", "TINY_BUILDERS"]

#: pairs per forward pass
BATCH_SIZE = 32


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
    if kind == "bi-encoder":
        return _cosine_scores(backend, query, texts, truncate, truncation_direction)
    logits = _pair_logits(backend, [(query, text) for text in texts], truncate, truncation_direction, "texts")
    if logits.shape[1] != 1:
        raise BackendInputError("model", f"a cross-encoder reranker has one output; this model has {logits.shape[1]} labels")
    scores = logits[:, 0]
    return (scores if raw_scores else 1.0 / (1.0 + np.exp(-scores))).tolist()


def classify_sequences(backend: Any, sequences: list[tuple[str, ...]], *, truncate: bool = True,
                       truncation_direction: str = "right", raw_scores: bool = False) -> list[list[dict[str, Any]]]:
    """TEI's ``/predict``: every label with its score, best first, per text or text pair. Scores
    are a softmax over labels (a sigmoid for a one-output model), or the logits with
    ``raw_scores``."""
    logits = _pair_logits(backend, sequences, truncate, truncation_direction, "inputs")
    if raw_scores:
        scores = logits
    elif logits.shape[1] == 1:
        scores = 1.0 / (1.0 + np.exp(-logits))
    else:
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        scores = shifted / shifted.sum(axis=1, keepdims=True)
    labels = backend.id2label
    return [
        sorted(({"score": float(score), "label": labels[i]} for i, score in enumerate(row)), key=lambda x: x["score"], reverse=True)
        for row in scores
    ]


def _pair_logits(backend: Any, sequences: list[tuple[str, ...]], truncate: bool, direction: str, field: str) -> np.ndarray:
    """Logits of a sequence-classification backend for texts or pairs, in order."""
    tokenizer, limit = backend.tokenizer, backend.max_length
    if not truncate:
        for index, sequence in enumerate(sequences):
            length = len(tokenizer(*sequence).input_ids)
            if length > limit:
                raise BackendInputError(f"{field}.{index}", f"is {length} tokens with the query; the model reads at most {limit} (set truncate to cut it)")
    rows: list[np.ndarray] = []
    with _truncation_side(tokenizer, direction):
        for start in range(0, len(sequences), BATCH_SIZE):
            batch = sequences[start:start + BATCH_SIZE]
            firsts = [s[0] for s in batch]
            seconds = [s[1] for s in batch] if all(len(s) == 2 for s in batch) else None
            if seconds is None and any(len(s) == 2 for s in batch):
                rows.extend(_pair_logits(backend, [s], truncate, direction, field) for s in batch)
                continue
            encoding = tokenizer(firsts, seconds, padding=True, truncation=True, max_length=limit, return_tensors="pt")
            with torch.inference_mode():
                rows.append(backend.model(**encoding).logits.float().numpy())
    return np.concatenate(rows, axis=0)


def _cosine_scores(backend: Any, query: str, texts: list[str], truncate: bool, direction: str) -> list[float]:
    with _truncation_side(backend.tokenizer, direction):
        try:
            vectors = backend._sentence_vectors([query, *texts], backend.recipe.pooling, truncate)
        except BackendInputError as exc:
            raise BackendInputError("texts", exc.message) from None
    vectors = torch.nn.functional.normalize(vectors, dim=-1)
    return (vectors[1:] @ vectors[0]).tolist()


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
