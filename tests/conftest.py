"""Suite-wide settings: nothing here may reach beyond 127.0.0.1 or download from a hub."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite must not pick up a developer's real token or endpoint.
for name in ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN", "HF_INFERENCE_ENDPOINT"):
    os.environ.pop(name, None)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """Built tiny models and converted weights persist here between runs (gitignored)."""
    path = Path(os.environ.get("HFBRIDGE_CACHE", REPO / ".cache" / "hfbridge"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def live_server(model_cache: Path) -> Iterator[Any]:
    """``hfbridge serve`` with the built-in registry on a free port, every model loaded; one
    for the whole session (the server's tests, the docs' snippets, record-then-replay)."""
    from hfbridge.server.app import ServerSettings
    from hfbridge.server.runner import EmbeddedServer

    server = EmbeddedServer(ServerSettings(cache_dir=model_cache)).start()
    server.wait_until_loaded([entry.model_id for entry in server.settings.registry])
    yield server
    server.stop()
