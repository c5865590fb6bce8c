"""Single-call latency and CPU per call: one text-generation call and one chat call, through
every hfbridge layer and every peer client, against the stub (which answers at once, in its
own process, so the figures are the client's own cost plus one loopback round trip).

Each client is built once and warmed up; then the calls are interleaved (one call of each
client in turn, ``latency_calls`` rounds). Wall time from ``time.perf_counter``, CPU from
``time.process_time`` (this process only: the stub's CPU is not in it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ._common import Budget, describe_error, httpx_client, interleaved, machine, median, percentile, requests_session
from ._stub import GENERATED_TEXT, StubServer

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
PROMPT = "What is the capital of France?"
MAX_TOKENS = 20
MESSAGES = [{"role": "user", "content": PROMPT}]


@dataclass
class Case:
    name: str
    family: str  # "hfbridge" | "peer" | "raw"
    kind: str  # "generation" | "chat"
    call: str
    build: Callable[["Case", str], Callable[[], str]]
    fn: Callable[[], str] | None = None
    close: list[Callable[[], Any]] = field(default_factory=list)
    error: str | None = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# text generation
# --------------------------------------------------------------------------------------------
def _core_generation(case: Case, url: str) -> Callable[[], str]:
    from hfbridge import InferenceClient

    client = InferenceClient(url, token=False)
    case.close.append(client.close)
    return lambda: client.text_generation(PROMPT, model=MODEL, max_new_tokens=MAX_TOKENS).generated_text


def _langchain_llm(case: Case, url: str) -> Callable[[], str]:
    from hfbridge.langchain import HFInferenceLLM

    llm = HFInferenceLLM(base_url=url, token=None, model=MODEL, max_new_tokens=MAX_TOKENS)
    case.close.append(llm.clients.close)
    return lambda: llm.invoke(PROMPT)


def _llama_index_llm(case: Case, url: str) -> Callable[[], str]:
    from hfbridge.llama_index import HFInferenceLLM

    llm = HFInferenceLLM(base_url=url, token=None, model_name=MODEL, max_new_tokens=MAX_TOKENS)
    case.close.append(llm.clients.close)
    return lambda: llm.complete(PROMPT).text


def _hub_generation(case: Case, url: str) -> Callable[[], str]:
    from huggingface_hub import InferenceClient

    client = InferenceClient(model=f"{url}/models/{MODEL}")
    case.close.append(client.close)
    return lambda: client.text_generation(PROMPT, max_new_tokens=MAX_TOKENS)


def _langchain_endpoint(url: str) -> Any:
    from langchain_huggingface import HuggingFaceEndpoint

    return HuggingFaceEndpoint(endpoint_url=f"{url}/models/{MODEL}", max_new_tokens=MAX_TOKENS)


def _langchain_huggingface_llm(case: Case, url: str) -> Callable[[], str]:
    llm = _langchain_endpoint(url)
    case.close.append(llm.client.close)
    return lambda: llm.invoke(PROMPT)


def _llama_index_peer_llm(case: Case, url: str) -> Callable[[], str]:
    from llama_index.llms.huggingface_api import HuggingFaceInferenceAPI

    llm = HuggingFaceInferenceAPI(model=f"{url}/models/{MODEL}", task="text-generation", num_output=MAX_TOKENS)
    return lambda: llm.complete(PROMPT).text


def _raw_post(case: Case, url: str, path: str, body: dict[str, Any], pick: Callable[[Any], str],
              client: Any) -> Callable[[], str]:
    """A bare POST with a kept-alive ``httpx.Client`` or ``requests.Session`` (same calls on both)."""
    case.close.append(client.close)
    endpoint = url + path

    def call() -> str:
        response = client.post(endpoint, json=body)
        response.raise_for_status()
        return pick(response.json())

    return call


_GENERATION_BODY = {"inputs": PROMPT, "parameters": {"max_new_tokens": MAX_TOKENS}}
_CHAT_BODY = {"model": MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS}


def _generated(data: Any) -> str:
    return data[0]["generated_text"]


def _content(data: Any) -> str:
    return data["choices"][0]["message"]["content"]


# --------------------------------------------------------------------------------------------
# chat
# --------------------------------------------------------------------------------------------
def _core_chat(case: Case, url: str) -> Callable[[], str]:
    from hfbridge import InferenceClient

    client = InferenceClient(url, token=False)
    case.close.append(client.close)
    return lambda: client.chat_completion(MESSAGES, model=MODEL, max_tokens=MAX_TOKENS).choices[0].message.content


def _langchain_chat(case: Case, url: str) -> Callable[[], str]:
    from hfbridge.langchain import ChatHFInference  # may be missing before the chat work is merged

    chat = ChatHFInference(base_url=url, token=None, model=MODEL, max_tokens=MAX_TOKENS)
    case.close.append(chat.clients.close)
    return lambda: chat.invoke(PROMPT).content


def _llama_index_chat(case: Case, url: str) -> Callable[[], str]:
    from llama_index.core.base.llms.types import ChatMessage

    from hfbridge.llama_index import HFInferenceChat

    chat = HFInferenceChat(base_url=url, token=None, model_name=MODEL, max_tokens=MAX_TOKENS)
    case.close.append(chat.clients.close)
    messages = [ChatMessage(role="user", content=PROMPT)]
    return lambda: chat.chat(messages).message.content


def _hub_chat(case: Case, url: str) -> Callable[[], str]:
    from huggingface_hub import InferenceClient

    client = InferenceClient(model=f"{url}/models/{MODEL}")
    case.close.append(client.close)
    return lambda: client.chat_completion(MESSAGES, max_tokens=MAX_TOKENS).choices[0].message.content


def _chat_huggingface(case: Case, url: str) -> Callable[[], str]:
    from langchain_huggingface import ChatHuggingFace

    chat = ChatHuggingFace(llm=_langchain_endpoint(url))
    case.close.append(chat.llm.client.close)
    return lambda: chat.invoke(PROMPT).content


def _llama_index_peer_chat(case: Case, url: str) -> Callable[[], str]:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.llms.huggingface_api import HuggingFaceInferenceAPI

    llm = HuggingFaceInferenceAPI(model=f"{url}/models/{MODEL}", task="conversational", num_output=MAX_TOKENS)
    messages = [ChatMessage(role="user", content=PROMPT)]
    return lambda: llm.chat(messages).message.content


def cases() -> list[Case]:
    gen_path, chat_path = f"/models/{MODEL}", f"/models/{MODEL}/v1/chat/completions"
    return [
        Case("hfbridge core", "hfbridge", "generation", "InferenceClient.text_generation", _core_generation),
        Case("hfbridge LangChain", "hfbridge", "generation", "HFInferenceLLM.invoke", _langchain_llm),
        Case("hfbridge LlamaIndex", "hfbridge", "generation", "HFInferenceLLM.complete", _llama_index_llm),
        Case("huggingface_hub", "peer", "generation", "InferenceClient.text_generation", _hub_generation),
        Case("langchain-huggingface", "peer", "generation", "HuggingFaceEndpoint.invoke", _langchain_huggingface_llm),
        Case("LlamaIndex HF API", "peer", "generation", "HuggingFaceInferenceAPI.complete", _llama_index_peer_llm),
        Case("httpx", "raw", "generation", "Client.post + .json()",
             lambda c, u: _raw_post(c, u, gen_path, _GENERATION_BODY, _generated, httpx_client())),
        Case("requests", "raw", "generation", "Session.post + .json()",
             lambda c, u: _raw_post(c, u, gen_path, _GENERATION_BODY, _generated, requests_session())),
        Case("hfbridge core", "hfbridge", "chat", "InferenceClient.chat_completion", _core_chat),
        Case("hfbridge LangChain", "hfbridge", "chat", "ChatHFInference.invoke", _langchain_chat),
        Case("hfbridge LlamaIndex", "hfbridge", "chat", "HFInferenceChat.chat", _llama_index_chat),
        Case("huggingface_hub", "peer", "chat", "InferenceClient.chat_completion", _hub_chat),
        Case("langchain-huggingface", "peer", "chat", "ChatHuggingFace.invoke", _chat_huggingface),
        Case("LlamaIndex HF API", "peer", "chat", "HuggingFaceInferenceAPI.chat", _llama_index_peer_chat),
        Case("httpx", "raw", "chat", "Client.post + .json()",
             lambda c, u: _raw_post(c, u, chat_path, _CHAT_BODY, _content, httpx_client())),
        Case("requests", "raw", "chat", "Session.post + .json()",
             lambda c, u: _raw_post(c, u, chat_path, _CHAT_BODY, _content, requests_session())),
    ]


def run(budget: Budget, families: tuple[str, ...] = ("hfbridge", "peer", "raw")) -> dict[str, Any]:
    calls = budget.latency_calls
    all_cases = [c for c in cases() if c.family in families]
    with StubServer() as stub:
        for case in all_cases:
            try:
                case.fn = case.build(case, stub.url)
                for _ in range(budget.latency_warmup):
                    text = case.fn()
                if text.strip() != GENERATED_TEXT.strip():
                    raise AssertionError(f"unexpected answer {text!r}")
            except Exception as exc:  # a missing or broken client is reported, not hidden
                case.error = describe_error(exc)

        def measure(case: Case, _: int) -> None:
            if case.error or case.fn is None:
                return
            wall, cpu = time.perf_counter(), time.process_time()
            case.fn()
            case.cpu.append(time.process_time() - cpu)
            case.wall.append(time.perf_counter() - wall)

        interleaved([c for c in all_cases if not c.error], calls, measure)
        for case in all_cases:
            for close in case.close:
                close()

    rows = [{
        "name": c.name, "family": c.family, "kind": c.kind, "call": c.call, "error": c.error,
        "median_ms": median(c.wall) * 1e3 if c.wall else None,
        "p90_ms": percentile(c.wall, 90) * 1e3 if c.wall else None,
        "cpu_ms": median(c.cpu) * 1e3 if c.cpu else None,
        "calls": len(c.wall),
    } for c in all_cases]
    return {"section": "latency", "budget": budget.name, "calls": calls, "machine": machine(), "rows": rows}

