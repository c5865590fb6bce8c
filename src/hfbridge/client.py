"""The synchronous client: the shared task methods over pooled urllib3 connections.

This module only moves bytes: every decision (URL, body, headers, retries, parsing, errors) is
made by :mod:`hfbridge.protocol` and :mod:`hfbridge.retry`, exactly as for the async client.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterator, Mapping

from . import errors as e
from ._base import TaskMethods
from ._concurrency import map_in_threads
from ._sync_transport import Exchange, SyncTransport
from .config import ClientConfig, Layout, RetryPolicy
from .limits import BodyLimit
from .protocol import USER_AGENT, Call, Request, StreamProcessor, build_request, error_from_response, needs_download, parse_response
from .retry import Send, Sleep, retry_flow

__all__ = ["InferenceClient", "SyncStream"]

logger = logging.getLogger("hfbridge")


class InferenceClient(TaskMethods):
    """Hugging Face inference, synchronously.

    >>> from hfbridge import InferenceClient
    >>> with InferenceClient("http://127.0.0.1:8000") as client:
    ...     len(client.feature_extraction("I like you", model="sentence-transformers/all-MiniLM-L6-v2"))
    384

    ``base_url`` defaults to ``HF_INFERENCE_ENDPOINT``, then the hosted API; ``token`` to
    ``HF_TOKEN``, then ``HUGGINGFACEHUB_API_TOKEN`` (``token=False`` sends none). ``layout`` is
    inferred from ``base_url`` (huggingface.co hosts: ``"hosted"``; else ``"spec"``) and may be
    set to ``"spec"``, ``"hosted"`` or ``"endpoint"``. Connections are pooled and thread-safe
    for concurrent calls; ``max_concurrency`` bounds them (threads beyond it wait for a free
    one, within their timeout); ``session`` may be a ``urllib3.PoolManager`` of your own to send
    through. Proxy and CA-bundle variables are read when the client is made. ``timeout`` bounds each attempt and ``deadline`` the whole
    call, headers and body (a server trickling its answer is cut off on time); streams are bounded
    per read by ``timeout`` and as a whole by ``deadline``. ``max_response_bytes`` bounds an
    answer, compressed and decompressed. ``retry`` replaces the whole
    :class:`~hfbridge.RetryPolicy` (backoff, caps, deadline); ``max_retries`` and ``deadline``
    then adjust it. Close it with ``close()`` or a ``with`` block (a forgotten client is closed
    when collected and at interpreter exit).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | bool | None = None,
        layout: Layout | str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
        max_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
        max_response_bytes: int | None = None,
        session: Any = None,
    ) -> None:
        self._config = ClientConfig.resolve(
            base_url=base_url, token=token, layout=layout, timeout=timeout,
            max_retries=max_retries, headers=headers, max_concurrency=max_concurrency, retry=retry,
            deadline=deadline, max_response_bytes=max_response_bytes,
        )
        self._transport = SyncTransport(self._config.max_concurrency, session)
        self._owns_transport = session is None

    def __repr__(self) -> str:
        return f"InferenceClient(base_url={self._config.base_url!r}, layout={self._config.layout.value!r}, token={'set' if self._config.token else 'none'})"

    # ---- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_transport:
            self._transport.close()

    def __enter__(self) -> "InferenceClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- transport ---------------------------------------------------------------------------
    def download(self, url: str, *, public_only: bool = False) -> bytes:
        """The bytes at ``url`` (a plain GET, without the token: it is for ``base_url``'s origin
        only), bounded like any answer. ``public_only``: refuse loopback, private and
        link-local addresses, checked on every connection (what agent tools use)."""
        with e.token_redacted(self._config.token):
            config = self._config
            status, data = self._transport.fetch(
                url, headers={"User-Agent": USER_AGENT}, timeout=config.timeout, connect_timeout=config.connect_timeout,
                limit=BodyLimit(config.max_response_bytes, url), public_only=public_only,
            )
        if status != 200:
            raise e.InvalidInputError("url", f"could not download {url}: HTTP {status}")
        return data

    def _prepare(self, call: Call) -> Call:
        url = needs_download(self._config, call)
        if url is None:
            return call
        try:
            return call.with_binary(self.download(url))
        except e.InvalidInputError as exc:
            raise e.InvalidInputError(call.spec.input_kind.value, exc.problem) from None

    def _request(self, call: Call) -> tuple[Exchange, bytes | None]:
        """Send with retries; the final exchange (its body read unless streaming)."""
        config = self._config
        flow = retry_flow(config.retry, timeout=config.timeout, wait_for_model=bool(call.options.wait_for_model))
        call_started = time.monotonic()
        action = next(flow)
        while True:
            if isinstance(action, Sleep):
                logger.info("hfbridge: retrying in %.2fs (%s)", action.seconds, action.reason)
                time.sleep(action.seconds)
                action = next(flow)
                continue
            assert isinstance(action, Send)
            request = build_request(config, call.waiting_for_model() if action.wait_for_model else call)
            started = time.monotonic()
            error: e.InferenceError | None = None
            exchange: Exchange | None = None
            body: bytes | None = None
            try:
                exchange = self._send(request, action.timeout)
                if not (request.stream and 200 <= exchange.status < 300):
                    try:
                        body = exchange.read_all(BodyLimit(config.max_response_bytes, request.url))
                    finally:
                        exchange.finish()
                    if not 200 <= exchange.status < 300:
                        error = error_from_response(config, exchange.status, exchange.headers, body, model=call.model)
                elif config.retry.deadline is not None:
                    exchange.keep_alive_for(config.retry.deadline - (time.monotonic() - call_started))
                else:
                    exchange.keep_alive_for(None)
            except e.APIConnectionError as exc:
                error = exc
            logger.debug("hfbridge: POST %s -> %s in %.3fs (attempt %d)", request.url,
                         exchange.status if exchange is not None else type(error).__name__,
                         time.monotonic() - started, action.attempt + 1)
            try:
                action = flow.send(error)
            except StopIteration:
                assert exchange is not None
                return exchange, body

    def _send(self, request: Request, timeout: float) -> Exchange:
        config = self._config
        return self._transport.exchange(request.method, request.url, headers=request.headers, content=request.content,
                                        timeout=timeout, connect_timeout=config.connect_timeout)

    def _execute(self, call: Call) -> Any:
        with e.token_redacted(self._config.token):
            call = self._prepare(call)
            exchange, body = self._request(call)
            return parse_response(self._config, call, exchange.status, exchange.headers, body or b"")

    def _execute_batches(self, calls: list[Call]) -> list[Any]:
        results = map_in_threads(self._execute, calls, self._config.max_concurrency)
        return [item for result in results for item in result]

    def _stream(self, call: Call) -> "SyncStream":
        with e.token_redacted(self._config.token):
            call = self._prepare(call)
            exchange, _ = self._request(call)
            return SyncStream(exchange, StreamProcessor(self._config, call, exchange.status), self._config)


class SyncStream:
    """An iterator of stream outputs. Stopping early (``break``, ``close()``, leaving a ``with``
    block) closes the HTTP response, so its connection is released at once."""

    def __init__(self, exchange: Exchange, processor: StreamProcessor, config: ClientConfig) -> None:
        self._exchange = exchange
        self._processor = processor
        self._config = config
        self._iterator = self._iterate()

    def _iterate(self) -> Iterator[Any]:
        try:
            with e.token_redacted(self._config.token):
                limit = BodyLimit(self._config.max_response_bytes, self._exchange.url)
                for chunk in self._exchange.iter_body(limit):
                    yield from self._processor.feed(chunk)
                    if self._processor.finished:
                        return
                yield from self._processor.end()
        finally:
            self._exchange.finish()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._iterator)

    def close(self) -> None:
        self._iterator.close()
        self._exchange.finish()

    def __enter__(self) -> "SyncStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        exchange = getattr(self, "_exchange", None)
        if exchange is not None:
            exchange.finish()
