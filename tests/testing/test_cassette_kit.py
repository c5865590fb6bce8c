"""The vcr configuration and the pytest plugin: tokens never recorded, binary bodies byte for
byte (sync and async), missing cassettes fail in CI mode, and every committed cassette is clean."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from hfbridge import AsyncInferenceClient, InferenceClient
from hfbridge.testing import TOKEN_PLACEHOLDER, looks_like_token, make_vcr
from tests.scripted_server import Reply, ScriptedServer

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
TOKEN = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
PNG = (REPO / "tests" / "assets" / "image.png").read_bytes()


def committed_cassettes() -> list[Path]:
    return sorted((REPO / "cassettes").rglob("*.yaml"))


def test_there_are_committed_cassettes() -> None:
    assert len(committed_cassettes()) > 50


@pytest.mark.parametrize("path", committed_cassettes(), ids=lambda p: str(p.relative_to(REPO / "cassettes")))
def test_no_committed_cassette_holds_a_token(path: Path) -> None:
    raw = path.read_bytes()
    assert not looks_like_token(raw), f"{path} holds something shaped like a Hugging Face token"
    for match in re.finditer(rb"Bearer ([^\s'\"]+)", raw):
        assert match.group(1).decode() in (TOKEN_PLACEHOLDER, "<HF_TOKEN>"), f"{path}: a Bearer value was recorded"


def _record(kind: str, tmp_path: Path, server: ScriptedServer) -> Any:
    recorder = make_vcr(tmp_path, "once")

    async def run_async() -> Any:
        async with AsyncInferenceClient(server.url, token=TOKEN) as client:
            image = await client.text_to_image("a cat", model="org/m")
            labels = await client.image_classification(PNG, model="org/m")
            return image, labels

    with recorder.use_cassette(f"{kind}.yaml"):
        if kind == "sync":
            with InferenceClient(server.url, token=TOKEN) as client:
                return client.text_to_image("a cat", model="org/m"), client.image_classification(PNG, model="org/m")
        return asyncio.run(run_async())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_recording_scrubs_tokens_and_keeps_binary_bodies(kind: str, tmp_path: Path) -> None:
    with ScriptedServer() as server:
        server.on("/models/org/m/text-to-image", Reply(body=PNG, headers={"Content-Type": "image/png", "X-Echo": f"token {TOKEN}"}))
        server.on("/models/org/m/image-classification", Reply(body=[{"label": f"echo {TOKEN}", "score": 1.0}]))
        recorded_image, _ = _record(kind, tmp_path, server)
        assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"  # the real request carried it
    raw = (tmp_path / f"{kind}.yaml").read_bytes()
    assert TOKEN.encode() not in raw and not looks_like_token(raw)
    interactions = yaml.safe_load(raw)["interactions"]
    headers = {k.lower(): v for k, v in interactions[0]["request"]["headers"].items()}
    assert headers["authorization"] == [TOKEN_PLACEHOLDER]
    response_headers = {k.lower(): v for k, v in interactions[0]["response"]["headers"].items()}
    assert response_headers["x-echo"] == [f"token {TOKEN_PLACEHOLDER}"]
    assert interactions[1]["request"]["body"] == PNG  # raw image upload, byte for byte
    # replay with no server at all: the bytes come back identical
    replayer = make_vcr(tmp_path, "none")
    with replayer.use_cassette(f"{kind}.yaml"):
        if kind == "sync":
            with InferenceClient(server.url, token=TOKEN) as client:
                replayed = client.text_to_image("a cat", model="org/m")
                labels = client.image_classification(PNG, model="org/m")
        else:
            async def run() -> Any:
                async with AsyncInferenceClient(server.url, token=TOKEN) as client:
                    return await client.text_to_image("a cat", model="org/m"), await client.image_classification(PNG, model="org/m")

            replayed, labels = asyncio.run(run())
    assert bytes(replayed) == PNG == bytes(recorded_image) and replayed.content_type == "image/png"
    assert labels[0].label == f"echo {TOKEN_PLACEHOLDER}"


USER_TEST = '''
import pytest
from hfbridge import InferenceClient

@pytest.mark.hf_cassette
def test_my_call(hf_base_url):
    with InferenceClient(hf_base_url, token=False) as client:
        assert client.fill_mask("Paris is the [MASK].", model="org/m")[0].token_str == "capital"
'''


def test_plugin_records_once_replays_and_fails_without_a_cassette_in_ci_mode(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    with ScriptedServer() as server:
        server.on("/models/org/m/fill-mask", Reply(body=[{"sequence": "Paris is the capital.", "score": 0.9, "token": 1, "token_str": "capital"}]))
        monkeypatch.setenv("HFBRIDGE_BASE_URL", server.url)
        monkeypatch.delenv("CI", raising=False)
        missing = pytester.runpytest("-p", "no:cacheprovider", "--hf-record-mode=none")
        missing.assert_outcomes(failed=1)
        assert "CannotOverwriteExistingCassetteException" in missing.stdout.str()
        assert server.requests == []  # nothing reached the network
        recorded = pytester.runpytest("-p", "no:cacheprovider", "--hf-record-mode=once")
        recorded.assert_outcomes(passed=1)
        assert len(server.requests) == 1
        cassette = pytester.path / "cassettes" / "test_user" / "test_my_call.yaml"
        assert cassette.is_file()
    monkeypatch.setenv("CI", "true")  # CI mode: replay only, and no server is running now
    replayed = pytester.runpytest("-p", "no:cacheprovider")
    replayed.assert_outcomes(passed=1)
    cassette.unlink()
    deleted = pytester.runpytest("-p", "no:cacheprovider")
    deleted.assert_outcomes(failed=1)
