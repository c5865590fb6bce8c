"""LlamaIndex components over the hfbridge core: a function-calling chat LLM, a completion LLM,
an embedding backend, a tool spec.

Needs the ``llama-index`` extra (``pip install hfbridge[llama-index]``).
"""

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("hfbridge.llama_index needs llama-index-core: pip install 'hfbridge[llama-index]'") from exc

from .chat import HFInferenceChat
from .embedding import HFInferenceEmbedding
from .llm import HFInferenceLLM
from .tools import HFInferenceToolSpec, ToolText

__all__ = ["HFInferenceChat", "HFInferenceLLM", "HFInferenceEmbedding", "HFInferenceToolSpec", "ToolText"]
