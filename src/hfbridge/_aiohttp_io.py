"""The aiohttp side of the async client, imported only when an async client first sends.

aiohttp costs more to import than the rest of hfbridge together (about 150 ms here), and most
programs that import hfbridge, or a LangChain or LlamaIndex component of it, never make an
async call; so nothing imports this module until an :class:`~hfbridge.AsyncInferenceClient`
opens its first session (:mod:`hfbridge._async_transport` keeps the sessions' lifecycle, which
needs no aiohttp).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Mapping

import aiohttp

from . import errors as e
from .limits import READ_PIECE, BodyLimit
from .tool_inputs import check_public_address

__all__ = ["TRANSPORT_ERRORS", "translate", "lower", "iter_body", "read_body", "new_session", "client_timeout", "PublicOnlyConnector"]

TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def translate(exc: BaseException, url: str, budget: float | None = None) -> e.APIConnectionError:
    """The error for a failed exchange; ``budget``: the seconds it had, to say so on a timeout."""
    if budget is not None and isinstance(exc, asyncio.TimeoutError):
        return e.APITimeoutError(f"no complete answer within {budget:.3g}s", url=url)
    return e.transport_error(exc, url, timed_out=isinstance(exc, asyncio.TimeoutError))


def lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


async def iter_body(response: aiohttp.ClientResponse, limit: BodyLimit, *, piece: int | None = None) -> AsyncIterator[bytes]:
    """The (decompressed) body as it arrives (``piece``: in pieces of that size), counted
    against ``limit`` both decompressed and as received."""
    limit.check_declared(lower(response.headers))
    content = response.content
    pieces = content.iter_chunked(piece) if piece else content.iter_any()
    async for chunk in pieces:
        limit.add(len(chunk), content.total_raw_bytes)
        yield chunk


async def read_body(response: aiohttp.ClientResponse, limit: BodyLimit) -> bytes:
    return b"".join([chunk async for chunk in iter_body(response, limit, piece=READ_PIECE)])


class PublicOnlyConnector(aiohttp.TCPConnector):
    """Connects only to public addresses: every host's resolved addresses (and an address given
    as the host) are checked before connecting, so redirects and DNS answers are covered too."""

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[Any]:
        hosts = await super()._resolve_host(host, port, traces=traces)
        for resolved in hosts:
            check_public_address(resolved["host"], host)
        return hosts


def new_session(*, public_only: bool = False) -> aiohttp.ClientSession:
    connector_class = PublicOnlyConnector if public_only else aiohttp.TCPConnector
    return aiohttp.ClientSession(
        connector=connector_class(limit=0, keepalive_timeout=30),
        timeout=aiohttp.ClientTimeout(total=None),
    )




def client_timeout(seconds: float, connect: float, *, stream_total: float | None = None, stream: bool = False) -> aiohttp.ClientTimeout:
    """One attempt's bounds; a stream may run long: each read is bounded, and the whole by the
    deadline (``stream_total``)."""
    connect = min(connect, seconds)
    if stream:
        return aiohttp.ClientTimeout(total=stream_total, connect=connect, sock_read=seconds)
    return aiohttp.ClientTimeout(total=seconds, connect=connect)
