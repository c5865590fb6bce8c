"""Loading models in the background and knowing, at any moment, how long a load has left.

The app never blocks its event loop on a load: the first request for a model starts it and is
answered 503 with ``estimated_time`` (as the hosted API does), unless it asked to wait. Loads run
one at a time on a dedicated thread (two cores do not gain from parallel loads); inference runs on
a worker pool, one call at a time per model (encoder tasks: one forward pass at a time, shared by
concurrent requests, on the model's batch thread; see :mod:`.batching`; generation backends batch
concurrent calls instead, see ``backends/continuous.py``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from .._version import __version__
from .backends import Backend, LoadContext, built_models, loaders, tiny_builders
from .backends._common import is_tiny
from .decoding import Decoding
from .registry import ModelEntry, Registry, package_path

__all__ = ["ModelManager", "LoadState", "ModelLoadFailed"]

logger = logging.getLogger("hfbridge.server")

#: a first load of an unknown model is expected to take this long (seconds)
DEFAULT_LOAD_ESTIMATE = 10.0


class LoadState(str, Enum):
    UNLOADED = "unloaded"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class ModelLoadFailed(RuntimeError):
    """A model's weights could not be loaded; the message says why and what to do."""


@dataclass
class _Handle:
    entry: ModelEntry
    state: LoadState = LoadState.UNLOADED
    backend: Backend | None = None
    error: str | None = None
    started: float = 0.0
    future: Future | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelManager:
    def __init__(self, registry: Registry, cache_dir: Path, *, workers: int = 4, decoding: Decoding | None = None) -> None:
        _quiet_transformers()
        self.registry = registry
        self.decoding = decoding or Decoding()
        self.cache_dir = cache_dir
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._handles = {entry.model_id: _Handle(entry) for entry in registry}
        self._guard = threading.Lock()
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hfbridge-load")
        self.inference = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hfbridge-infer")
        self._times_file = cache_dir / "load_times.json"
        self._times = self._read_times()

    # ---- state ----------------------------------------------------------------------------------
    def state(self, model_id: str) -> LoadState:
        return self._handles[model_id].state

    def error(self, model_id: str) -> str | None:
        return self._handles[model_id].error

    def backend(self, model_id: str) -> Backend | None:
        handle = self._handles[model_id]
        return handle.backend if handle.state is LoadState.READY else None

    def lock(self, model_id: str) -> threading.Lock:
        return self._handles[model_id].lock

    def estimated_time(self, model_id: str) -> float:
        """Seconds the current load has left: the last measured load time minus time spent,
        rounded up to whole seconds (an estimate; finer digits would only make two recordings
        of the same exchange differ)."""
        handle = self._handles[model_id]
        expected = self._times.get(model_id, DEFAULT_LOAD_ESTIMATE)
        spent = time.monotonic() - handle.started if handle.state is LoadState.LOADING else 0.0
        return float(math.ceil(max(expected - spent, 0.5)))

    def is_cached(self, entry: ModelEntry) -> bool:
        """Whether loading will be fast: weights present locally (built, converted or shipped)."""
        if entry.kind == "tiny":
            return is_tiny(self._tiny_dir(entry.target))
        if entry.kind == "builtin":
            return (self._built_dir(entry.target) / "config.json").is_file()
        if entry.kind == "package":
            try:
                path = package_path(entry.target)
            except FileNotFoundError:
                return False
            if path.suffix != ".gguf":
                return True
            converted = self.cache_dir / "gguf"
            return converted.is_dir() and any(converted.iterdir())
        if entry.kind == "path":
            return self._path(entry).exists()
        return False

    # ---- loading ----------------------------------------------------------------------------------
    def start_loading(self, model_id: str) -> Future:
        """Start loading (once); the future resolves to the backend or raises ModelLoadFailed."""
        with self._guard:
            handle = self._handles[model_id]
            if handle.future is None or handle.state is LoadState.FAILED and handle.future.done() and _retryable(handle):
                handle.state = LoadState.LOADING
                handle.error = None
                handle.started = time.monotonic()
                handle.future = self._loader.submit(self._load, handle)
            return handle.future

    def _load(self, handle: _Handle) -> Backend:
        entry = handle.entry
        started = time.monotonic()
        try:
            location = self.location(entry)
            loader = loaders().get(entry.task)
            if loader is None:
                raise ModelLoadFailed(f"no backend is installed for task {entry.task.value!r}")
            backend = loader(location, LoadContext(entry.model_id, self.cache_dir, dict(entry.options), self.decoding))
            missing = set(entry.tasks) - set(backend.tasks)
            if missing:
                raise ModelLoadFailed(f"its backend does not serve {sorted(t.value for t in missing)}")
        except ModelLoadFailed as exc:
            return self._failed(handle, str(exc))
        except Exception as exc:  # a load can fail in many libraries' ways; all end the same
            logger.exception("loading %s failed", entry.model_id)
            return self._failed(handle, f"{type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - started
        handle.backend = backend
        handle.state = LoadState.READY
        self._times[entry.model_id] = round(elapsed, 1)
        self._write_times()
        logger.info("loaded %s in %.1fs", entry.model_id, elapsed)
        return backend

    def _failed(self, handle: _Handle, message: str) -> Any:
        handle.state = LoadState.FAILED
        handle.error = f"Model {handle.entry.model_id} could not be loaded: {message}"
        raise ModelLoadFailed(handle.error)

    def location(self, entry: ModelEntry) -> Any:
        """What the backend loader gets: a folder, a file, or a hub id."""
        if entry.kind == "package":
            return package_path(entry.target)
        if entry.kind == "path":
            path = self._path(entry)
            if not path.exists():
                raise ModelLoadFailed(f"the folder {path} does not exist")
            return path
        if entry.kind == "tiny":
            return self._tiny(entry.target)
        if entry.kind == "builtin":
            return self._built(entry.target)
        _check_hub_reachable(entry.target)
        return entry.target

    def _path(self, entry: ModelEntry) -> Path:
        path = Path(entry.target).expanduser()
        return path if path.is_absolute() or entry.root is None else entry.root / path

    def _tiny_dir(self, name: str) -> Path:
        return self.cache_dir / "tiny" / __version__ / str(name)

    def _tiny(self, name: str) -> Path:
        """A tiny random-weight model (``name`` is its task, or another builder's name)."""
        builder = tiny_builders().get(name)
        if builder is None:
            raise ModelLoadFailed(f"no tiny-model builder for {name!r}")
        return self._build_once(self._tiny_dir(name), builder, is_tiny)

    def _built_dir(self, name: str) -> Path:
        return self.cache_dir / "built" / __version__ / name

    def _built(self, name: str) -> Path:
        """A model trained here, once, from data that ships in a package (real weights)."""
        builder = built_models().get(name)
        if builder is None:
            raise ModelLoadFailed(f"no built-in model {name!r}; known: {', '.join(sorted(built_models()))}")
        return self._build_once(self._built_dir(name), builder, lambda folder: (folder / "config.json").is_file())

    @staticmethod
    def _build_once(target: Path, builder: Any, done: Any) -> Path:
        """``builder`` writes into a scratch folder renamed into place, so a crash never leaves
        a half-built model behind and concurrent processes do not clash."""
        if done(target):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            builder(scratch)
            if target.exists():  # another process finished first
                return target
            os.replace(scratch, target)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)
        return target

    def preload(self, model_ids: list[str] | None = None) -> list[Future]:
        return [self.start_loading(mid) for mid in (model_ids or list(self._handles))]

    def close(self) -> None:
        self._loader.shutdown(wait=False, cancel_futures=True)
        self.inference.shutdown(wait=False, cancel_futures=True)

    # ---- measured load times --------------------------------------------------------------------
    def _read_times(self) -> dict[str, float]:
        try:
            data = json.loads(self._times_file.read_text())
        except (OSError, ValueError):
            return {}
        return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}

    def _write_times(self) -> None:
        try:
            self._times_file.write_text(json.dumps(self._times, indent=1, sort_keys=True))
        except OSError as exc:
            logger.warning("cannot record load times in %s: %s", self._times_file, exc)


def _quiet_transformers() -> None:
    """Progress bars and load reports (transformers', diffusers') belong in a terminal
    session, not in a server's log."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # the backends will say what is missing when a model loads
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        from diffusers.utils import logging as diffusers_logging
    except ImportError:  # text-to-image is optional
        return
    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()


def _retryable(handle: _Handle) -> bool:
    """A failed hub download may succeed later (network back); a broken local source will not."""
    return handle.entry.kind == "hub"


def _check_hub_reachable(model_id: str) -> None:
    """Fail fast and clearly instead of letting a download hang without network."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        try:
            from huggingface_hub import snapshot_download

            snapshot_download(model_id, local_files_only=True)
            return
        except Exception as exc:  # not in the local cache, whatever the library calls it
            raise ModelLoadFailed(
                f"hub:{model_id} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                f"download it once with network, or use a path: or package: source ({type(exc).__name__})"
            ) from None
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
    except OSError as exc:
        raise ModelLoadFailed(
            f"hub:{model_id} needs network, and huggingface.co is unreachable ({exc}); "
            "use a path: or package: source offline"
        ) from None
