"""Bounding what a connection may hold: a request's headers and body in size and in time, and
the server's shutdown.

* Headers: uvicorn waits forever for a request's head (a client that connects and sends
  nothing, or half a header line, holds its connection open). :func:`bounded_http_protocol`
  gives uvicorn an HTTP protocol that answers 408 and closes once ``header_timeout`` has passed
  without a complete head.
* Body: :func:`read_body` reads it chunk by chunk, refusing it with 413 as soon as it passes
  ``max_body_bytes`` (a chunked body declares no length, so the size is only known while
  reading) and with 408 once ``body_timeout`` has passed. Both answers close the connection, so
  the rest of the body is never read.
* Shutdown: :func:`uvicorn_config` sets uvicorn's graceful-shutdown timeout, after which
  in-flight requests are cancelled instead of waited for.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from .limits import Limits
from .parsing import HTTPProblem

__all__ = ["read_body", "bounded_http_protocol", "uvicorn_config"]

_CLOSE = {"Connection": "close"}


def _too_large(limit: int) -> HTTPProblem:
    return HTTPProblem(
        413, f"The request body is larger than this server accepts ({limit:,} bytes; hfbridge serve {Limits.option('max_body_bytes')})",
        headers=_CLOSE,
    )


async def read_body(request: Request, limits: Limits) -> bytes:
    """The whole body, or an HTTPProblem (413 over the size, 408 over the time) that closes
    the connection without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise _too_large(limits.max_body_bytes)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.body_timeout
    chunks: list[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), max(deadline - loop.time(), 0.0))
        except StopAsyncIteration:
            break
        except asyncio.TimeoutError:
            raise HTTPProblem(
                408, f"The request body did not arrive within {limits.body_timeout:g} s "
                     f"(hfbridge serve {Limits.option('body_timeout')})", headers=_CLOSE,
            ) from None
        except ClientDisconnect:
            raise HTTPProblem(400, "The client disconnected before sending the whole body", headers=_CLOSE) from None
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise _too_large(limits.max_body_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def bounded_http_protocol(header_timeout: float) -> type:
    """uvicorn's h11 protocol with a deadline for each request's head.

    The clock starts when the connection opens, and again at the first byte of each further
    request on a kept-alive connection (the idle time between requests is uvicorn's own
    keep-alive timeout); it stops when the head is complete.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    body = orjson.dumps({"error": f"The request headers did not arrive within {header_timeout:g} s"})
    answer = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )

    class BoundedH11Protocol(H11Protocol):  # type: ignore[misc]
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            if self._head_timer is None and (cycle is None or cycle.response_complete):
                self._arm()  # the first bytes of another request on a kept-alive connection
            super().data_received(data)
            if self.cycle is not cycle:  # a new request's head was parsed
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(header_timeout, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
                return
            self.transport.write(answer)
            self.transport.close()

    return BoundedH11Protocol


def uvicorn_config(app: Any, limits: Limits, **options: Any) -> Any:
    """The uvicorn configuration every way of running the server shares."""
    import uvicorn

    return uvicorn.Config(
        app, http=bounded_http_protocol(limits.header_timeout), timeout_graceful_shutdown=limits.shutdown_timeout, **options
    )
