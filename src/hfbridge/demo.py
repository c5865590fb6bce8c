"""``hfbridge demo``: the embedded server, a LangChain chain, a LlamaIndex query, tool calls, and
an agent of each framework that calls hfbridge's speech tool and answers with its words.

Runs offline on a fresh machine: the server loads real small models (SmolLM2-135M-Instruct,
all-MiniLM-L6-v2, Whisper tiny.en) from installed packages, and every step goes through the same
public APIs a user would call.
"""

from __future__ import annotations

import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["run_demo"]

LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
SPEECH = "openai/whisper-tiny.en"

DOCUMENTS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar and oxygen.",
    "The Great Wall of China is more than 20,000 kilometres long.",
    "Mount Everest, at 8,849 metres, is the highest mountain above sea level.",
]


def _say(text: str = "") -> None:
    print(text, flush=True)


def _section(title: str) -> None:
    _say()
    _say(f"== {title} " + "=" * max(0, 66 - len(title)))


def _start_server(cache_dir: str | None) -> Any:
    from .server.app import ServerSettings
    from .server.registry import default_cache_dir
    from .server.runner import EmbeddedServer

    settings = ServerSettings(cache_dir=Path(cache_dir) if cache_dir else default_cache_dir())
    server = EmbeddedServer(settings).start()
    _say(f"hfbridge serve is running in-process at {server.url} (model cache: {settings.cache_dir})")
    for model_id in (LLM, EMBEDDER, SPEECH):
        cached = server.models.is_cached(server.settings.registry.get(model_id))
        note = "" if cached else " (first run: preparing the weights, this takes a little longer)"
        _say(f"  loading {model_id}{note} ...")
        started = time.monotonic()
        future = server.models.start_loading(model_id)
        next_notice = started + 5
        while not future.done():
            time.sleep(0.25)
            if time.monotonic() >= next_notice:
                _say(f"    still loading ({time.monotonic() - started:.0f}s)")
                next_notice += 5
        future.result()
        _say(f"    ready in {time.monotonic() - started:.1f}s")
    return server


def _langchain(base_url: str) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import PromptTemplate

    from .langchain import HFInferenceLLM

    _section("LangChain: PromptTemplate | HFInferenceLLM | StrOutputParser")
    llm = HFInferenceLLM(base_url=base_url, model=LLM, max_new_tokens=40, stop=["\n"])
    chain = PromptTemplate.from_template("Q: {question}\nA:") | llm | StrOutputParser()
    question = "What is the capital of France?"
    _say(f"Q: {question}")
    print("A:", end="", flush=True)
    for piece in chain.stream({"question": question}):
        print(piece, end="", flush=True)
    _say()
    answers = chain.batch([{"question": "What is 2 + 2?"}, {"question": "What colour is the sky on a clear day?"}])
    _say(f"batch of two: {[a.strip() for a in answers]}")


def _llama_index(base_url: str) -> None:
    from llama_index.core import Document, VectorStoreIndex

    from .llama_index import HFInferenceEmbedding, HFInferenceLLM

    _section("LlamaIndex: VectorStoreIndex + HFInferenceEmbedding, queried with HFInferenceLLM")
    embed = HFInferenceEmbedding(base_url=base_url, model_name=EMBEDDER)
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS], embed_model=embed)
    _say(f"indexed {len(DOCUMENTS)} documents with {EMBEDDER}")
    engine = index.as_query_engine(llm=HFInferenceLLM(base_url=base_url, model_name=LLM, max_new_tokens=40), similarity_top_k=1)
    question = "When was the Eiffel Tower completed?"
    response = engine.query(question)
    _say(f"query:  {question}")
    _say(f"answer: {str(response).strip()}")
    source = response.source_nodes[0]
    _say(f"source: {source.node.get_content()!r} (similarity {source.score:.3f})")


def _tools(base_url: str) -> None:
    from langchain_core.messages import ToolCall

    from .langchain import HFInferenceToolkit

    _section("Agent-style tool calls (HFInferenceToolkit, one tool per task)")
    toolkit = HFInferenceToolkit(base_url=base_url, models={"automatic-speech-recognition": SPEECH},
                                 tasks=["automatic-speech-recognition", "sentence-similarity"])
    tools = {tool.name: tool for tool in toolkit.get_tools()}
    audio = resources.files("hfbridge") / "data" / "speech.flac"
    with resources.as_file(audio) as path:
        call = ToolCall(name="automatic_speech_recognition", args={"audio": str(path)}, id="call-1", type="tool_call")
        message = tools[call["name"]].invoke(call)
    _say(f"{call['name']}({path.name}) -> {message.content}")
    call = ToolCall(name="sentence_similarity", id="call-2", type="tool_call",
                    args={"source_sentence": "A cat sleeps on the sofa.", "sentences": ["A kitten naps on a couch.", "Stock prices fell sharply."]})
    message = tools[call["name"]].invoke(call)
    _say(f"{call['name']}(...) -> {message.content}")


ASK = "Transcribe the audio file speech.flac and tell me what the man said."


def _agents(base_url: str) -> None:
    """The agents of ``tests/*/test_agents.py``, as a user runs them: SmolLM2-135M told to call a
    tool first and to answer once it has answered (what a model this small needs; README,
    "Agents"), in a folder holding the user's ``speech.flac``."""
    import asyncio
    import contextlib
    import tempfile

    from .samples import sample_speech

    _section("Agents: LangChain create_agent and LlamaIndex FunctionAgent on ChatHFInference / HFInferenceChat")
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        Path("speech.flac").write_bytes(sample_speech())
        _say(f"user: {ASK}")
        try:
            from langchain.agents import create_agent
        except ImportError:
            _say("LangChain agent skipped: create_agent needs the langchain package (pip install langchain)")
        else:
            from .langchain import ChatHFInference, HFInferenceToolkit
            from .langchain.agents import ToolThenAnswer

            with ChatHFInference(base_url=base_url, model=LLM, temperature=0) as model, \
                    HFInferenceToolkit(base_url=base_url, tasks=["automatic-speech-recognition"], allowed_dirs=[folder]) as toolkit:
                agent = create_agent(model, toolkit.get_tools(), middleware=[ToolThenAnswer()])
                state = agent.invoke({"messages": [("user", ASK)]})
            for message in state["messages"][1:]:
                calls = getattr(message, "tool_calls", None)
                shown = f"calls {calls[0]['name']}({calls[0]['args']})" if calls else repr(message.content)
                _say(f"  LangChain {message.type}: {shown}")

        from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult

        from .llama_index import HFInferenceChat, HFInferenceToolSpec

        async def run() -> tuple[list[Any], str]:
            llm = HFInferenceChat(base_url=base_url, model_name=LLM, temperature=0, answer_after_tool_results=True)
            spec = HFInferenceToolSpec(base_url, tasks=["automatic-speech-recognition"], allowed_dirs=[folder])
            async with llm, spec:
                agent = FunctionAgent(tools=spec.to_tool_list(), llm=llm, initial_tool_choice="required")
                handler = agent.run(ASK)
                results = [event async for event in handler.stream_events() if isinstance(event, ToolCallResult)]
                return results, str(await handler)

        results, answer = asyncio.run(run())
        for result in results:
            _say(f"  LlamaIndex tool: {result.tool_name}({result.tool_kwargs}) -> {result.tool_output.content!r}")
        _say(f"  LlamaIndex answer: {answer!r}")


def run_demo(base_url: str | None = None, cache_dir: str | None = None) -> int:
    started = time.monotonic()
    server = None
    try:
        if base_url is None:
            server = _start_server(cache_dir)
            base_url = server.url
        else:
            _say(f"using the server at {base_url}")
        _langchain(base_url)
        _llama_index(base_url)
        _tools(base_url)
        _agents(base_url)
    finally:
        if server is not None:
            server.stop()
    _section(f"done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_demo())
