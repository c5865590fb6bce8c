"""The asynchronous client: the shared task methods over ``aiohttp``.

Chosen by measurement (``benchmarks/bench_async_transport.py``): with many requests in flight,
aiohttp's pool answered several times more requests per second than httpx's on this kind of
machine. Concurrency is bounded anyway, by a semaphore in front of the pool
(``max_concurrency``), so a burst of thousands of calls queues here instead of inside the pool.

One ``aiohttp.ClientSession`` is kept per event loop: a session made in one ``asyncio.run`` and
used in the next would otherwise hold connections bound to a closed loop (a classic failure of
shared LangChain components). Each is closed when its loop ends, when the client is collected or
at interpreter exit (see :mod:`hfbridge._async_transport`). aiohttp itself is imported when a
client first sends (:mod:`hfbridge._aiohttp_io`), not when hfbridge is imported.
"""

from __future__ import annotations

import logging
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any, AsyncIterator, Generator, Mapping

from . import errors as e
from ._async_transport import LoopPools, LoopState
from ._concurrency import recording_gate
from ._base import TaskMethods
from .config import ClientConfig, Layout, RetryPolicy
from .limits import BodyLimit
from .protocol import USER_AGENT, Call, Request, StreamProcessor, build_request, error_from_response, needs_download, parse_response
from .retry import Send, Sleep, retry_flow

if TYPE_CHECKING:
    import aiohttp

# asyncio and aiohttp are imported by the coroutines that need them: importing hfbridge for its
# sync client costs neither (a running loop has imported asyncio already).

__all__ = ["AsyncInferenceClient", "AsyncStream"]

logger = logging.getLogger("hfbridge")


def _io() -> ModuleType:
    """:mod:`hfbridge._aiohttp_io`, imported on first use (a module look-up after that)."""
    from . import _aiohttp_io

    return _aiohttp_io


class AsyncInferenceClient(TaskMethods):
    """Hugging Face inference, asynchronously: the same methods as
    :class:`~hfbridge.InferenceClient`, awaited. Streams (``stream=True``) are async iterators;
    ``await`` on one first sends the request (and raises its errors) before iteration. Bounds
    and settings are those of the sync client; ``aclose()`` / ``async with`` close the pool, and
    a forgotten one is closed when its event loop ends, when it is collected, or at exit."""

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
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._config = ClientConfig.resolve(
            base_url=base_url, token=token, layout=layout, timeout=timeout,
            max_retries=max_retries, headers=headers, max_concurrency=max_concurrency, retry=retry,
            deadline=deadline, max_response_bytes=max_response_bytes,
        )
        self._pools = LoopPools(self._config.max_concurrency, session)
        self._owns_transport = session is None

    def __repr__(self) -> str:
        return f"AsyncInferenceClient(base_url={self._config.base_url!r}, layout={self._config.layout.value!r}, token={'set' if self._config.token else 'none'})"

    # ---- lifecycle -----------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the running loop's pool (and those of loops that ran before)."""
        if self._owns_transport:
            await self._pools.aclose()

    def close(self) -> "_Closed":
        """Close every pool now, from sync code or async (``await client.close()`` also works)."""
        if self._owns_transport:
            self._pools.close()
        return _Closed()

    async def __aenter__(self) -> "AsyncInferenceClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # ---- transport ---------------------------------------------------------------------------
    def _timeout(self, seconds: float, *, stream_total: float | None = None, stream: bool = False) -> aiohttp.ClientTimeout:
        return _io().client_timeout(seconds, self._config.connect_timeout, stream_total=stream_total, stream=stream)

    async def download(self, url: str, *, public_only: bool = False) -> bytes:
        """The bytes at ``url``, as :meth:`InferenceClient.download <hfbridge.InferenceClient.download>`."""
        with e.token_redacted(self._config.token):
            state = await self._pools.state()
            session = state.public_session() if public_only else state.session
            io = _io()
            try:
                # A fresh request with no Authorization: the token is for base_url's origin only.
                async with state.semaphore, session.get(url, headers={"User-Agent": USER_AGENT}, timeout=self._timeout(self._config.timeout)) as response:
                    status, data = response.status, await io.read_body(response, BodyLimit(self._config.max_response_bytes, url))
            except io.TRANSPORT_ERRORS as exc:
                raise io.translate(exc, url, self._config.timeout) from exc
        if status != 200:
            raise e.InvalidInputError("url", f"could not download {url}: HTTP {status}")
        return data

    async def _prepare(self, call: Call) -> Call:
        url = needs_download(self._config, call)
        if url is None:
            return call
        try:
            return call.with_binary(await self.download(url))
        except e.InvalidInputError as exc:
            raise e.InvalidInputError(call.spec.input_kind.value, exc.problem) from None

    async def _send(self, state: LoopState, request: Request, timeout: float, stream_total: float | None) -> aiohttp.ClientResponse:
        sending = state.session.request(
            request.method, request.url, data=request.content, headers=request.headers,
            timeout=self._timeout(timeout, stream_total=stream_total, stream=request.stream), allow_redirects=True,
        )
        try:
            if request.stream:  # until the headers, a stream is bounded like any attempt
                import asyncio

                return await asyncio.wait_for(sending, timeout)
            return await sending
        except _io().TRANSPORT_ERRORS as exc:
            raise _io().translate(exc, request.url, timeout) from exc

    async def _request(self, call: Call) -> tuple[aiohttp.ClientResponse, bytes | None]:
        config = self._config
        state = await self._pools.state()
        io = _io()
        flow = retry_flow(config.retry, timeout=config.timeout, wait_for_model=bool(call.options.wait_for_model))
        call_started = time.monotonic()
        action = next(flow)
        while True:
            if isinstance(action, Sleep):
                logger.info("hfbridge: retrying in %.2fs (%s)", action.seconds, action.reason)
                import asyncio

                await asyncio.sleep(action.seconds)
                action = next(flow)
                continue
            assert isinstance(action, Send)
            request = build_request(config, call.waiting_for_model() if action.wait_for_model else call)
            started = time.monotonic()
            error: e.InferenceError | None = None
            response: aiohttp.ClientResponse | None = None
            body: bytes | None = None
            stream_total = None if config.retry.deadline is None else max(config.retry.deadline - (started - call_started), 0.001)
            async with state.semaphore:
                try:
                    response = await self._send(state, request, action.timeout, stream_total)
                    if not (request.stream and 200 <= response.status < 300):
                        try:
                            body = await io.read_body(response, BodyLimit(config.max_response_bytes, request.url))
                        except io.TRANSPORT_ERRORS as exc:
                            raise io.translate(exc, request.url, action.timeout) from exc
                        finally:
                            response.release()
                        if not 200 <= response.status < 300:
                            error = error_from_response(config, response.status, io.lower(response.headers), body, model=call.model)
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
        with e.token_redacted(self._config.token):
            call = await self._prepare(call)
            response, body = await self._request(call)
            return parse_response(self._config, call, response.status, _io().lower(response.headers), body or b"")

    def _execute(self, call: Call) -> Any:
        return self._execute_async(call)

    async def _execute_batches(self, calls: list[Call]) -> list[Any]:
        """Gathered: the pool's own bound (``max_concurrency``) queues what is beyond it. The
        first failure is raised and the other batches are cancelled."""
        import asyncio

        async def one(call: Call) -> Any:
            async with recording_gate():
                return await self._execute_async(call)

        tasks = [asyncio.ensure_future(one(call)) for call in calls]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [item for result in results for item in result]

    def _stream(self, call: Call) -> "AsyncStream":
        return AsyncStream(self, call)

    async def _open_stream(self, call: Call) -> tuple[aiohttp.ClientResponse, StreamProcessor]:
        with e.token_redacted(self._config.token):
            call = await self._prepare(call)
            response, _ = await self._request(call)
            return response, StreamProcessor(self._config, call, response.status)


class _Closed:
    """What ``close()`` returns: awaiting it is allowed and does nothing more."""

    def __await__(self) -> Generator[Any, None, None]:
        return iter(())


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
        config = self._client.config
        url = str(self._response.url)
        io = _io()
        try:
            with e.token_redacted(config.token):
                try:
                    async for chunk in io.iter_body(self._response, BodyLimit(config.max_response_bytes, url)):
                        for out in self._processor.feed(chunk):
                            yield out
                        if self._processor.finished:
                            return
                except io.TRANSPORT_ERRORS as exc:
                    raise io.translate(exc, url) from exc
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
