"""The pytest plugin as a user gets it: a project of their own outside this repository, with
only the installed package (no access to this repository's ``tests/`` or conftest files), run
by a separate ``python -m pytest``.

It records a LangChain chain's HTTP once against a real server, replays it in CI mode with the
server gone, and when a piece of the ``testing`` / ``server`` extras is missing it fails with the
command that installs it, instead of ``No module named 'vcr'``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import hfbridge
from tests.scripted_server import Reply, ScriptedServer

#: the folder holding the installed ``hfbridge`` package, and nothing of this repository's tests
PACKAGE_ROOT = Path(hfbridge.__file__).resolve().parents[1]
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"

USER_TEST = f'''
import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from hfbridge.langchain import HFInferenceLLM


@pytest.mark.hf_cassette
def test_my_chain(hf_base_url):
    llm = HFInferenceLLM(base_url=hf_base_url, model="{MODEL}", max_new_tokens=16)
    chain = PromptTemplate.from_template("Q: {{q}}\\nA:") | llm | StrOutputParser()
    assert "Paris" in chain.invoke({{"q": "What is the capital of France?"}})
'''

#: runs pytest with some modules made unimportable, as if their packages were not installed
WITHOUT = '''
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
import pytest
sys.exit(pytest.main(sys.argv[2:]))
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "my-project"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_chain.py").write_text(USER_TEST)
    (root / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (root / "without.py").write_text(WITHOUT)
    return root


def run_pytest(project: Path, *args: str, without: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HFBRIDGE_", "PYTEST_", "CI"))}
    clean.update(PYTHONPATH=str(PACKAGE_ROOT), **env)
    command = [sys.executable, "without.py", without] if without else [sys.executable, "-m", "pytest"]
    return subprocess.run([*command, "-p", "no:cacheprovider", "-q", *args], cwd=project, env=clean,
                          capture_output=True, text=True, timeout=300)


def test_records_a_chain_once_then_replays_it_with_no_server(project: Path) -> None:
    with ScriptedServer() as server:
        server.on(f"/models/{MODEL}/text-generation", Reply(body=[{"generated_text": " Paris."}]))
        recorded = run_pytest(project, "--hf-record-mode=once", HFBRIDGE_BASE_URL=server.url)
        assert recorded.returncode == 0, recorded.stdout + recorded.stderr
        assert len(server.requests) == 1
    cassette = project / "cassettes" / "test_chain" / "test_my_chain.yaml"
    assert cassette.is_file()
    assert not (project / "tests" / "conftest.py").exists()  # nothing of ours was needed
    replayed = run_pytest(project, CI="true", HFBRIDGE_BASE_URL=server.url)  # the server is gone
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "1 passed" in replayed.stdout


def test_without_vcrpy_the_failure_names_the_testing_extra(project: Path) -> None:
    result = run_pytest(project, "--hf-record-mode=none", without="vcr")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "hfbridge's cassettes need vcrpy" in result.stdout
    assert "pip install 'hfbridge[testing]'" in result.stdout


def test_recording_without_the_server_extra_names_it_and_the_alternative(project: Path) -> None:
    result = run_pytest(project, "--hf-record-mode=once", without="fastapi,uvicorn")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "pip install 'hfbridge[testing,server]'" in result.stdout
    assert "HFBRIDGE_BASE_URL" in result.stdout
    assert not (project / "cassettes" / "test_chain" / "test_my_chain.yaml").exists()


def test_an_unmarked_test_never_imports_vcrpy_or_the_server(project: Path) -> None:
    (project / "tests" / "test_chain.py").write_text("def test_plain():\n    assert True\n")
    result = run_pytest(project, without="vcr,fastapi,uvicorn")
    assert result.returncode == 0, result.stdout + result.stderr
