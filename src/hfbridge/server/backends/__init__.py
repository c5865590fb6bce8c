"""Model backends: what actually runs a model for a task, one module per family of tasks.

A backend is loaded once per model and then answers requests for the tasks it declares. Each
family module exposes two tables, merged here:

* ``LOADERS``: ``{Task: loader(location, ctx) -> Backend}``, where ``location`` is something
  ``from_pretrained`` (or the family's own loader) accepts: a local folder, a file (GGUF), or a
  hub id.
* ``BUILT_MODELS`` (optional): ``{name: builder(target_dir) -> None}``, models with real
  weights trained offline from data a package ships (registry source ``builtin:NAME``).
* ``TINY_BUILDERS``: ``{Task or name: builder(target_dir) -> None}``, which writes a tiny random-weight
  model for the task into ``target_dir`` (offline: tokenizers trained locally, 2-layer
  configs), the same files on every run. Such models run the real code paths and give
  meaningless outputs: a builder leaves the ``_common.TINY_MARKER`` file in the folder, and
  loaders set :attr:`Backend.meaningless` where they find it (``_common.is_tiny``).

What the families share lives in ``_common`` (the tiny-model marker, parameter parsing, label
ranking, input-length limits) and ``_tokenizers`` (the tiny models' tokenizers).

Backends are plain synchronous Python and never touch the event loop: the app runs them in a
worker thread.

Encoder backends whose task is one forward pass also answer through a :class:`Plan`
(``batched_tasks``, ``plan`` and ``forward``): the server's batcher (``server/batching.py``)
merges the rows of concurrent requests into shared forward passes, and ``predict`` runs the same
plan alone, so a batched answer and a lone one come from one code path.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ...tasks import Task
from ..decoding import Decoding

__all__ = [
    "Backend",
    "Plan",
    "BinaryResult",
    "BackendInputError",
    "LoadContext",
    "loaders",
    "tiny_builders",
    "built_models",
]

#: family modules, imported lazily (they import torch and transformers)
_FAMILIES = ("text", "seq2seq", "generation", "embeddings", "vision", "audio", "vision_language", "transforms", "tabular", "ranking")


class BackendInputError(ValueError):
    """Input the model cannot take (no mask token, an undecodable image...): a 400 naming ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BinaryResult:
    """A binary answer (text-to-image, text-to-speech) and its content type."""

    data: bytes
    content_type: str


@dataclass
class LoadContext:
    """What a loader may use besides the location."""

    model_id: str
    cache_dir: Path
    #: the registry entry's extra settings (e.g. ``labels`` for a classifier), free-form
    options: dict[str, Any] = field(default_factory=dict)
    #: the server's continuous-batching bounds, for backends that batch generations
    decoding: Decoding = field(default_factory=Decoding)


@dataclass
class Plan:
    """One request as rows of a forward pass: what the batcher schedules.

    ``rows`` are opaque to the scheduler (a backend's own tokenized sequences: a text, a window
    of a long text, a premise-hypothesis pair); ``lengths`` are their sizes in tokens, the unit
    of the batch budget. ``finish`` gets each row's output of :meth:`Backend.forward`, in row
    order, and returns the request's answer: every per-request parameter that does not change
    the tokens (pooling, normalisation, score function, top_k...) is applied there, so rows of
    requests with different parameters share one forward pass.
    """

    rows: list[Any]
    lengths: list[int]
    finish: Callable[[list[Any]], Any]

    @classmethod
    def concat(cls, plans: list["Plan"], combine: Callable[[list[Any]], Any]) -> "Plan":
        """One plan for several (a request holding a list of texts): ``combine`` gets each
        part's answer, in order."""
        rows = [row for plan in plans for row in plan.rows]
        lengths = [length for plan in plans for length in plan.lengths]
        bounds = [0]
        for plan in plans:
            bounds.append(bounds[-1] + len(plan.rows))

        def finish(outputs: list[Any]) -> Any:
            return combine([plan.finish(outputs[start:end]) for plan, start, end in zip(plans, bounds, bounds[1:])])

        return cls(rows, lengths, finish)


class Backend(ABC):
    """A loaded model answering one or more tasks."""

    #: the tasks this backend answers (e.g. feature-extraction and sentence-similarity)
    tasks: frozenset[Task] = frozenset()
    #: True for random-weight models: real code paths, meaningless outputs
    meaningless: bool = False
    #: True when the backend takes concurrent calls itself (it batches them): the app then
    #: does not serialise its calls under the model's lock
    concurrent: bool = False

    @abstractmethod
    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        """Run the model. ``inputs`` has been validated against the task's request schema
        (binary inputs arrive as raw ``bytes``; conversational as a list of message dicts);
        ``parameters`` holds only the parameters the caller set. Returns the JSON-able body in
        the spec's shape, or a :class:`BinaryResult`. Raises :class:`BackendInputError` for
        input the model cannot use."""

    #: tasks answered as a :class:`Plan` (one forward pass), which the server batches across requests
    batched_tasks: frozenset[Task] = frozenset()

    def plan(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Plan:
        """``inputs`` as rows for :meth:`forward` (tokenized, checked: a bad input raises
        :class:`BackendInputError` here, before it joins a batch). ``batched_tasks`` only."""
        raise NotImplementedError(f"{type(self).__name__} does not batch {task.value}")

    def forward(self, rows: list[Any]) -> list[Any]:
        """One forward pass over ``rows`` (from any number of plans): one output per row, in order."""
        raise NotImplementedError(f"{type(self).__name__} does not batch")

    def stream(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Token events in TGI's format (text-generation backends only)."""
        raise BackendInputError("stream", f"streaming is not supported for {task.value}")


def _tables(name: str) -> dict[Task, Callable[..., Any]]:
    merged: dict[Task, Callable[..., Any]] = {}
    for family in _FAMILIES:
        try:
            module = importlib.import_module(f"{__name__}.{family}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{family}":
                continue  # family not written yet
            raise
        merged.update(getattr(module, name, {}))
    return merged


def loaders() -> dict[Task, Callable[[Any, LoadContext], Backend]]:
    return _tables("LOADERS")


def tiny_builders() -> dict[Task | str, Callable[[Path], None]]:
    return _tables("TINY_BUILDERS")


def built_models() -> dict[str, Callable[[Path], None]]:
    """Models with real weights trained here from data a package ships (``builtin:NAME``)."""
    return _tables("BUILT_MODELS")
