"""Fixtures for the server's tests: sample media (``model_cache`` and ``live_server`` are suite-wide,
in ``tests/conftest.py``)."""

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
