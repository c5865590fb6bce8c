"""The size bound on answers, counted while they are read by either transport.

Both transports read bodies in bounded pieces (their decoders inflate a compressed piece only up
to the piece size), so counting here after every piece stops a decompression bomb after at most
``limit`` bytes plus one piece, long before it fills memory.
"""

from __future__ import annotations

from typing import Mapping

from .errors import ResponseTooLargeError

__all__ = ["BodyLimit", "READ_PIECE"]

#: bytes asked of a transport per read; also the most one compressed piece may inflate to at once
READ_PIECE = 64 * 1024


class BodyLimit:
    """Counts one answer's bytes, as received and as decompressed, against ``limit``."""

    __slots__ = ("limit", "url", "decoded")

    def __init__(self, limit: int, url: str | None = None) -> None:
        self.limit = limit
        self.url = url
        self.decoded = 0

    def _refuse(self, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the answer is larger than max_response_bytes={self.limit} ({what}); reading stopped. "
            "Raise max_response_bytes on the client if answers this large are expected",
            limit=self.limit, url=self.url,
        )

    def check_declared(self, headers: Mapping[str, str]) -> None:
        """Refuse before reading when ``Content-Length`` (lower-case keys) already says too much."""
        declared = headers.get("content-length")
        if declared and declared.strip().isdigit() and int(declared) > self.limit:
            raise self._refuse(f"Content-Length {int(declared)}")

    def add(self, piece: int, received: int | None = None) -> None:
        """Count ``piece`` decompressed bytes; ``received`` is the total received so far, if the
        transport knows it (compressed bytes, before decoding)."""
        self.decoded += piece
        if self.decoded > self.limit:
            raise self._refuse(f"more than {self.limit} bytes after decompression")
        if received is not None and received > self.limit:
            raise self._refuse(f"{received} bytes received")
