"""The spec's response schemas as plain JSON Schema, to check the server's answers against."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

#: the API this project speaks and serves, kept in the repository (spec/)
SPEC_FILE = Path(__file__).resolve().parents[2] / "spec" / "inference-api.openapi.yaml"


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_FILE.read_text())


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = root
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return _resolve(copy.deepcopy(target), root)
        return {k: _resolve(v, root) for k, v in node.items() if k not in ("example", "examples")}
    if isinstance(node, list):
        return [_resolve(item, root) for item in node]
    return node


def response_schema(path: str, status: str = "200") -> tuple[str, dict[str, Any]]:
    """(content type, JSON schema) of ``path``'s answer with ``status``."""
    operation = spec()["paths"][path]["post"]
    content = operation["responses"][status]["content"]
    media_type, body = next(iter(content.items()))
    return media_type, _resolve(body["schema"], spec())


def task_route_paths() -> list[str]:
    return [p for p in spec()["paths"] if p.startswith("/models/{model_id}/")]
