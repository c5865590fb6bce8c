"""Binary inputs and outputs: images and audio as bytes, paths, file objects or URLs.

Content types are read from the bytes' magic numbers, never from a file name: a user's
``photo.png`` that is really a JPEG is still sent as ``image/jpeg``, which is what the hosted API
decodes by.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Union

from .errors import InvalidInputError

__all__ = ["BinaryInput", "BinaryOutput", "ImageInput", "AudioInput", "sniff_content_type", "to_binary_input"]

ImageInput = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes], Any]
AudioInput = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]", IO[bytes]]

_MAGIC: list[tuple[bytes, int, str]] = [
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"fLaC", 0, "audio/flac"),
    (b"OggS", 0, "audio/ogg"),
    (b"ID3", 0, "audio/mpeg"),
]


def sniff_content_type(data: bytes) -> str | None:
    """The MIME type of ``data`` from its first bytes; None when unknown."""
    for magic, offset, mime in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    # MPEG audio frame sync (11 set bits) with layer III: an mp3 without an ID3 tag
    if len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0 and (data[1] & 0x06) == 0x02:
        return "audio/mpeg"
    return None


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


@dataclass(frozen=True)
class BinaryInput:
    """Either bytes (with their sniffed type) or a URL still to be fetched."""

    data: bytes | None = None
    url: str | None = None

    @property
    def content_type(self) -> str:
        return (self.data is not None and sniff_content_type(self.data)) or "application/octet-stream"

    def as_base64(self) -> str:
        assert self.data is not None
        return base64.b64encode(self.data).decode("ascii")

    def __repr__(self) -> str:  # never dump megabytes into a traceback
        if self.url is not None:
            return f"BinaryInput(url={self.url!r})"
        return f"BinaryInput({len(self.data or b'')} bytes, {self.content_type})"


def to_binary_input(value: Any, field: str, *, kind: str) -> BinaryInput:
    """Turn what a user passes as an image or audio into a :class:`BinaryInput`.

    Accepts bytes, a path (str or PathLike), an open binary file, an http(s) URL string and, for
    images, a PIL image (encoded as PNG). Anything else is an error naming ``field``.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, str) and is_url(value):
        return BinaryInput(url=value)
    elif isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not str(value).strip():
            raise InvalidInputError(field, f"an empty string is not a {kind}")
        if not path.is_file():
            raise InvalidInputError(
                field, f"{str(value)[:200]!r} is neither an existing file nor an http(s) URL"
            )
        data = path.read_bytes()
    elif hasattr(value, "read"):
        data = value.read()
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidInputError(field, "the file object must be opened in binary mode ('rb')")
        data = bytes(data)
    elif kind == "image" and _is_pil_image(value):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        data = buffer.getvalue()
    else:
        raise InvalidInputError(
            field,
            f"expected bytes, a file path, a binary file object or an http(s) URL for the {kind}, "
            f"got {type(value).__name__}",
        )
    if not data:
        raise InvalidInputError(field, f"the {kind} is empty (0 bytes)")
    return BinaryInput(data=data)


def _is_pil_image(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.") and hasattr(value, "save")


class BinaryOutput(bytes):
    """Bytes of a generated image or audio clip, with the content type the server declared."""

    content_type: str

    def __new__(cls, data: bytes, content_type: str | None = None) -> "BinaryOutput":
        obj = super().__new__(cls, data)
        obj.content_type = content_type or sniff_content_type(data) or "application/octet-stream"
        return obj

    def __reduce__(self):
        return (BinaryOutput, (bytes(self), self.content_type))

    @property
    def extension(self) -> str:
        subtype = self.content_type.split("/")[-1].split(";")[0]
        return {"jpeg": "jpg", "mpeg": "mp3", "x-wav": "wav"}.get(subtype, subtype)

    def save(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.write_bytes(self)
        return target

    def to_pil(self) -> Any:
        """Open as a PIL image (needs Pillow)."""
        return open_image(self)

    def __repr__(self) -> str:
        return f"BinaryOutput({len(self)} bytes, {self.content_type})"


def open_image(data: bytes) -> Any:
    """Open image bytes as a ``PIL.Image.Image``; raises ImportError naming Pillow if missing."""
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("open_image needs Pillow: pip install pillow") from exc
    image = Image.open(io.BytesIO(bytes(data)))
    image.load()
    return image
