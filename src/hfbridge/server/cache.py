"""A bounded cache of answers for ``use_cache``: identical deterministic requests answered once."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import orjson

from ..tasks import Task

__all__ = ["AnswerCache", "cache_key", "is_deterministic"]


def is_deterministic(task: Task, parameters: dict[str, Any]) -> bool:
    """Sampling without a seed gives a new answer each time: never cache it."""
    if task in (Task.TEXT_GENERATION, Task.CONVERSATIONAL):
        sampling = parameters.get("do_sample")
        if sampling is None:
            sampling = any(k in parameters for k in ("temperature", "top_p", "top_k", "typical_p")) and parameters.get("temperature") != 0
        return not sampling or "seed" in parameters
    if task is Task.TEXT_TO_IMAGE:
        return "seed" in parameters
    return True


def cache_key(model_id: str, task: Task, inputs: Any, parameters: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(f"{model_id}\0{task.value}\0".encode())
    digest.update(inputs if isinstance(inputs, bytes) else orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS))
    digest.update(orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


class AnswerCache:
    """LRU bounded both in entries and in bytes (images and audio can be large)."""

    def __init__(self, max_entries: int = 512, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, body: bytes, media_type: str) -> None:
        if self.max_entries <= 0 or len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old[0])
            self._items[key] = (body, media_type)
            self._size += len(body)
            while len(self._items) > self.max_entries or self._size > self.max_bytes:
                _, (evicted, _) = self._items.popitem(last=False)
                self._size -= len(evicted)

    def __len__(self) -> int:
        return len(self._items)
