"""Connection settings shared by the LlamaIndex components."""

from __future__ import annotations

import os
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr, SecretStr

from ..adapters import ClientPair


def token_from_env() -> SecretStr | None:
    value = os.environ.get("HF_TOKEN") or os.environ.get("HUGGINGFACEHUB_API_TOKEN")
    return SecretStr(value) if value else None


class ConnectionMixin:
    """Fields and the shared client pair; mixed into pydantic models (LlamaIndex's own)."""

    base_url: str | None = Field(default=None, description="Server URL; default: HF_INFERENCE_ENDPOINT, else the hosted API.")
    token: SecretStr | None = Field(default_factory=token_from_env, description="Hugging Face token; default: HF_TOKEN.")
    layout: str | None = Field(default=None, description="'spec', 'hosted' or 'endpoint'; default: from base_url.")
    timeout: float | None = Field(default=None, description="Seconds per attempt.")
    max_retries: int | None = Field(default=None, description="Retries after the first attempt.")

    _clients: ClientPair | None = PrivateAttr(default=None)

    @property
    def clients(self) -> ClientPair:
        if self._clients is None:
            self._clients = ClientPair.for_component(self)
        return self._clients

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)  # type: ignore[misc]
        self._clients = ClientPair.for_component(self, getattr(self, "num_workers", None))
