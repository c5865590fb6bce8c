"""The asynchronous client: the shared task methods over ``aiohttp``.

Chosen by measurement (``benchmarks/bench_async_transport.py``): with many requests in flight,
aiohttp's pool answered several times more requests per second than httpx's on this kind of
machine. Concurrency is bounded anyway, by a semaphore in front of the pool
(``max_concurrency``), so a burst of thousands of calls queues here instead of inside the pool.

One ``aiohttp.ClientSession`` is kept per event loop: a session made in one ``asyncio.run`` and
used in the next would otherwise hold connections bound to a closed loop (a classic failure of
shared LangChain components).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any, AsyncIterator, Generator, Mapping

import aiohttp

from . import errors as e
from ._base import TaskMethods
from .config import ClientConfig, Layout, RetryPolicy
from .protocol import USER_AGENT, Call, Request, StreamProcessor, build_request, error_from_response, needs_download, parse_response
from .retry import Send, Sleep, retry_flow

__all__ = ["AsyncInferenceClient", "AsyncStream"]

logger = logging.getLogger("hfbridge")


def _transport_error(exc: BaseException, url: str) -> e.APIConnectionError:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return e.APITimeoutError(f"Request timed out ({text[:300]})", url=url)
    return e.APIConnectionError(f"Connection error ({text[:300]})", url=url)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


class _LoopState:
    __slots__ = ("session", "semaphore")

    def __init__(self, session: aiohttp.ClientSession, semaphore: asyncio.Semaphore) -> None:
        self.session = session
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
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._config = ClientConfig.resolve(
            base_url=base_url, token=token, layout=layout, timeout=timeout,
            max_retries=max_retries, headers=headers, max_concurrency=max_concurrency, retry=retry,
        )
        self._given_session = session
        self._per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState]" = weakref.WeakKeyDictionary()
        self._owns_transport = session is None

    def __repr__(self) -> str:
        return f"AsyncInferenceClient(base_url={self._config.base_url!r}, layout={self._config.layout.value!r}, token={'set' if self._config.token else 'none'})"

    # ---- lifecycle -----------------------------------------------------------------------------
    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._per_loop.get(loop)
        if state is None:
            session = self._given_session or aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(total=None),
            )
            state = _LoopState(session, asyncio.Semaphore(self._config.max_concurrency))
            self._per_loop[loop] = state
        return state

    async def aclose(self) -> None:
        """Close the running loop's pool (and forget the others, whose loops are gone)."""
        if not self._owns_transport:
            return
        states = list(self._per_loop.items())
        self._per_loop.clear()
        running = asyncio.get_running_loop()
        for loop, state in states:
            if loop is running:
                await state.session.close()

    close = aclose

    async def __aenter__(self) -> "AsyncInferenceClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # ---- transport ---------------------------------------------------------------------------
    def _timeout(self, seconds: float, *, stream: bool) -> aiohttp.ClientTimeout:
        connect = min(self._config.connect_timeout, seconds)
        if stream:  # a stream may run long; what must not stall is each read
            return aiohttp.ClientTimeout(total=None, connect=connect, sock_read=seconds)
        return aiohttp.ClientTimeout(total=seconds, connect=connect)

    async def _prepare(self, call: Call) -> Call:
        url = needs_download(self._config, call)
        if url is None:
            return call
        state = self._state()
        try:
            # A fresh request with no Authorization: the token is for base_url's origin only.
            async with state.session.get(url, headers={"User-Agent": USER_AGENT}, timeout=self._timeout(self._config.timeout, stream=False)) as response:
                status, data = response.status, await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _transport_error(exc, url) from exc
        if status != 200:
            raise e.InvalidInputError(call.spec.input_kind.value, f"could not download {url}: HTTP {status}")
        return call.with_binary(data)

    async def _send(self, state: _LoopState, request: Request, timeout: float) -> aiohttp.ClientResponse:
        try:
            return await state.session.request(
                request.method, request.url, data=request.content, headers=request.headers,
                timeout=self._timeout(timeout, stream=request.stream), allow_redirects=True,
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _transport_error(exc, request.url) from exc

    async def _request(self, call: Call) -> tuple[aiohttp.ClientResponse, bytes | None]:
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
            response: aiohttp.ClientResponse | None = None
            body: bytes | None = None
            async with state.semaphore:
                try:
                    response = await self._send(state, request, action.timeout)
                    if not (request.stream and 200 <= response.status < 300):
                        try:
                            body = await response.read()
                        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                            raise _transport_error(exc, request.url) from exc
                        finally:
                            response.release()
                        if not 200 <= response.status < 300:
                            error = error_from_response(self._config, response.status, _lower(response.headers), body, model=call.model)
                except e.APIConnectionError as exc:
                    error = exc
            logger.debug("hfbridge: POST %s -> %s in %.3fs (attempt %d)", request.url,
                         response.status if response is not None else type(error).__name__,
                         time.monotonic() - started, action.attempt + 1)
            try:
                action = flow.send(error)
            except StopIteration:
                assert response is not None
                return response, body

    async def _execute_async(self, call: Call) -> Any:
        call = await self._prepare(call)
        response, body = await self._request(call)
        return parse_response(self._config, call, response.status, _lower(response.headers), body or b"")

    def _execute(self, call: Call) -> Any:
        return self._execute_async(call)

    def _stream(self, call: Call) -> "AsyncStream":
        return AsyncStream(self, call)

    async def _open_stream(self, call: Call) -> tuple[aiohttp.ClientResponse, StreamProcessor]:
        call = await self._prepare(call)
        response, _ = await self._request(call)
        return response, StreamProcessor(self._config, call, response.status)


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
        self._response: aiohttp.ClientResponse | None = None
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
                async for chunk in self._response.content.iter_any():
                    for out in self._processor.feed(chunk):
                        yield out
                    if self._processor.finished:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise _transport_error(exc, str(self._response.url)) from exc
            for out in self._processor.end():
                yield out
        finally:
            self._close_response()

    def _close_response(self) -> None:
        """Drop the connection unless the body was read to its end (then it can be reused)."""
        if self._response is not None:
            if self._response.content.at_eof():
                self._response.release()
            else:
                self._response.close()

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._iterator is None:
            self._iterator = self._iterate()
        return self._iterator

    async def __anext__(self) -> Any:
        return await self.__aiter__().__anext__()

    async def aclose(self) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]
        self._close_response()

    async def __aenter__(self) -> "AsyncStream":
        return await self._open()

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
