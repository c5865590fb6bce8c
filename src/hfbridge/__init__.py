"""hfbridge: Hugging Face inference as first-class LangChain and LlamaIndex components.

The core is :class:`InferenceClient` / :class:`AsyncInferenceClient`: one typed method per task of
the Inference API, written once over a pure protocol and driven by a sync and an async transport.
Adapters live in :mod:`hfbridge.langchain` and :mod:`hfbridge.llama_index`; the local reference
server in :mod:`hfbridge.server` (``hfbridge serve``).
"""

from ._version import __version__
from .async_client import AsyncInferenceClient, AsyncStream
from .client import InferenceClient, SyncStream
from .config import DEFAULT_BASE_URL, ClientConfig, Layout, RetryPolicy
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    EndpointGoneError,
    InferenceError,
    InvalidInputError,
    ModelLoadingError,
    ModelNotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    ResponseTooLargeError,
    ServerError,
)
from .hints import MissingTokenWarning
from .media import BinaryOutput, open_image
from .streaming import aassemble_chat_stream, assemble_chat_stream
from .tasks import TASKS, Task, TaskSpec

__all__ = [
    "__version__",
    "InferenceClient",
    "AsyncInferenceClient",
    "SyncStream",
    "AsyncStream",
    "ClientConfig",
    "Layout",
    "RetryPolicy",
    "DEFAULT_BASE_URL",
    "Task",
    "TaskSpec",
    "TASKS",
    "BinaryOutput",
    "open_image",
    "assemble_chat_stream",
    "aassemble_chat_stream",
    "InferenceError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "ModelNotFoundError",
    "EndpointGoneError",
    "PayloadTooLargeError",
    "RateLimitError",
    "ModelLoadingError",
    "ServerError",
    "ResponseFormatError",
    "ResponseTooLargeError",
    "InvalidInputError",
    "MissingTokenWarning",
]
