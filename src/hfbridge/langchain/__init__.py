"""LangChain components over the hfbridge core: a chat model with tool calling and structured
output, an LLM, an Embeddings, and a tool per task.

Needs the ``langchain`` extra (``pip install hfbridge[langchain]``).
"""

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("hfbridge.langchain needs langchain-core: pip install 'hfbridge[langchain]'") from exc

from .chat import ChatHFInference
from .embeddings import HFInferenceEmbeddings
from .llm import HFInferenceLLM
from .tools import TOOL_CLASSES, HFInferenceTool, HFInferenceToolkit

__all__ = ["ChatHFInference", "HFInferenceLLM", "HFInferenceEmbeddings", "HFInferenceTool", "HFInferenceToolkit", "TOOL_CLASSES"]
