"""Connection fields shared by the LangChain components (LangChain's naming), and their lifecycle."""

from __future__ import annotations

from typing import Any

from langchain_core.utils import secret_from_env
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from ..adapters import ClientPair, Closable, init_hiding_token


class ConnectionFields(Closable, BaseModel):
    """``base_url``, ``token`` (from ``HF_TOKEN`` / ``HUGGINGFACEHUB_API_TOKEN``), timeouts;
    one client pair per component, built at construction (no I/O) and shared by every call.

    ``close()`` / ``aclose()`` and ``with`` / ``async with`` release the connections; a
    component nobody closes is cleaned up when collected, at exit, and when an event loop it
    used ends. A validation error never shows the token."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True, defer_build=True)

    base_url: str | None = Field(default=None, description="Server URL; default: HF_INFERENCE_ENDPOINT, else the hosted API.")
    token: SecretStr | None = Field(
        default_factory=secret_from_env(["HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN"], default=None),
        description="Hugging Face token; default: HF_TOKEN, else HUGGINGFACEHUB_API_TOKEN.",
    )
    layout: str | None = Field(default=None, description="'spec', 'hosted' or 'endpoint'; default: from base_url.")
    timeout: float | None = Field(default=None, gt=0, description="Seconds per attempt (headers and body).")
    max_retries: int | None = Field(default=None, ge=0, description="Retries after the first attempt.")
    deadline: float | None = Field(default=None, gt=0, description="Seconds the whole call may take, retries included.")

    _clients: ClientPair | None = PrivateAttr(default=None)
    _owns_clients: bool = PrivateAttr(default=True)

    def __init__(self, **data: Any) -> None:
        init_hiding_token(super().__init__, data)

    @property
    def clients(self) -> ClientPair:
        if self._clients is None:
            self._clients = ClientPair.for_component(self, getattr(self, "max_concurrency", None))
        return self._clients

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        self._clients = ClientPair.for_component(self, getattr(self, "max_concurrency", None))
