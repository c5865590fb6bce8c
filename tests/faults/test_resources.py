"""Nothing an adapter opens is left for the user to see: no "Unclosed client session", no
"Unclosed connector", no socket ``ResourceWarning``, however the adapter's life ends.

Each scenario is a small script run in a fresh interpreter with ``-W error::ResourceWarning``
and asyncio's debug mode (``-X dev``), so warnings at collection *and at interpreter exit* are
seen; its stderr must be empty of them. To keep the suite quick, scenarios that import the same
framework share an interpreter, one after the other (each marks where its stderr starts; the
one relying on interpreter exit comes last), and the interpreters run at once against one
scripted server.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from tests.scripted_server import Recorded, Reply, ScriptedServer

from .faults import M, good_reply

REPO = Path(__file__).resolve().parents[2]

HEADER = f"""
import asyncio, gc, sys
from hfbridge import AsyncInferenceClient, InferenceClient, Task
URL = sys.argv[1]
M = {M!r}
"""

SCENARIOS: dict[str, str] = {
    "core async client forgotten after asyncio.run": """
        client = AsyncInferenceClient(URL, token=False)
        asyncio.run(client.feature_extraction(["a"], model=M))
        asyncio.run(client.feature_extraction(["b"], model=M))  # a second loop, a second pool
    """,
    "core clients collected while their pools are open": """
        async def main():
            client = AsyncInferenceClient(URL, token=False)
            await client.feature_extraction(["a"], model=M)
            del client
            gc.collect()
            await asyncio.sleep(0.05)
        asyncio.run(main())
        sync = InferenceClient(URL, token=False)
        sync.feature_extraction(["a"], model=M)
        del sync
        gc.collect()
    """,
    "LangChain embeddings collected after aembed_documents": """
        from hfbridge.langchain import HFInferenceEmbeddings
        emb = HFInferenceEmbeddings(base_url=URL, model=M)
        asyncio.run(emb.aembed_documents(["a", "b", "c"]))
        del emb
        gc.collect()
    """,
    "LangChain LLM: astream abandoned mid-stream": """
        from hfbridge.langchain import HFInferenceLLM
        llm = HFInferenceLLM(base_url=URL, model=M)
        async def main():
            async for chunk in llm.astream("hi"):
                break  # no aclose: the generator is left to the loop
        asyncio.run(main())
    """,
    "LangChain LLM: sync stream abandoned, interpreter exits": """
        from hfbridge.langchain import HFInferenceLLM
        llm = HFInferenceLLM(base_url=URL, model=M)
        for chunk in llm.stream("hi"):
            break
        print(llm.invoke("hi")[:5])
    """,
    "LangChain tool and toolkit, async, left open at exit": """
        from hfbridge.langchain import TOOL_CLASSES, HFInferenceToolkit
        tool = TOOL_CLASSES[Task.TEXT_CLASSIFICATION](base_url=URL, model=M)
        tools = HFInferenceToolkit(base_url=URL, tasks=["text-classification"]).get_tools()
        async def main():
            await tool.ainvoke({"text": "x"})
            await tools[0].ainvoke({"text": "y"})
        asyncio.run(main())
    """,
    "LlamaIndex embedding and LLM: async, astream abandoned": """
        from hfbridge.llama_index import HFInferenceEmbedding, HFInferenceLLM
        emb = HFInferenceEmbedding(base_url=URL, model_name=M)
        llm = HFInferenceLLM(base_url=URL, model_name=M)
        async def main():
            await emb.aget_text_embedding_batch(["a", "b"])
            stream = await llm.astream_complete("hi")
            async for part in stream:
                break
        asyncio.run(main())
        del emb
        gc.collect()
    """,
    "LlamaIndex tool spec, sync and async": """
        from hfbridge.llama_index import HFInferenceToolSpec
        tool = HFInferenceToolSpec(URL, tasks=["text-classification"]).to_tool_list()[0]
        tool.call(text="x")
        asyncio.run(tool.acall(text="y"))
    """,
    "a loop closed without shutdown_asyncgens, adapter alive until exit": """
        from hfbridge.langchain import HFInferenceEmbeddings
        emb = HFInferenceEmbeddings(base_url=URL, model=M)
        loop = asyncio.new_event_loop()
        loop.run_until_complete(emb.aembed_documents(["a", "b"]))
        loop.close()
    """,
    "a loop closed without shutdown_asyncgens, adapter collected": """
        from hfbridge.llama_index import HFInferenceEmbedding
        emb = HFInferenceEmbedding(base_url=URL, model_name=M)
        loop = asyncio.new_event_loop()
        loop.run_until_complete(emb.aget_text_embedding_batch(["a", "b"]))
        loop.close()
        del emb, loop
        gc.collect()
    """,
    "a loop that is never closed (nor run again)": """
        from hfbridge.langchain import HFInferenceEmbeddings
        emb = HFInferenceEmbeddings(base_url=URL, model=M)
        loop = asyncio.new_event_loop()
        loop.run_until_complete(emb.aembed_query("a"))
        del emb
        gc.collect()
        loop.close()
    """,
    "explicit: close, aclose and the context managers": """
        from hfbridge.langchain import HFInferenceEmbeddings, HFInferenceToolkit
        from hfbridge.llama_index import HFInferenceLLM, HFInferenceToolSpec
        with HFInferenceEmbeddings(base_url=URL, model=M) as emb:
            emb.embed_query("a")
        async def main():
            async with HFInferenceEmbeddings(base_url=URL, model=M) as emb:
                await emb.aembed_query("a")
            llm = HFInferenceLLM(base_url=URL, model_name=M)
            await llm.acomplete("hi")
            await llm.aclose()
            async with HFInferenceToolSpec(URL, tasks=["text-classification"]) as spec:
                await spec.to_tool_list()[0].acall(text="x")
            kit = HFInferenceToolkit(base_url=URL, tasks=["text-classification"])
            await kit.get_tools()[0].ainvoke({"text": "x"})
            kit.close()
        asyncio.run(main())
        assert emb.clients.sync._transport.pools.open_pools() == 0  # closed
    """,
}

#: scenarios run in one interpreter, in this order (the last one's stderr includes the exit)
GROUPS: list[list[str]] = [
    ["core clients collected while their pools are open", "core async client forgotten after asyncio.run"],
    ["LangChain embeddings collected after aembed_documents", "LangChain LLM: astream abandoned mid-stream",
     "LangChain tool and toolkit, async, left open at exit"],
    ["LangChain LLM: sync stream abandoned, interpreter exits"],
    ["LlamaIndex embedding and LLM: async, astream abandoned", "LlamaIndex tool spec, sync and async"],
    ["a loop closed without shutdown_asyncgens, adapter collected", "a loop that is never closed (nor run again)",
     "a loop closed without shutdown_asyncgens, adapter alive until exit"],
    ["explicit: close, aclose and the context managers"],
]
MARK = "@@ scenario: "

SYMPTOMS = ("Unclosed", "ResourceWarning", "Exception ignored", "Task was destroyed", "Traceback", "unclosed")


def _long_streams(record: Recorded) -> Reply:
    """Streams long and slow enough to be abandoned mid-way; everything else answered at once."""
    reply = good_reply(record)
    if reply.chunks is not None:
        from .faults import _tokens

        return Reply(chunks=_tokens(" ".join(f"w{i}" for i in range(100))), chunk_delay=0.01)
    return reply


def _program(names: list[str]) -> str:
    parts = [HEADER]
    for name in names:
        parts.append(f"print({MARK + name!r}, file=sys.stderr, flush=True)\n")
        parts.append(f"def scenario():\n{textwrap.indent(textwrap.dedent(SCENARIOS[name]), '    ')}\nscenario()\ngc.collect()\n")
    return "".join(parts) + "print('DONE')\n"


def _split(stderr: str) -> dict[str, str]:
    """Each scenario's part of its interpreter's stderr."""
    parts: dict[str, str] = {}
    current = ""
    for line in stderr.splitlines(keepends=True):
        if line.startswith(MARK):
            current = line[len(MARK):].strip()
            parts[current] = ""
        elif current:
            parts[current] += line
    return parts


@pytest.fixture(scope="module")
def outcomes() -> Iterator[dict[str, tuple[int, str, str]]]:
    """For each scenario: (its interpreter's exit status, its stdout, the scenario's stderr)."""
    assert sorted(n for group in GROUPS for n in group) == sorted(SCENARIOS)
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}", "HF_HUB_OFFLINE": "1"}
    env.pop("HF_TOKEN", None)
    with ScriptedServer() as server:
        server.on("*", _long_streams)
        running = [
            (group, subprocess.Popen([sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", _program(group), server.url],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO))
            for group in GROUPS
        ]
        results = {}
        for group, proc in running:
            out, err = proc.communicate(timeout=180)
            parts = _split(err)
            for name in group:
                results[name] = (proc.returncode, out, parts.get(name, err))
        yield results
    gc.collect()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_nothing_is_left_unclosed(scenario: str, outcomes: dict[str, tuple[int, str, str]]) -> None:
    status, out, err = outcomes[scenario]
    found = [line for line in err.splitlines() if any(s in line for s in SYMPTOMS)]
    assert not found, err[-3000:]
    assert status == 0 and "DONE" in out, err[-3000:]
