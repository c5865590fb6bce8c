"""LlamaIndex components over the hfbridge core: a function-calling chat LLM, a completion LLM,
an embedding backend, a tool spec.

Needs the ``llama-index`` extra (``pip install hfbridge[llama-index]``).

Each component's module is imported when the component is first named (PEP 562), so importing
one component never costs the others.
"""

from .._lazy import lazy_exports

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("hfbridge.llama_index needs llama-index-core: pip install 'hfbridge[llama-index]'") from exc

#: public name -> the submodule that defines it
_WHERE = {
    "HFInferenceChat": ".chat",
    "HFInferenceLLM": ".llm",
    "HFInferenceRerank": ".rerank",
    "HFInferenceEmbedding": ".embedding",
    "HFInferenceToolSpec": ".tools",
    "ToolText": ".tools",
}

__all__ = ["HFInferenceChat", "HFInferenceLLM", "HFInferenceRerank", "HFInferenceEmbedding", "HFInferenceToolSpec", "ToolText"]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
