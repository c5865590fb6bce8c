"""LlamaIndex adapter tests replay cassettes recorded from ``hfbridge serve``."""

from __future__ import annotations

import os

from hfbridge.testing import DEFAULT_REPLAY_BASE_URL

BASE_URL = os.environ.get("HFBRIDGE_BASE_URL", DEFAULT_REPLAY_BASE_URL)
LLM_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
