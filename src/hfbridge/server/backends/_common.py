"""Helpers the backend families share: the tiny-model marker, parameter parsing, label
ranking for classifiers, input-length limits and small tiny-builder settings.

One copy here keeps the families from drifting apart on rules that must agree (what marks a
model as meaningless, how a classifier's scores are normalised by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from pydantic import BaseModel, ValidationError

from ...tasks import TASKS, Task
from ..cancellation import is_cancelled, raise_if_cancelled
from . import Backend, BackendInputError, LoadContext

__all__ = [
    "TINY_MARKER",
    "TINY_MAX_POSITIONS",
    "MEANINGLESS",
    "is_tiny",
    "write_tiny_marker",
    "label_config",
    "parse_parameters",
    "default_function_to_apply",
    "rank_labels",
    "input_limit",
    "location_loader",
    "cancellable_generate",
]

#: file a tiny builder writes into its folder; its presence marks the outputs as meaningless
TINY_MARKER = "HFBRIDGE_TINY"
#: tiny text models get few positions so that tests reach the long-input paths (windows, truncation)
TINY_MAX_POSITIONS = 64
#: how tiny builders' descriptions end
MEANINGLESS = "random weights, outputs are meaningless"
#: tokenizers saved without ``model_max_length`` report a huge sentinel instead of a limit
_NO_LIMIT = 1_000_000


# --------------------------------------------------------------------------------------------
# Tiny random-weight models
# --------------------------------------------------------------------------------------------
def is_tiny(location: Any) -> bool:
    """Whether ``location`` is a folder written by a tiny builder (random weights)."""
    return (Path(location) / TINY_MARKER).is_file()


def write_tiny_marker(target: Path, description: str) -> None:
    """Leave the marker that makes loaders flag the model as meaningless; ``description`` says
    what the model is."""
    (Path(target) / TINY_MARKER).write_text(description + "\n", encoding="utf-8")


def label_config(names: list[str]) -> dict[str, Any]:
    """Config keywords giving a tiny classifier readable labels."""
    return {"num_labels": len(names), "id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------
def parse_parameters(task: Task, parameters: Mapping[str, Any]) -> BaseModel:
    """The caller's parameters as the task's typed model, so each backend reads attributes
    instead of re-checking types; a bad value is a :class:`BackendInputError` naming it.

    The app validates too, but binary tasks carry a free-form ``parameters`` mapping in their
    JSON body, and a backend must never turn a wrong type into an unhandled exception.
    """
    model = TASKS[task].parameters_model
    assert model is not None, f"{task} has no parameters model"
    try:
        return model.model_validate(dict(parameters))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "parameters"
        raise BackendInputError(field, error["msg"]) from None


def default_function_to_apply(config: Any) -> str:
    """The score function a classifier uses when the caller names none, as transformers'
    pipelines decide it: independent labels (or a single score) are sigmoids, others a softmax."""
    multi = getattr(config, "problem_type", None) == "multi_label_classification"
    return "sigmoid" if multi or config.num_labels == 1 else "softmax"


def rank_labels(logits: torch.Tensor, config: Any, top_k: int | None, function_to_apply: str | None) -> list[dict[str, Any]]:
    """``[{"label", "score"}]`` best first (at most ``top_k``, default 5), as transformers'
    image and audio classification pipelines give it, with the same default score function so
    that scores match the hosted API's."""
    if function_to_apply is None:
        function_to_apply = default_function_to_apply(config)
    scores = logits.float()
    if function_to_apply == "softmax":
        scores = scores.softmax(dim=-1)
    elif function_to_apply == "sigmoid":
        scores = scores.sigmoid()
    count = min(top_k or 5, scores.shape[-1])
    values, indices = scores.topk(count)
    return [
        {"label": config.id2label[int(index)], "score": float(value)}
        for value, index in zip(values.tolist(), indices.tolist())
    ]


def input_limit(tokenizer: Any, config: Any, default: int | None = 512) -> int | None:
    """The most tokens the model takes in one input.

    The tokenizer's ``model_max_length`` is authoritative when saved, but many checkpoints leave
    it unset (a huge sentinel), and then the position table of the config is the real limit.
    Models with relative positions and no saved limit (T5) get ``default``: BERT's customary
    512, or None where the caller reads "no limit" as "do not truncate".
    """
    candidates = (tokenizer.model_max_length, getattr(config, "max_position_embeddings", None))
    return min((int(n) for n in candidates if n and n < _NO_LIMIT), default=default)


def cancellable_generate(model: Any, **kwargs: Any) -> Any:
    """``model.generate(**kwargs)`` that stops after the current step when the request is
    cancelled (its client went away), raising :class:`~hfbridge.server.cancellation.Cancelled`."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopWhenCancelled(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
            return torch.full((input_ids.shape[0],), is_cancelled(), dtype=torch.bool)

    output = model.generate(**kwargs, stopping_criteria=StoppingCriteriaList([StopWhenCancelled()]))
    raise_if_cancelled()
    return output


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def location_loader(backend_class: Callable[[Any], Backend]) -> Callable[[Any, LoadContext], Backend]:
    """A ``LOADERS`` entry for a backend built from the location alone (no load context)."""

    def load(location: Any, ctx: LoadContext) -> Backend:
        return backend_class(location)

    return load
