"""The ``hfbridge`` command: ``serve`` in a real subprocess, ``models list``, bad options."""

from __future__ import annotations

import os
import signal
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


def test_batching_options_reach_the_settings() -> None:
    from hfbridge.cli import _settings, build_parser
    from hfbridge.server.decoding import Decoding

    from hfbridge.server.batching import BatchSettings

    args = build_parser().parse_args(["serve", "--decode-max-batch-size", "4", "--decode-max-prefill-tokens", "512",
                                      "--encode-max-batch-size", "8", "--encode-max-batch-wait-ms", "2.5"])
    assert _settings(args).decoding == Decoding(max_batch_size=4, max_prefill_tokens=512)
    assert _settings(args).batching == BatchSettings(max_batch_size=8, max_batch_wait_ms=2.5)
    bad = subprocess.run(_cli("serve", "--decode-max-batch-size", "0"), capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--decode-max-batch-size" in bad.stderr


# ---- tokens out of the process list; shutdown ------------------------------------------------
def _start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        _cli("serve", "--port", str(port), "--log-level", "warning", *args),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"hfbridge serve did not come up: {process.communicate()[0]}")


def test_serve_takes_tokens_from_a_file_and_the_environment(model_cache: Path, tmp_path: Path) -> None:
    from_file, from_env = "tok-from-file-0f3e9a", "tok-from-env-77b1c2"
    token_file = tmp_path / "tokens"
    token_file.write_text(f"# accepted tokens\n\n{from_file}\n")
    process, url = _start("--cache-dir", str(model_cache), "--token-file", str(token_file), env={"HFBRIDGE_SERVE_TOKENS": f"other-token, {from_env}"})
    try:
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode(errors="replace")
        assert from_file not in cmdline and from_env not in cmdline  # what `ps` shows every local user
        route = f"{url}/pipeline/no-such-task"  # answered 400 once authenticated, with no model to load
        assert requests.post(route, json={}, timeout=10).status_code == 401
        assert requests.post(route, json={}, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 403
        for token in (from_file, from_env, "other-token"):
            assert requests.post(route, json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 400
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "auth: 3 token(s) accepted" in output
    assert from_file not in output and from_env not in output


def test_a_missing_token_file_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(_cli("serve", "--token-file", str(tmp_path / "nope")), capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "--token-file" in result.stderr and "nope" in result.stderr


def test_sigterm_lets_requests_in_flight_finish_then_stops_within_the_shutdown_timeout(model_cache: Path) -> None:
    """Before, SIGTERM waited forever for a request in flight. Now a request that completes
    within the grace period is answered, and one that never completes is cut off after it."""
    grace = 2.0
    process, url = _start("--cache-dir", str(model_cache), "--shutdown-timeout", str(grace), "--body-timeout", "600")
    port = int(url.rsplit(":", 1)[1])
    body = b'{"inputs": "x"}'
    head = f"POST /pipeline/no-such-task HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    finishing = socket.create_connection(("127.0.0.1", port), timeout=30)
    stuck = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        for sock in (finishing, stuck):
            sock.sendall(head + body[:5])  # both requests are in flight, their bodies incomplete
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        time.sleep(0.3)
        finishing.sendall(body[5:])
        answer = b""
        while chunk := finishing.recv(65536):  # the server closes the connection after its answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 400") and b"no-such-task" in answer  # served during the grace period
        process.wait(timeout=grace + 30)
        stopped_after = time.monotonic() - started
    finally:
        finishing.close()
        stuck.close()
        if process.poll() is None:
            process.kill()
        output, _ = process.communicate(timeout=30)
    # uvicorn re-raises the signal it caught once it has shut down, so the parent sees SIGTERM.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output, output
    assert stopped_after < grace + 15, f"hfbridge serve took {stopped_after:.1f} s to stop after SIGTERM"
