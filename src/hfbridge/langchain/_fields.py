"""Connection fields shared by the LangChain components (LangChain's naming)."""

from __future__ import annotations

from typing import Any

from langchain_core.utils import secret_from_env
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from ..adapters import ClientPair


class ConnectionFields(BaseModel):
    """``base_url``, ``token`` (from ``HF_TOKEN`` / ``HUGGINGFACEHUB_API_TOKEN``), timeouts;
    one client pair per component, built at construction (no I/O) and shared by every call."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    base_url: str | None = Field(default=None, description="Server URL; default: HF_INFERENCE_ENDPOINT, else the hosted API.")
    token: SecretStr | None = Field(
        default_factory=secret_from_env(["HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN"], default=None),
        description="Hugging Face token; default: HF_TOKEN, else HUGGINGFACEHUB_API_TOKEN.",
    )
    layout: str | None = Field(default=None, description="'spec', 'hosted' or 'endpoint'; default: from base_url.")
    timeout: float | None = Field(default=None, description="Seconds per attempt.")
    max_retries: int | None = Field(default=None, description="Retries after the first attempt.")

    _clients: ClientPair | None = PrivateAttr(default=None)

    @property
    def clients(self) -> ClientPair:
        if self._clients is None:
            self._clients = ClientPair.for_component(self, getattr(self, "max_concurrency", None))
        return self._clients

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        self._clients = ClientPair.for_component(self, getattr(self, "max_concurrency", None))
