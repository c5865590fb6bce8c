"""LangChain components over the hfbridge core: a chat model with tool calling and structured
output, an LLM, an Embeddings, and a tool per task.

Needs the ``langchain`` extra (``pip install hfbridge[langchain]``).

Each component's module is imported when the component is first named (PEP 562), so
``from hfbridge.langchain import HFInferenceEmbeddings`` costs the embeddings module only, not
the chat model or the generated tool classes.
"""

from .._lazy import lazy_exports

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("hfbridge.langchain needs langchain-core: pip install 'hfbridge[langchain]'") from exc

#: public name -> the submodule that defines it
_WHERE = {
    "ChatHFInference": ".chat",
    "HFInferenceLLM": ".llm",
    "HFInferenceRerank": ".rerank",
    "HFInferenceEmbeddings": ".embeddings",
    "HFInferenceTool": ".tools",
    "HFInferenceToolkit": ".tools",
    "TOOL_CLASSES": ".tools",
}

__all__ = ["ChatHFInference", "HFInferenceLLM", "HFInferenceRerank", "HFInferenceEmbeddings", "HFInferenceTool", "HFInferenceToolkit", "TOOL_CLASSES"]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
