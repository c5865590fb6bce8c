"""What an agent's tool arguments may reach on the machine that runs the tool.

An image or audio argument comes from a model, and so possibly from a prompt injected into its
context: it must not be able to make the tool read a private key or fetch a loopback or
private-network URL and send the bytes on to the inference server. So a tool reads files only
inside the folders its developer allows (symlinks and ``..`` resolved before the check), and
fetches only public http(s) URLs, checked again on every connection the download makes (after
DNS resolution, and after each redirect), unless the developer allows private addresses.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

from .errors import InvalidInputError

__all__ = ["ToolInputPolicy", "ToolInputRefused", "is_public_address", "check_public_address", "check_url"]


class ToolInputRefused(InvalidInputError):
    """A tool argument pointed outside what the tool may reach. The tool reports it to the agent
    as its result (an error it can read and act on), instead of failing the run."""


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address; False for loopback, private, link-local,
    shared, reserved, multicast and unspecified ones (IPv4-mapped IPv6 judged as the IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_public_address(address: str, host: str, field_name: str = "url") -> None:
    if not is_public_address(address):
        raise ToolInputRefused(
            field_name,
            f"refused: {host} is a loopback, private or link-local address ({address}); tools fetch only "
            "public URLs (the developer can allow private ones with allow_private_urls=True)",
        )


def check_url(url: str, field_name: str) -> None:
    """The checks that need no network: an http(s) URL whose host, if an address, is public."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolInputRefused(field_name, f"refused: only http(s) URLs with a host are fetched, got {url[:200]!r}")
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        return  # a name: judged after resolution, on every connection
    check_public_address(parts.hostname, parts.hostname, field_name)


def _resolved_dirs(dirs: Iterable[str | os.PathLike[str]] | None) -> tuple[Path, ...]:
    chosen = [Path.cwd()] if dirs is None else [Path(d) for d in dirs]
    return tuple(Path(os.path.realpath(d)) for d in chosen)


@dataclass(frozen=True)
class ToolInputPolicy:
    """Where a tool's file and URL arguments may point.

    ``allowed_dirs``: folders whose files the tool may read (default: the current working
    directory when the tool is made; ``[]`` allows no file at all). ``allow_private_urls``:
    also fetch loopback, private and link-local addresses (off by default)."""

    allowed_dirs: tuple[Path, ...] = field(default_factory=lambda: _resolved_dirs(None))
    allow_private_urls: bool = False
    #: the largest file a tool reads
    max_file_bytes: int = 64 * 1024 * 1024

    @classmethod
    def make(cls, allowed_dirs: Iterable[str | os.PathLike[str]] | None = None, allow_private_urls: bool = False) -> "ToolInputPolicy":
        if isinstance(allowed_dirs, (str, os.PathLike)):
            allowed_dirs = [allowed_dirs]
        return cls(allowed_dirs=_resolved_dirs(allowed_dirs), allow_private_urls=bool(allow_private_urls))

    def read_file(self, value: str, field_name: str) -> bytes:
        """The bytes of ``value`` if it is a regular file inside an allowed folder."""
        real = Path(os.path.realpath(value))  # symlinks and '..' resolved before the check
        if not any(real == folder or real.is_relative_to(folder) for folder in self.allowed_dirs):
            allowed = ", ".join(str(d) for d in self.allowed_dirs) or "none"
            raise ToolInputRefused(
                field_name, f"refused: {value[:200]!r} is outside the folders this tool may read (allowed: {allowed})"
            )
        try:
            # O_NOFOLLOW: a symlink swapped in after the check is not followed
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            raise ToolInputRefused(field_name, f"{value[:200]!r} is not a readable file") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise ToolInputRefused(field_name, f"{value[:200]!r} is not a regular file")
        with os.fdopen(fd, "rb") as handle:
            if info.st_size > self.max_file_bytes:
                raise ToolInputRefused(field_name, f"{value[:200]!r} is larger than {self.max_file_bytes} bytes")
            data = handle.read(self.max_file_bytes + 1)
        if not data:
            raise ToolInputRefused(field_name, f"{value[:200]!r} is empty")
        return data
