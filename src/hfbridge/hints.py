"""What to do next: the advice hfbridge adds to an error, and the one warning it gives up front.

A bare ``HTTP 401: Unauthorized`` or ``HTTP 404 for model 'x': Not Found`` is true but leaves a
newcomer guessing. The situations below have one likely cause each, so the message names it and
the fix. Everything here is pure (strings in, strings out) except :func:`warn_missing_token`,
which warns once per process; the protocol and the config call it through one-line hooks.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from urllib.parse import urlsplit

from .config import DEFAULT_BASE_URL, ROUTER_OPENAI_BASE, ClientConfig

__all__ = [
    "TOKENS_URL",
    "MissingTokenWarning",
    "is_hosted",
    "explain",
    "append_hint",
    "shorten",
    "warn_missing_token",
]

TOKENS_URL = "https://huggingface.co/settings/tokens"

HOSTED_NEEDS_TOKEN = (
    "The hosted Inference API needs a token: set HF_TOKEN or pass token='hf_...' "
    f"(create one at {TOKENS_URL})."
)
HOSTED_REFUSED_TOKEN = (
    "The hosted Inference API refused this token: check that it is valid and may call "
    f"Inference Providers at {TOKENS_URL} (it comes from token= or HF_TOKEN)."
)
SERVER_NEEDS_TOKEN = "This server wants a token: pass token='...' or set HF_TOKEN."
OPENAI_LAYOUT = (
    "base_url ends in /v1, the root of an OpenAI-compatible API (such as "
    f"{ROUTER_OPENAI_BASE}), which has no Inference API routes: pass layout='openai' to "
    f"use it, or base_url='{DEFAULT_BASE_URL}' for the Inference API's tasks."
)


class MissingTokenWarning(UserWarning):
    """A client for the hosted API was made without a token (it will answer 401)."""


def is_hosted(base_url: str) -> bool:
    """Whether ``base_url`` is Hugging Face's own service (``huggingface.co`` or a subdomain)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host == "huggingface.co" or host.endswith(".huggingface.co")


def _ends_in_v1(base_url: str) -> bool:
    return urlsplit(base_url).path.rstrip("/").endswith("/v1")


def hint_for(config: ClientConfig, status: int) -> str | None:
    """The advice for an error answer of ``status`` under ``config``, if there is a likely fix."""
    if status == 401:
        if is_hosted(config.base_url):
            return HOSTED_REFUSED_TOKEN if config.token else HOSTED_NEEDS_TOKEN
        return None if config.token else SERVER_NEEDS_TOKEN
    if status == 404 and _ends_in_v1(config.base_url) and config.layout.value != "openai":
        return OPENAI_LAYOUT
    return None


def append_hint(message: str, hint: str | None) -> str:
    """``message`` followed by ``hint`` as a new sentence."""
    if not hint:
        return message
    message = message.rstrip()
    if not message:
        return hint
    return f"{message}{'' if message.endswith(('.', '!', '?')) else '.'} {hint}"


def explain(config: ClientConfig, status: int, message: str) -> str:
    """The error message of a ``status`` answer with its advice appended (the protocol's hook)."""
    return append_hint(message, hint_for(config, status))


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, marked with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 1)]
    if " " in cut and not text[len(cut)].isspace():
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


_warned = threading.Event()
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


#: modules between a user's line and the client: hfbridge, and the constructors of the models
#: the adapters are (pydantic, LangChain's Serializable, LlamaIndex's components)
_PASS_THROUGH = ("hfbridge.", "pydantic", "langchain_core.", "llama_index.")


def _caller_stacklevel() -> int:
    """How many frames up the first caller outside hfbridge and the frameworks' constructors is."""
    import sys

    frame, level = sys._getframe(1), 1
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        inside = frame.f_code.co_filename.startswith(_PACKAGE_DIR) or name.startswith(_PASS_THROUGH)
        if not inside:
            return level
        frame, level = frame.f_back, level + 1
    return level


def warn_missing_token(config: ClientConfig, token_given: object) -> None:
    """Warn once per process when a hosted client has no token (``token=False`` opts out)."""
    if token_given is False or config.token is not None or not is_hosted(config.base_url) or _warned.is_set():
        return
    _warned.set()
    warnings.warn(
        f"No token for the hosted Inference API ({config.base_url}): it answers 401 without one. "
        f"Set HF_TOKEN or pass token='hf_...' (create one at {TOKENS_URL}); token=False sends "
        "none and silences this warning.",
        MissingTokenWarning,
        stacklevel=_caller_stacklevel(),
    )
