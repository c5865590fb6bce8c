"""Record, re-record, replay: a small version of ``bash scripts/run.sh record`` through the plugin.

A user's test module (async embedding batches, a batched chain, a chat completion, a stream) is
recorded against the real embedded server into a temporary project, re-recorded, and replayed.
Re-recording must pass (a test that counts its requests sees each once, not the old ones too)
and reproduce the cassettes byte for byte; the replay needs no server.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from hfbridge.testing.determinism import RECORDED_CHAT_ID, RECORDED_CREATED, VOLATILE_HEADERS

pytest_plugins = ["pytester"]

EMBED = "sentence-transformers/all-MiniLM-L6-v2"
LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"

USER_TESTS = f'''
import json
import pytest
from hfbridge import InferenceClient
from hfbridge.langchain import HFInferenceLLM
from hfbridge.llama_index import HFInferenceEmbedding

TEXTS = ["apple", "river", "chess", "violin", "comet"]

@pytest.mark.hf_cassette
async def test_async_batches(hf_base_url, hf_cassette):
    embedding = HFInferenceEmbedding(base_url=hf_base_url, model_name="{EMBED}", embed_batch_size=2)
    vectors = await embedding.aget_text_embedding_batch(TEXTS)
    assert len(vectors) == 5
    assert [json.loads(r.body)["inputs"] for r in hf_cassette.requests] == [TEXTS[0:2], TEXTS[2:4], TEXTS[4:]]

@pytest.mark.hf_cassette
async def test_batched_chain(hf_base_url, hf_cassette):
    llm = HFInferenceLLM(base_url=hf_base_url, model="{LLM}", max_new_tokens=4)
    answers = await llm.abatch(["The capital of France is", "Two plus two is", "The sky is"])
    assert len(answers) == 3 and len(hf_cassette.requests) == 3

@pytest.mark.hf_cassette
def test_chat_and_stream(hf_base_url):
    with InferenceClient(hf_base_url) as client:
        chat = client.conversational("What is the capital of France?", model="{LLM}", max_tokens=8)
        assert chat.choices[0].message.content
        pieces = [out.token.text for out in client.text_generation("Once upon a time", model="{LLM}", max_new_tokens=5, stream=True)]
        assert len(pieces) == 5
'''


def run(pytester: pytest.Pytester, *args: str) -> Any:
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.yaml"))}


def test_recording_twice_passes_gives_the_same_cassettes_and_replays(pytester: pytest.Pytester, live_server: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    monkeypatch.setenv("HFBRIDGE_BASE_URL", live_server.url)
    monkeypatch.delenv("CI", raising=False)
    cassettes = pytester.path / "cassettes"

    run(pytester, "--hf-record-mode=all").assert_outcomes(passed=3)
    first = snapshot(cassettes)
    assert len(first) == 3
    saved = pytester.path.parent / "first-recording"
    shutil.copytree(cassettes, saved)

    run(pytester, "--hf-record-mode=all").assert_outcomes(passed=3)  # over existing cassettes
    assert snapshot(cassettes) == first, "re-recording the same deterministic calls changed the cassettes"

    monkeypatch.setenv("CI", "true")
    run(pytester).assert_outcomes(passed=3)  # replay only: a request not in a cassette would fail

    chat = yaml.safe_load((cassettes / "test_user" / "test_chat_and_stream.yaml").read_text())
    for interaction in chat["interactions"]:
        headers = {name.lower() for name in interaction["response"]["headers"]}
        assert not headers & VOLATILE_HEADERS
    chat_body = chat["interactions"][0]["response"]["body"]["string"]
    assert f'"id":"{RECORDED_CHAT_ID}-' in chat_body.replace(" ", "") and f'"created":{RECORDED_CREATED}' in chat_body.replace(" ", "")
