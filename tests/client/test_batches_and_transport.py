"""Concurrent embedding batches (``feature_extraction(batch_size=)``, sync and async, and the
adapters on top), and what the urllib3 transport keeps of requests: the environment's proxies,
``NO_PROXY``, redirects that turn a POST into a GET, a caller's own pool manager."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import urllib3

from hfbridge import BadRequestError, InferenceClient, InvalidInputError
from tests.scripted_server import Recorded, Reply, ScriptedServer

M = "org/model"
ROUTE = f"/models/{M}/feature-extraction"
TEXTS = [f"text {i}" for i in range(10)]


class Embedder:
    """Answers each text ``text N`` with the vector ``[N, 0]`` (so order is checkable), fails a
    batch that holds ``text {fail}``, and records the most requests handled at once."""

    def __init__(self, *, fail: int | None = None, delay: float = 0.05) -> None:
        self.fail = fail
        self.delay = delay
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)

    def __call__(self, record: Recorded) -> Reply:
        texts = record.json()["inputs"]
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self._wake.notify_all()
            # hold each request until a second one is in flight (or the delay passes), so a
            # client that sends batches one after another shows a peak of 1 and never 2
            self._wake.wait_for(lambda: self.active > 1, timeout=self.delay)
            self.active -= 1
        if self.fail is not None and f"text {self.fail}" in texts:
            return Reply(400, {"error": "this batch is refused"})
        return Reply(body=[[float(text.split()[1]), 0.0] for text in texts])


def test_batches_are_sent_concurrently_and_come_back_in_order(server: ScriptedServer, make_client: Any) -> None:
    embedder = Embedder()
    server.on(ROUTE, embedder)
    vectors = make_client(server.url, max_concurrency=3).feature_extraction(TEXTS, model=M, batch_size=3)
    assert [v[0] for v in vectors] == [float(i) for i in range(10)]
    assert sorted(len(r.json()["inputs"]) for r in server.requests) == [1, 3, 3, 3]
    assert 2 <= embedder.peak <= 3


def test_one_failed_batch_fails_the_call(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, Embedder(fail=7))
    with pytest.raises(BadRequestError, match="refused"):
        make_client(server.url, max_retries=0).feature_extraction(TEXTS, model=M, batch_size=3)


def test_a_list_within_the_batch_size_is_one_request(server: ScriptedServer, make_client: Any) -> None:
    server.on(ROUTE, Embedder(delay=0))
    vectors = make_client(server.url).feature_extraction(TEXTS, model=M, batch_size=32)
    assert len(vectors) == 10 and len(server.requests) == 1
    assert server.requests[0].json() == {"inputs": TEXTS}  # the very body sent without batch_size


@pytest.mark.parametrize("size", [0, -1, 2.5, True])
def test_a_bad_batch_size_is_refused_before_sending(size: Any, server: ScriptedServer, make_client: Any) -> None:
    with pytest.raises(InvalidInputError, match="batch_size"):
        make_client(server.url).feature_extraction(TEXTS, model=M, batch_size=size)
    assert server.requests == []


def test_langchain_embeddings_send_batches_concurrently_in_order(server: ScriptedServer) -> None:
    from hfbridge.langchain import HFInferenceEmbeddings

    embedder = Embedder()
    server.on(ROUTE, embedder)
    with HFInferenceEmbeddings(base_url=server.url, token=None, model=M, batch_size=4, max_concurrency=2) as emb:
        assert [v[0] for v in emb.embed_documents(TEXTS)] == [float(i) for i in range(10)]
        assert [v[0] for v in asyncio.run(emb.aembed_documents(TEXTS))] == [float(i) for i in range(10)]
    assert len(server.requests) == 6 and embedder.peak == 2


def test_llama_index_embedding_sends_batches_concurrently_with_an_event_each(server: ScriptedServer) -> None:
    from llama_index.core.callbacks import CallbackManager, LlamaDebugHandler
    from llama_index.core.callbacks.schema import CBEventType

    from hfbridge.llama_index import HFInferenceEmbedding

    embedder = Embedder()
    server.on(ROUTE, embedder)
    debug = LlamaDebugHandler()
    with HFInferenceEmbedding(base_url=server.url, token=None, model_name=M, embed_batch_size=3,
                              callback_manager=CallbackManager([debug])) as emb:
        vectors = emb.get_text_embedding_batch(TEXTS)
        with pytest.raises(Exception, match="refused"):
            server.on(ROUTE, Embedder(fail=4))
            emb.get_text_embedding_batch(TEXTS)
    assert [v[0] for v in vectors] == [float(i) for i in range(10)]
    assert embedder.peak >= 2
    pairs = debug.get_event_pairs(CBEventType.EMBEDDING)
    assert len(pairs) >= 4 and all(len(pair) == 2 for pair in pairs[:4])  # start and end per batch


# --------------------------------------------------------------------------------------------
# The transport: what requests did and urllib3 must do too
# --------------------------------------------------------------------------------------------
OK = Reply(body=[[0.5, 0.5]])


def test_http_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with ScriptedServer() as proxy:
        proxy.on("*", OK)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with InferenceClient("http://hfbridge-proxy-test.invalid", token=False, max_retries=0) as client:
            assert client.feature_extraction(["a"], model=M) == [[0.5, 0.5]]
    assert proxy.requests[0].path == f"http://hfbridge-proxy-test.invalid{ROUTE}"  # absolute form: to a proxy


def test_no_proxy_sends_directly(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.on(ROUTE, OK)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with InferenceClient(server.url, token=False, max_retries=0) as client:
        assert client.feature_extraction(["a"], model=M) == [[0.5, 0.5]]
    assert server.requests[0].path == ROUTE


@pytest.mark.parametrize(("status", "method", "body_kept"), [(302, "GET", False), (303, "GET", False), (307, "POST", True), (308, "POST", True)])
def test_redirects_change_the_method_as_requests_did(status: int, method: str, body_kept: bool, server: ScriptedServer) -> None:
    server.on(ROUTE, Reply(status, b"", headers={"Location": "/elsewhere"}))
    server.on("/elsewhere", OK)
    with InferenceClient(server.url, token="hf_SameOriginTokenIsKept0123456789", max_retries=0) as client:
        client.feature_extraction(["a"], model=M)
    hop = server.requests[1]
    assert (hop.method, hop.path) == (method, "/elsewhere")
    assert (hop.body == b'{"inputs":["a"]}') is body_kept
    assert hop.headers["authorization"].startswith("Bearer ")  # the same origin keeps it


def test_a_pool_manager_of_ones_own_is_used_and_a_requests_session_refused(server: ScriptedServer) -> None:
    server.on(ROUTE, OK)
    manager = urllib3.PoolManager()
    with InferenceClient(server.url, token=False, session=manager) as client:
        assert client.feature_extraction(["a"], model=M) == [[0.5, 0.5]]
    assert manager.pools  # it carried the request, and closing the client left it open
    manager.clear()
    with pytest.raises(TypeError, match="urllib3.PoolManager"):
        InferenceClient(server.url, token=False, session=object())


def test_a_request_goes_out_in_one_send_headers_and_body_together(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import http.client

    sends: list[bytes] = []
    original = http.client.HTTPConnection.send

    def counting(self: Any, data: Any) -> None:
        sends.append(bytes(data))
        original(self, data)

    monkeypatch.setattr(http.client.HTTPConnection, "send", counting)
    server.on("/models/m/text-generation", Reply(body=[{"generated_text": "ok"}]))
    with InferenceClient(server.url, token=None) as client:
        for _ in range(3):
            assert client.text_generation("hello", model="m").generated_text == "ok"
    assert len(sends) == 3 and all(b'"inputs":"hello"' in s.replace(b" ", b"") and s.startswith(b"POST ") for s in sends)
    assert server.requests[-1].json()["inputs"] == "hello"  # the server read the whole body
