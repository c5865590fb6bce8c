"""The notebooks run against the embedded server, and nothing else.

nbmake executes them as part of the suite (``--nbmake``, ``testpaths`` has ``notebooks``); this
checks what an execution alone would not show: each one starts its own ``EmbeddedServer`` and
stops it, every client and adapter it builds is pointed at that server (none falls back to the
hosted API), no URL in its code is off this machine, and the outputs saved in the repository
carry no error.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import hfbridge.langchain
import hfbridge.llama_index

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
#: everything in the package that opens connections to a base URL
CONNECTING = {"InferenceClient", "AsyncInferenceClient", *hfbridge.langchain.__all__, *hfbridge.llama_index.__all__} - {
    "HFInferenceTool", "TOOL_CLASSES", "ToolText"}
LOCAL_URL = re.compile(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?(/|$)")


def code_cells(path: Path) -> list[str]:
    notebook = json.loads(path.read_text())
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def parse(source: str) -> ast.Module:
    # notebooks may await at top level
    return compile(source, "<cell>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_every_notebook_is_executed_by_the_suite() -> None:
    import tomllib

    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "notebooks" in options["testpaths"] and "--nbmake" in options["addopts"]
    assert len(NOTEBOOKS) >= 4


def problems(cells: list[str]) -> list[str]:
    """What in these code cells would reach beyond the notebook's own embedded server."""
    found = []
    source = "\n".join(cells)
    if "EmbeddedServer(" not in source or ".start()" not in source:
        found.append("does not start the embedded server")
    if not cells or "server.stop()" not in cells[-1]:
        found.append("does not stop its server at the end")
    for cell in cells:
        for node in ast.walk(parse(cell)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.match(r"^https?://", node.value):
                if not LOCAL_URL.match(node.value):
                    found.append(f"{node.value!r} is not on this machine")
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                call = ast.get_source_segment(cell, node) or ""
                if name in CONNECTING and "server.url" not in call:
                    found.append(f"{call!r} is not pointed at the embedded server")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_talks_only_to_its_embedded_server(path: Path) -> None:
    assert problems(code_cells(path)) == []


def test_the_check_sees_a_notebook_that_would_reach_out() -> None:
    cells = [
        "from hfbridge.server.runner import EmbeddedServer\nserver = EmbeddedServer().start()",
        "from hfbridge import InferenceClient\nclient = InferenceClient()",  # the hosted API
        "from hfbridge.langchain import HFInferenceLLM\nllm = HFInferenceLLM(base_url='https://router.huggingface.co/hf-inference')",
        "async with AsyncInferenceClient(server.url) as c:\n    await c.fill_mask('a [MASK]')",
    ]
    found = problems(cells)
    assert "does not stop its server at the end" in found
    assert any("InferenceClient()" in p for p in found)
    assert any("router.huggingface.co" in p and "not on this machine" in p for p in found)
    assert not any("AsyncInferenceClient(server.url)" in p for p in found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_outputs_carry_no_error(path: Path) -> None:
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", f"{path.name}: {output.get('ename')}: {output.get('evalue')}"
            text = "".join(output.get("text", []))
            assert "Traceback (most recent call last)" not in text, f"{path.name}: a traceback in the saved output"
