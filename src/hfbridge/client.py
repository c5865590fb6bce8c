"""The synchronous client: the shared task methods over a pooled ``requests.Session``.

This module only moves bytes: every decision (URL, body, headers, retries, parsing, errors) is
made by :mod:`hfbridge.protocol` and :mod:`hfbridge.retry`, exactly as for the async client.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterator, Mapping

import requests
from requests.adapters import HTTPAdapter

from . import errors as e
from ._base import TaskMethods
from .config import ClientConfig, Layout, RetryPolicy
from .protocol import USER_AGENT, Call, Request, StreamProcessor, build_request, error_from_response, needs_download, parse_response
from .retry import Send, Sleep, retry_flow

__all__ = ["InferenceClient", "SyncStream"]

logger = logging.getLogger("hfbridge")


def _new_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _transport_error(exc: BaseException, url: str) -> e.APIConnectionError:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, requests.Timeout) or "timed out" in text.lower():
        return e.APITimeoutError(f"Request timed out ({text[:300]})", url=url)
    return e.APIConnectionError(f"Connection error ({text[:300]})", url=url)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


class InferenceClient(TaskMethods):
    """Hugging Face inference, synchronously.

    >>> from hfbridge import InferenceClient
    >>> with InferenceClient("http://127.0.0.1:8000") as client:
    ...     len(client.feature_extraction("I like you", model="sentence-transformers/all-MiniLM-L6-v2"))
    384

    ``base_url`` defaults to ``HF_INFERENCE_ENDPOINT``, then the hosted API; ``token`` to
    ``HF_TOKEN``, then ``HUGGINGFACEHUB_API_TOKEN`` (``token=False`` sends none). ``layout`` is
    inferred from ``base_url`` (huggingface.co hosts: ``"hosted"``; else ``"spec"``) and may be
    set to ``"spec"``, ``"hosted"`` or ``"endpoint"``. The session is pooled and thread-safe
    for concurrent calls; ``max_concurrency`` sizes the pool. ``retry`` replaces the whole
    :class:`~hfbridge.RetryPolicy` (backoff, caps, deadline); ``max_retries`` then adjusts it.
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
        session: requests.Session | None = None,
    ) -> None:
        self._config = ClientConfig.resolve(
            base_url=base_url, token=token, layout=layout, timeout=timeout,
            max_retries=max_retries, headers=headers, max_concurrency=max_concurrency, retry=retry,
        )
        self._session = session or _new_session(self._config.max_concurrency)
        self._owns_transport = session is None

    def __repr__(self) -> str:
        return f"InferenceClient(base_url={self._config.base_url!r}, layout={self._config.layout.value!r}, token={'set' if self._config.token else 'none'})"

    # ---- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_transport:
            self._session.close()

    def __enter__(self) -> "InferenceClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- transport ---------------------------------------------------------------------------
    def _prepare(self, call: Call) -> Call:
        url = needs_download(self._config, call)
        if url is None:
            return call
        # A plain GET with no Authorization: the token is for base_url's origin only.
        try:
            response = self._session.get(url, headers={"User-Agent": USER_AGENT}, timeout=(self._config.connect_timeout, self._config.timeout))
        except requests.RequestException as exc:
            raise _transport_error(exc, url) from exc
        if response.status_code != 200:
            raise e.InvalidInputError(call.spec.input_kind.value, f"could not download {url}: HTTP {response.status_code}")
        return call.with_binary(response.content)

    def _send(self, request: Request, timeout: float) -> requests.Response:
        try:
            return self._session.request(
                request.method, request.url, data=request.content, headers=request.headers,
                timeout=(min(self._config.connect_timeout, timeout), timeout), stream=request.stream,
            )
        except requests.RequestException as exc:
            raise _transport_error(exc, request.url) from exc

    def _request(self, call: Call) -> tuple[requests.Response, bytes | None]:
        """Send with retries; returns the final response (its body read unless streaming)."""
        flow = retry_flow(self._config.retry, timeout=self._config.timeout, wait_for_model=bool(call.options.wait_for_model))
        action = next(flow)
        while True:
            if isinstance(action, Sleep):
                logger.info("hfbridge: retrying in %.2fs (%s)", action.seconds, action.reason)
                time.sleep(action.seconds)
                action = next(flow)
                continue
            assert isinstance(action, Send)
            request = build_request(self._config, call.waiting_for_model() if action.wait_for_model else call)
            started = time.monotonic()
            error: e.InferenceError | None = None
            response: requests.Response | None = None
            body: bytes | None = None
            try:
                response = self._send(request, action.timeout)
                if not (request.stream and 200 <= response.status_code < 300):
                    try:
                        body = response.content
                    except requests.RequestException as exc:
                        raise _transport_error(exc, request.url) from exc
                    if not 200 <= response.status_code < 300:
                        error = error_from_response(self._config, response.status_code, _lower(response.headers), body, model=call.model)
            except e.APIConnectionError as exc:
                error = exc
            logger.debug("hfbridge: POST %s -> %s in %.3fs (attempt %d)", request.url,
                         response.status_code if response is not None else type(error).__name__,
                         time.monotonic() - started, action.attempt + 1)
            try:
                action = flow.send(error)
            except StopIteration:
                assert response is not None
                return response, body

    def _execute(self, call: Call) -> Any:
        call = self._prepare(call)
        response, body = self._request(call)
        return parse_response(self._config, call, response.status_code, _lower(response.headers), body or b"")

    def _stream(self, call: Call) -> "SyncStream":
        call = self._prepare(call)
        response, _ = self._request(call)
        return SyncStream(response, StreamProcessor(self._config, call, response.status_code))


class SyncStream:
    """An iterator of stream outputs. Stopping early (``break``, ``close()``, leaving a ``with``
    block) closes the HTTP response, so its connection is released at once."""

    def __init__(self, response: requests.Response, processor: StreamProcessor) -> None:
        self._response = response
        self._processor = processor
        self._iterator = self._iterate()

    def _iterate(self) -> Iterator[Any]:
        try:
            try:
                for chunk in self._response.iter_content(chunk_size=None):
                    yield from self._processor.feed(chunk)
                    if self._processor.finished:
                        return
            except requests.RequestException as exc:
                raise _transport_error(exc, self._response.url) from exc
            yield from self._processor.end()
        finally:
            self._response.close()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._iterator)

    def close(self) -> None:
        self._iterator.close()
        self._response.close()

    def __enter__(self) -> "SyncStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self._response.close()
