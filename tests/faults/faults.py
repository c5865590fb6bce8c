"""The faults a hostile network or server can produce, and every surface they are tried through.

A *fault* scripts the fault server's answers (the first ``times`` requests get the fault, later
ones a correct answer for their task); a *surface* is one way a user reaches the server: the core
clients (sync, async, streaming), each framework's embeddings, LLM (plain, async, streaming) and
a tool. Every pair is run for real over sockets on 127.0.0.1 by ``test_fault_suite.py``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from hfbridge import (
    APIConnectionError,
    APITimeoutError,
    AsyncInferenceClient,
    InferenceClient,
    ResponseFormatError,
    Task,
)
from hfbridge.errors import ResponseTooLargeError
from hfbridge.langchain import TOOL_CLASSES, HFInferenceEmbeddings, HFInferenceLLM
from hfbridge.llama_index import HFInferenceEmbedding, HFInferenceToolSpec
from hfbridge.llama_index import HFInferenceLLM as LlamaIndexLLM
from tests.scripted_server import Recorded, Reply, sse

M = "org/model"
#: the bounds every surface runs with: a deadline short enough to keep the suite quick
SETTINGS = {"timeout": 0.4, "deadline": 1.2, "max_retries": 2}
#: a call may outlive its deadline by at most this (a correctness bound, not a benchmark)
MARGIN = 1.5
RECOVERED = "recovered"
BIG = 80 * 1024 * 1024  # past the default max_response_bytes (64 MiB)


@lru_cache(maxsize=1)
def gzip_bomb() -> bytes:
    """A ~255 KiB gzip body that inflates to 256 MiB (built without holding the 256 MiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    data = b"".join(packer.compress(block) for _ in range(256))
    return data + packer.flush()


# --------------------------------------------------------------------------------------------
# Correct answers, per task and mode
# --------------------------------------------------------------------------------------------
def _tokens(text: str = "hello world") -> list[bytes]:
    words = text.split(" ")
    events = [{"token": {"id": i, "text": ("" if i == 0 else " ") + w, "logprob": 0.0, "special": False},
               "generated_text": None, "details": None} for i, w in enumerate(words)]
    events[-1]["generated_text"] = text
    events[-1]["details"] = {"finish_reason": "length", "generated_tokens": len(words)}
    return sse(*events)


def kind_of(record: Recorded) -> str:
    if record.path.endswith("/text-generation"):
        return "stream" if b'"stream":true' in record.body else "generation"
    return record.path.rsplit("/", 1)[-1]


def good_reply(record: Recorded) -> Reply:
    kind = kind_of(record)
    if kind == "stream":
        return Reply(chunks=_tokens())
    if kind == "generation":
        return Reply(body=[{"generated_text": "hello world", "details": {"finish_reason": "length", "generated_tokens": 2}}])
    if kind == "feature-extraction":
        inputs = json.loads(record.body)["inputs"]
        return Reply(body=[[0.1, 0.2, 0.3]] * len(inputs) if isinstance(inputs, list) else [0.1, 0.2, 0.3])
    return Reply(body=[[{"label": "POSITIVE", "score": 0.9}]])


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    name: str
    #: the faulty reply for a request (None: answer it correctly)
    reply: Callable[[Recorded], Reply | None]
    #: how many requests get it (then correct answers); 0: all of them
    times: int
    #: RECOVERED, or the error type(s) the call must raise
    expect: Any
    #: which surfaces it applies to: "all", "plain" (not streams) or "streams"
    where: str = "all"
    #: a pattern the error message must contain
    says: str = ""
    #: run the surfaces one after the other (faults that cost memory), not all at once
    serial: bool = False
    #: a server that is not even there (the surface gets a closed port)
    no_server: bool = False
    notes: str = ""

    def applies_to(self, surface: "Surface") -> bool:
        return self.where == "all" or (self.where == "streams") == surface.streams


def _retry_after_date(_: Recorded) -> Reply:
    when = email.utils.formatdate(time.time() + 1, usegmt=True)
    return Reply(429, {"error": "Rate limit reached"}, headers={"Retry-After": when})


def _for_mode(plain: Callable[[Recorded], Reply], stream: Callable[[Recorded], Reply]) -> Callable[[Recorded], Reply]:
    return lambda r: stream(r) if kind_of(r) == "stream" else plain(r)


_TRICKLE = {"trickle": 0.05, "trickle_size": 1}

FAULTS: list[Fault] = [
    Fault("connection reset", lambda r: Reply(drop=True), 1, RECOVERED),
    Fault("500, then 200", lambda r: Reply(500, {"error": "boom"}), 1, RECOVERED),
    Fault("503 loading", lambda r: Reply(503, {"error": f"Model {M} is currently loading", "estimated_time": 0.05}), 1, RECOVERED),
    Fault("429 Retry-After seconds", lambda r: Reply(429, {"error": "Rate limit"}, headers={"Retry-After": "0.05"}), 1, RECOVERED),
    Fault("429 Retry-After date", _retry_after_date, 1, RECOVERED),
    Fault("truncated body", lambda r: Reply(body=b'{"generated_text": "hello wor', headers={"Content-Type": "application/json"}, truncate_to=12),
          0, (APIConnectionError, ResponseFormatError)),
    Fault("wrong-typed body", _for_mode(lambda r: Reply(body={"unexpected": "shape"}),
                                        lambda r: Reply(chunks=sse({"unexpected": "shape"}))), 0, ResponseFormatError),
    Fault("HTML instead of JSON", lambda r: Reply(body="<html><body>Bad gateway</body></html>", headers={"Content-Type": "text/html"}),
          0, ResponseFormatError, where="plain"),
    Fault("stalled server", lambda r: Reply(body=[], delay=5.0), 0, APITimeoutError),
    Fault("trickled body", _for_mode(lambda r: Reply(body={"error": "x" * 400}, **_TRICKLE),
                                     lambda r: Reply(chunks=[bytes([b]) for b in b"".join(_tokens("a b c d e f g h"))], chunk_delay=0.05)),
          0, APITimeoutError),
    Fault("stream pauses longer than the timeout", lambda r: Reply(chunks=_tokens("a b c"), chunk_delay=0.7), 0, APITimeoutError,
          where="streams", notes="each read is bounded by the attempt timeout, the whole stream by the deadline"),
    Fault("trickled headers", lambda r: Reply(body=[], header_trickle=0.05, trickle_size=2), 0, APITimeoutError),
    Fault("huge body (Content-Length)", lambda r: Reply(zeros=BIG, headers={"Content-Type": "application/json"}), 0, ResponseTooLargeError,
          says="max_response_bytes"),
    # streams stop these even earlier: zeros are one event-stream line past its 1 MiB bound
    Fault("huge body (chunked)", lambda r: Reply(chunks=[bytes(1 << 16)] * (BIG >> 16), headers={"Content-Type": "application/json"}),
          0, ResponseTooLargeError, says="max_response_bytes|event-stream line", serial=True),
    Fault("gzip bomb (255 KiB -> 256 MiB)", lambda r: Reply(body=gzip_bomb(), gzipped=True, headers={"Content-Type": "application/json"}),
          0, ResponseTooLargeError, says="after decompression|event-stream line", serial=True),
    Fault("2 MiB event-stream line", lambda r: Reply(chunks=[b"data: {\"token\": \"" + b"x" * (2 << 20) + b"\"}\n\n"]),
          0, ResponseTooLargeError, where="streams", says="event-stream line"),
    Fault("nothing listening (local)", lambda r: None, 0, APIConnectionError, says="hfbridge serve --port", no_server=True),
]


def script(fault: Fault) -> Callable[[Recorded], Reply]:
    """The fault server's answer function for one test: the fault first, then correct answers."""
    served = {"faulty": 0}

    def answer(record: Recorded) -> Reply:
        if fault.times == 0 or served["faulty"] < fault.times:
            reply = fault.reply(record)
            if reply is not None:
                served["faulty"] += 1
                return reply
        return good_reply(record)

    return answer


# --------------------------------------------------------------------------------------------
# Surfaces
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Surface:
    name: str
    run: Callable[[str], Any]
    streams: bool = False


def _core_sync(url: str) -> Any:
    with InferenceClient(url, token=False, **SETTINGS) as client:
        return client.feature_extraction(["a", "b"], model=M)


def _core_async(url: str) -> Any:
    async def main() -> Any:
        async with AsyncInferenceClient(url, token=False, **SETTINGS) as client:
            return await client.feature_extraction(["a", "b"], model=M)

    return asyncio.run(main())


def _core_stream(url: str) -> Any:
    with InferenceClient(url, token=False, **SETTINGS) as client:
        with client.text_generation("hi", model=M, stream=True) as stream:
            return [out.token.text for out in stream]


def _core_stream_async(url: str) -> Any:
    async def main() -> Any:
        async with AsyncInferenceClient(url, token=False, **SETTINGS) as client:
            async with client.text_generation("hi", model=M, stream=True) as stream:
                return [out.token.text async for out in stream]

    return asyncio.run(main())


def _lc(kind: str) -> Callable[[str], Any]:
    def run(url: str) -> Any:
        common = {"base_url": url, "model": M, **SETTINGS}
        if kind.startswith("embeddings"):
            with HFInferenceEmbeddings(**common) as emb:
                if kind == "embeddings-async":
                    return asyncio.run(emb.aembed_documents(["a", "b"]))
                return emb.embed_documents(["a", "b"])
        if kind == "tool":
            with TOOL_CLASSES[Task.TEXT_CLASSIFICATION](**common) as tool:
                return tool.invoke({"text": "x"})
        with HFInferenceLLM(**common, max_new_tokens=4) as llm:
            if kind == "llm-async":
                return asyncio.run(llm.ainvoke("hi"))
            if kind == "llm-stream":
                return list(llm.stream("hi"))
            return llm.invoke("hi")

    return run


def _li(kind: str) -> Callable[[str], Any]:
    def run(url: str) -> Any:
        if kind.startswith("embedding"):
            with HFInferenceEmbedding(base_url=url, model_name=M, **SETTINGS) as emb:
                if kind == "embedding-async":
                    return asyncio.run(emb.aget_text_embedding_batch(["a", "b"]))
                return emb.get_text_embedding_batch(["a", "b"])
        if kind == "tool":
            with HFInferenceToolSpec(url, tasks=["text-classification"], models={"text-classification": M}, **SETTINGS) as spec:
                output = spec.to_tool_list()[0].call(text="x")
                assert not output.is_error, output
                return output.content
        with LlamaIndexLLM(base_url=url, model_name=M, max_new_tokens=4, **SETTINGS) as llm:
            if kind == "llm-async":
                return asyncio.run(llm.acomplete("hi")).text
            if kind == "llm-stream":
                return [r.delta for r in llm.stream_complete("hi")]
            return llm.complete("hi").text

    return run


SURFACES: list[Surface] = [
    Surface("core", _core_sync),
    Surface("core async", _core_async),
    Surface("core stream", _core_stream, streams=True),
    Surface("core stream async", _core_stream_async, streams=True),
    Surface("LC embeddings", _lc("embeddings")),
    Surface("LC embeddings async", _lc("embeddings-async")),
    Surface("LC LLM", _lc("llm")),
    Surface("LC LLM async", _lc("llm-async")),
    Surface("LC LLM stream", _lc("llm-stream"), streams=True),
    Surface("LC tool", _lc("tool")),
    Surface("LI embedding", _li("embedding")),
    Surface("LI embedding async", _li("embedding-async")),
    Surface("LI LLM", _li("llm")),
    Surface("LI LLM async", _li("llm-async")),
    Surface("LI LLM stream", _li("llm-stream"), streams=True),
    Surface("LI tool", _li("tool")),
]
