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
