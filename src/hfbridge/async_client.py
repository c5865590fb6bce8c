"""The asynchronous client: the shared task methods over ``httpx.AsyncClient``.

Concurrency is bounded by a semaphore in front of the pool (``max_concurrency``), because
httpx's pool degrades when thousands of requests queue inside it. One ``httpx.AsyncClient`` is
kept per event loop: a client made in one ``asyncio.run`` and used in the next would otherwise
hold connections bound to a closed loop (a classic failure of shared LangChain components).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any, AsyncIterator, Generator, Mapping

import httpx

from . import errors as e
from ._base import TaskMethods
from .config import ClientConfig, Layout, RetryPolicy
from .protocol import USER_AGENT, Call, Request, StreamProcessor, build_request, error_from_response, needs_download, parse_response
from .retry import Send, Sleep, retry_flow

__all__ = ["AsyncInferenceClient", "AsyncStream"]

logger = logging.getLogger("hfbridge")


def _transport_error(exc: BaseException, url: str) -> e.APIConnectionError:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, httpx.TimeoutException):
        return e.APITimeoutError(f"Request timed out ({text[:300]})", url=url)
    return e.APIConnectionError(f"Connection error ({text[:300]})", url=url)


class _LoopState:
    __slots__ = ("client", "semaphore")

    def __init__(self, client: httpx.AsyncClient, semaphore: asyncio.Semaphore) -> None:
        self.client = client
        self.semaphore = semaphore


class AsyncInferenceClient(TaskMethods):
    """Hugging Face inference, asynchronously: the same methods as
    :class:`~hfbridge.InferenceClient`, awaited. Streams (``stream=True``) are async iterators;
    ``await`` on one first sends the request (and raises its errors) before iteration."""

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
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = ClientConfig.resolve(
            base_url=base_url, token=token, layout=layout, timeout=timeout,
            max_retries=max_retries, headers=headers, max_concurrency=max_concurrency, retry=retry,
        )
        self._given_client = http_client
        self._per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState]" = weakref.WeakKeyDictionary()
        self._owns_transport = http_client is None

    def __repr__(self) -> str:
        return f"AsyncInferenceClient(base_url={self._config.base_url!r}, layout={self._config.layout.value!r}, token={'set' if self._config.token else 'none'})"

    # ---- lifecycle -----------------------------------------------------------------------------
    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._per_loop.get(loop)
        if state is None:
            client = self._given_client or httpx.AsyncClient(
                timeout=httpx.Timeout(self._config.timeout, connect=self._config.connect_timeout),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=self._config.max_concurrency),
                follow_redirects=True,
            )
            state = _LoopState(client, asyncio.Semaphore(self._config.max_concurrency))
            self._per_loop[loop] = state
        return state

    async def aclose(self) -> None:
        """Close the pool of the running loop (and forget the others, whose loops are gone)."""
        if not self._owns_transport:
            return
        states = list(self._per_loop.items())
        self._per_loop.clear()
        running = asyncio.get_running_loop()
        for loop, state in states:
            if loop is running:
                await state.client.aclose()

    close = aclose

    async def __aenter__(self) -> "AsyncInferenceClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # ---- transport ---------------------------------------------------------------------------
    async def _prepare(self, call: Call) -> Call:
        url = needs_download(self._config, call)
        if url is None:
            return call
        state = self._state()
        try:
            # A fresh request with no Authorization: the token is for base_url's origin only.
            response = await state.client.get(url, headers={"User-Agent": USER_AGENT})
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url) from exc
        if response.status_code != 200:
            raise e.InvalidInputError(call.spec.input_kind.value, f"could not download {url}: HTTP {response.status_code}")
        return call.with_binary(response.content)

    async def _send(self, state: _LoopState, request: Request, timeout: float) -> httpx.Response:
        http_request = state.client.build_request(
            request.method, request.url, content=request.content, headers=request.headers,
            timeout=httpx.Timeout(timeout, connect=min(self._config.connect_timeout, timeout)),
        )
        try:
            return await state.client.send(http_request, stream=request.stream)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, request.url) from exc

    async def _request(self, call: Call) -> tuple[httpx.Response, bytes | None]:
        state = self._state()
        flow = retry_flow(self._config.retry, timeout=self._config.timeout, wait_for_model=bool(call.options.wait_for_model))
        action = next(flow)
        while True:
            if isinstance(action, Sleep):
                logger.info("hfbridge: retrying in %.2fs (%s)", action.seconds, action.reason)
                await asyncio.sleep(action.seconds)
                action = next(flow)
                continue
            assert isinstance(action, Send)
            request = build_request(self._config, call.waiting_for_model() if action.wait_for_model else call)
            started = time.monotonic()
            error: e.InferenceError | None = None
            response: httpx.Response | None = None
            body: bytes | None = None
            async with state.semaphore:
                try:
                    response = await self._send(state, request, action.timeout)
                    if not (request.stream and 200 <= response.status_code < 300):
                        try:
                            body = await response.aread()
                        except httpx.HTTPError as exc:
                            raise _transport_error(exc, request.url) from exc
                        finally:
                            await response.aclose()
                        if not 200 <= response.status_code < 300:
                            error = error_from_response(self._config, response.status_code, response.headers, body, model=call.model)
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

    async def _execute_async(self, call: Call) -> Any:
        call = await self._prepare(call)
        response, body = await self._request(call)
        return parse_response(self._config, call, response.status_code, response.headers, body or b"")

    def _execute(self, call: Call) -> Any:
        return self._execute_async(call)

    def _stream(self, call: Call) -> "AsyncStream":
        return AsyncStream(self, call)

    async def _open_stream(self, call: Call) -> tuple[httpx.Response, StreamProcessor]:
        call = await self._prepare(call)
        response, _ = await self._request(call)
        return response, StreamProcessor(self._config, call, response.status_code)


class AsyncStream:
    """An async iterator of stream outputs.

    ``async for x in client.text_generation(..., stream=True)`` works directly; ``await`` on it
    sends the request first (errors surface there). Stopping early: ``aclose()`` or
    ``async with`` releases the connection at once; an abandoned iterator releases it when the
    event loop finalises the generator.
    """

    def __init__(self, client: AsyncInferenceClient, call: Call) -> None:
        self._client = client
        self._call = call
        self._response: httpx.Response | None = None
        self._processor: StreamProcessor | None = None
        self._iterator: AsyncIterator[Any] | None = None

    async def _open(self) -> "AsyncStream":
        if self._response is None:
            self._response, self._processor = await self._client._open_stream(self._call)
        return self

    def __await__(self) -> Generator[Any, None, "AsyncStream"]:
        return self._open().__await__()

    async def _iterate(self) -> AsyncIterator[Any]:
        await self._open()
        assert self._response is not None and self._processor is not None
        try:
            try:
                async for chunk in self._response.aiter_bytes():
                    for out in self._processor.feed(chunk):
                        yield out
                    if self._processor.finished:
                        return
            except httpx.HTTPError as exc:
                raise _transport_error(exc, str(self._response.url)) from exc
            for out in self._processor.end():
                yield out
        finally:
            await self._response.aclose()

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._iterator is None:
            self._iterator = self._iterate()
        return self._iterator

    async def __anext__(self) -> Any:
        return await self.__aiter__().__anext__()

    async def aclose(self) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]
        if self._response is not None:
            await self._response.aclose()

    async def __aenter__(self) -> "AsyncStream":
        return await self._open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
