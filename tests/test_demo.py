"""The main job: ``hfbridge demo`` on the embedded server, as the README's first command runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_runs_every_step_and_exits_0() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, "-m", "hfbridge.cli", "demo"], capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "hfbridge serve is running in-process at http://127.0.0.1:" in out
    assert "A: The capital of France is Paris." in out  # LCEL chain, real SmolLM2, streamed
    assert re.search(r"answer: .*1889", out)  # LlamaIndex RAG over real MiniLM embeddings
    assert "universe" in out.lower()  # the speech tool call, real Whisper tiny.en
    # both agents call the speech tool on the user's file and answer with its words
    assert "LangChain ai: calls automatic_speech_recognition({'audio': 'speech.flac'})" in out
    assert re.search(r"LangChain ai: '.*universe.*exist", out, re.IGNORECASE)
    assert "LlamaIndex tool: automatic_speech_recognition({'audio': 'speech.flac'})" in out
    assert re.search(r"LlamaIndex answer: '.*universe.*exist", out, re.IGNORECASE)
    assert "done in" in out
