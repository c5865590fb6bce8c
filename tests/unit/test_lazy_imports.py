"""What importing hfbridge costs: each import in a fresh interpreter, checked by the modules it
loaded (never by timing). aiohttp is the async client's alone and comes with its first call;
the server, torch and requests never come with the client; an adapter package loads only the
component named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def _modules_after(code: str, pre: str = "") -> set[str]:
    """The modules ``code`` loaded in a fresh interpreter (after ``pre``, whose are left out)."""
    script = (f"import sys\n{pre}\n_before = set(sys.modules)\n{code}\n"
              "import json\nprint('MODULES', json.dumps(sorted(set(sys.modules) - _before)))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES "))
    return set(json.loads(line[len("MODULES "):]))


def _top(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_import_hfbridge_loads_no_async_transport_server_or_models() -> None:
    loaded = _modules_after("import hfbridge\nhfbridge.InferenceClient('http://127.0.0.1:9', token=False)\n"
                            "hfbridge.AsyncInferenceClient('http://127.0.0.1:9', token=False)")
    assert not _top(loaded) & {"aiohttp", "fastapi", "uvicorn", "torch", "transformers", "requests", "httpx", "asyncio"}
    assert not {"hfbridge.server", "hfbridge._aiohttp_io", "hfbridge.langchain", "hfbridge.llama_index"} & loaded


def test_aiohttp_comes_with_the_first_async_call() -> None:
    loaded = _modules_after(
        "import asyncio, sys, hfbridge\n"
        "client = hfbridge.AsyncInferenceClient('http://127.0.0.1:9', token=False, max_retries=0)\n"
        "assert 'aiohttp' not in sys.modules\n"
        "async def main():\n"
        "    try:\n"
        "        await client.feature_extraction('x', model='org/m')\n"
        "    except hfbridge.APIConnectionError:\n"
        "        pass\n"
        "    await client.aclose()\n"
        "asyncio.run(main())"
    )
    assert "aiohttp" in loaded and "hfbridge._aiohttp_io" in loaded


LANGCHAIN_BASES = ("import langchain_core.language_models.chat_models, langchain_core.language_models.llms, "
                   "langchain_core.embeddings, langchain_core.tools")
LLAMA_INDEX_BASES = ("import llama_index.core.llms.custom, llama_index.core.llms.function_calling, "
                     "llama_index.core.base.embeddings.base, llama_index.core.tools")
#: what an adapter may load beyond the framework classes it subclasses: itself, its core, and a
#: few framework modules it names (no aiohttp, no server, no second HTTP stack)
ALLOWED = {"hfbridge", "orjson", "urllib3", "certifi", "pydantic", "pydantic_core", "langchain_core", "llama_index"}


@pytest.mark.parametrize(("statement", "bases", "absent"), [
    ("from hfbridge.langchain import HFInferenceEmbeddings", LANGCHAIN_BASES,
     {"hfbridge.langchain.tools", "hfbridge.langchain.chat", "hfbridge.langchain.llm"}),
    ("from hfbridge.langchain import ChatHFInference, HFInferenceLLM, HFInferenceEmbeddings", LANGCHAIN_BASES,
     {"hfbridge.langchain.tools"}),
    ("from hfbridge.llama_index import HFInferenceEmbedding", LLAMA_INDEX_BASES,
     {"hfbridge.llama_index.tools", "hfbridge.llama_index.chat"}),
    ("from hfbridge.llama_index import HFInferenceChat, HFInferenceLLM, HFInferenceEmbedding", LLAMA_INDEX_BASES,
     {"hfbridge.llama_index.tools"}),
])
def test_an_adapter_component_loads_only_itself(statement: str, bases: str, absent: set[str]) -> None:
    loaded = _modules_after(statement, pre=bases)
    assert not absent & loaded
    assert _top(loaded) <= ALLOWED, _top(loaded) - ALLOWED


def test_every_adapter_name_is_still_importable() -> None:
    import hfbridge.langchain as lc
    import hfbridge.llama_index as li

    for package in (lc, li):
        for name in package.__all__:
            assert getattr(package, name) is not None
        assert set(package.__all__) <= set(dir(package))
        with pytest.raises(AttributeError):
            getattr(package, "NoSuchComponent")
