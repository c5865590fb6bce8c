"""Connection settings shared by the LlamaIndex components, and their lifecycle."""

from __future__ import annotations

import os
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr

from ..adapters import ClientPair, Closable, init_hiding_token


def token_from_env() -> SecretStr | None:
    value = os.environ.get("HF_TOKEN") or os.environ.get("HUGGINGFACEHUB_API_TOKEN")
    return SecretStr(value) if value else None


class ConnectionMixin(Closable):
    """Fields and the shared client pair; mixed into pydantic models (LlamaIndex's own).

    ``close()`` / ``aclose()`` and ``with`` / ``async with`` release the connections; a
    component nobody closes is cleaned up when collected, at exit, and when an event loop it
    used ends. A validation error never shows the token."""

    base_url: str | None = Field(default=None, description="Server URL; default: HF_INFERENCE_ENDPOINT, else the hosted API.")
    token: SecretStr | None = Field(default_factory=token_from_env, description="Hugging Face token; default: HF_TOKEN.")
    layout: str | None = Field(default=None, description="'spec', 'hosted' or 'endpoint'; default: from base_url.")
    timeout: float | None = Field(default=None, gt=0, description="Seconds per attempt (headers and body).")
    max_retries: int | None = Field(default=None, ge=0, description="Retries after the first attempt.")
    deadline: float | None = Field(default=None, gt=0, description="Seconds the whole call may take, retries included.")

    _clients: ClientPair | None = PrivateAttr(default=None)

    def __init__(self, *args: Any, **data: Any) -> None:
        init_hiding_token(lambda **kw: super(ConnectionMixin, self).__init__(*args, **kw), data)

    @property
    def clients(self) -> ClientPair:
        if self._clients is None:
            self._clients = ClientPair.for_component(self)
        return self._clients

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)  # type: ignore[misc]
        self._clients = ClientPair.for_component(self, getattr(self, "num_workers", None))
