"""Suite-wide settings: nothing here may reach beyond 127.0.0.1 or download from a hub."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite must not pick up a developer's real token or endpoint.
for name in ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN", "HF_INFERENCE_ENDPOINT"):
    os.environ.pop(name, None)
