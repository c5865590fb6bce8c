"""What the encoder backends share to answer through a :class:`~.Plan`: rows tokenized one
sequence at a time, padded into one forward pass, and outputs cut back into rows.

A row is the tokenizer's encoding of one sequence without padding (``input_ids``,
``attention_mask`` and ``token_type_ids`` where the model has them, as lists). Rows from
different requests are padded together only here, at the forward pass, so a request's tokens
never depend on who it shares a batch with; with the attention mask an encoder's output for a
row is the same (to float rounding) whatever the batch holds.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..cancellation import raise_if_cancelled
from . import Backend, Plan

__all__ = ["ALONE_BATCH_SIZE", "row", "pad_rows", "split_outputs", "run_plan"]

#: rows per forward pass when a plan runs alone (``predict``): bounds memory for long input lists
ALONE_BATCH_SIZE = 32


def row(encoding: Mapping[str, Any], index: int | None = None) -> dict[str, list[int]]:
    """One row from a tokenizer's encoding (``index``: which sequence of an encoding that
    holds several, e.g. the windows of a long text)."""
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return {key: list(encoding[key] if index is None else encoding[key][index]) for key in keys if key in encoding}


def pad_rows(rows: list[Mapping[str, list[int]]], pad_id: int, side: str = "right") -> dict[str, torch.Tensor]:
    """The rows as one padded batch of tensors, padded on the tokenizer's side."""
    longest = max(len(r["input_ids"]) for r in rows)
    batch: dict[str, torch.Tensor] = {}
    for key in rows[0]:
        fill = pad_id if key == "input_ids" else 0
        tensor = torch.full((len(rows), longest), fill, dtype=torch.long)
        for i, r in enumerate(rows):
            values = torch.tensor(r[key], dtype=torch.long)
            if side == "left":
                tensor[i, longest - len(values):] = values
            else:
                tensor[i, : len(values)] = values
        batch[key] = tensor
    return batch


def split_outputs(output: torch.Tensor, rows: list[Mapping[str, list[int]]], side: str = "right") -> list[torch.Tensor]:
    """A batch output cut back into rows: per-token outputs (batch, length, ...) keep only
    the row's real tokens; per-sequence outputs (batch, ...) are the row's own."""
    if output.dim() < 3:
        return list(output)
    longest = output.shape[1]
    pieces = []
    for i, r in enumerate(rows):
        length = len(r["input_ids"])
        pieces.append(output[i, longest - length:] if side == "left" else output[i, :length])
    return pieces


def run_plan(backend: Backend, plan: Plan, batch_size: int = ALONE_BATCH_SIZE) -> Any:
    """``plan`` alone, as ``predict`` answers: rows longest first (short rows are not padded to
    a long one's length), :data:`ALONE_BATCH_SIZE` per forward pass, cancellable between passes."""
    order = sorted(range(len(plan.rows)), key=lambda i: -plan.lengths[i])
    outputs: list[Any] = [None] * len(plan.rows)
    for start in range(0, len(order), batch_size):
        raise_if_cancelled()
        chunk = order[start:start + batch_size]
        for index, output in zip(chunk, backend.forward([plan.rows[i] for i in chunk])):
            outputs[index] = output
    return plan.finish(outputs)
