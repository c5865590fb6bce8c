"""The ``hfbridge`` command: ``serve`` in a real subprocess, ``models list``, bad options."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hfbridge.cli", *args]


def test_serve_prints_its_models_and_answers_with_auth(model_cache: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        _cli("serve", "--port", str(port), "--cache-dir", str(model_cache), "--token", "hf_cli_test_token_0000000000", "--log-level", "warning"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            raise AssertionError("hfbridge serve did not come up")
        body = {"inputs": "Paris is the [MASK].", "options": {"wait_for_model": True}}
        assert requests.post(f"{url}/pipeline/fill-mask", json=body, timeout=60).status_code == 401
        ok = requests.post(f"{url}/pipeline/fill-mask", json=body, headers={"Authorization": "Bearer hf_cli_test_token_0000000000"}, timeout=120)
        assert ok.status_code == 200 and ok.json()[0]["sequence"]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/models/sentence-transformers/all-MiniLM-L6-v2" in output
    assert "[random weights: meaningless outputs]" in output
    assert "auth: 1 token(s) accepted" in output
    assert "hf_cli_test_token_0000000000" not in output


def test_models_list_labels_tiny_models(model_cache: Path) -> None:
    result = subprocess.run(_cli("models", "list", "--cache-dir", str(model_cache)), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "MEANINGLESS" in lines["hfbridge/tiny-fill-mask"] and "default for fill-mask" in lines["hfbridge/tiny-fill-mask"]
    assert "real weights" in lines["sentence-transformers/all-MiniLM-L6-v2"]


def test_bad_options_fail_with_a_clear_message(tmp_path: Path) -> None:
    rate = subprocess.run(_cli("serve", "--rate-limit", "lots"), capture_output=True, text=True, timeout=120)
    assert rate.returncode != 0 and "--rate-limit" in rate.stderr
    broken = tmp_path / "models.toml"
    broken.write_text('[models."x/y"]\nsource = "ftp:nowhere"\ntasks = ["fill-mask"]\n')
    registry = subprocess.run(_cli("models", "list", "--models", str(broken)), capture_output=True, text=True, timeout=120)
    assert registry.returncode != 0 and "source must be one of" in registry.stderr and "x/y" in registry.stderr
