"""``HFInferenceLLM``: a LangChain ``BaseLLM`` over the core client's text generation."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Iterator

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM, LangSmithParams
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from pydantic import Field

from ..adapters import generation_info, generation_parameters, map_in_threads, recording_gate
from ._fields import ConnectionFields

__all__ = ["HFInferenceLLM"]


class HFInferenceLLM(ConnectionFields, BaseLLM):
    """Text generation on a Hugging Face server (hosted, an endpoint, or ``hfbridge serve``).

    ```python
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import PromptTemplate
    from hfbridge.langchain import HFInferenceLLM

    llm = HFInferenceLLM(base_url="http://127.0.0.1:8000", model="HuggingFaceTB/SmolLM2-135M-Instruct", max_new_tokens=16)
    chain = PromptTemplate.from_template("Q: {q}\\nA:") | llm | StrOutputParser()
    print(chain.invoke({"q": "What is the capital of France?"}))
    ```

    ``batch`` sends its prompts concurrently (at most ``max_concurrency`` at once); ``stop``
    sequences are enforced on the returned text even when split across streamed tokens; errors
    are the core's typed errors, so ``with_retry`` / ``with_fallbacks`` can select on them.
    """

    model: str | None = Field(default=None, description="Model id; None on a spec-layout server: its default model.")
    max_new_tokens: int = Field(default=256, ge=1)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    do_sample: bool | None = None
    seed: int | None = None
    stop: list[str] | None = None
    return_full_text: bool = Field(default=False, description="Include the prompt in the output (chains expect False).")
    streaming: bool = Field(default=False, description="Generate through the token stream (callbacks see each token).")
    max_concurrency: int = Field(default=8, ge=1, description="Most prompts in flight at once in batch/abatch.")

    @property
    def _llm_type(self) -> str:
        return "hfbridge-inference"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": self.clients.base_url,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repetition_penalty": self.repetition_penalty,
            "do_sample": self.do_sample,
            "stop": self.stop,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "huggingface"
        params["ls_model_name"] = self.model or "default"
        params["ls_model_type"] = "llm"
        params["ls_temperature"] = kwargs.get("temperature", self.temperature)
        params["ls_max_tokens"] = kwargs.get("max_new_tokens", self.max_new_tokens)
        stops = (self.stop or []) + (stop or [])
        if stops:
            params["ls_stop"] = stops
        return params

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return generation_parameters(self.__dict__, stop, kwargs)

    # ---- one prompt ------------------------------------------------------------------------------
    def _one(self, prompt: str, stop: list[str] | None, run_manager: CallbackManagerForLLMRun | None, kwargs: dict[str, Any]) -> Generation:
        if self.streaming:
            text, info = "", None
            for chunk in self._stream(prompt, stop, run_manager, **kwargs):
                text += chunk.text
                info = chunk.generation_info or info
            return Generation(text=text, generation_info=info)
        result = self.clients.sync.text_generation(prompt, model=self.model, **self._params(stop, kwargs))
        return Generation(text=result.generated_text, generation_info=generation_info(result.details))

    async def _aone(self, prompt: str, stop: list[str] | None, run_manager: AsyncCallbackManagerForLLMRun | None, kwargs: dict[str, Any]) -> Generation:
        if self.streaming:
            text, info = "", None
            async for chunk in self._astream(prompt, stop, run_manager, **kwargs):
                text += chunk.text
                info = chunk.generation_info or info
            return Generation(text=text, generation_info=info)
        result = await self.clients.async_.text_generation(prompt, model=self.model, **self._params(stop, kwargs))
        return Generation(text=result.generated_text, generation_info=generation_info(result.details))

    # ---- LangChain's hooks --------------------------------------------------------------------
    def _generate(self, prompts: list[str], stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> LLMResult:
        outputs = map_in_threads(lambda p: self._one(p, stop, run_manager, kwargs), prompts, self.max_concurrency)
        return LLMResult(generations=[[g] for g in outputs], llm_output={"model": self.model})

    async def _agenerate(self, prompts: list[str], stop: list[str] | None = None, run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> LLMResult:
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def bounded(prompt: str) -> Generation:
            async with semaphore, recording_gate():
                return await self._aone(prompt, stop, run_manager, kwargs)

        generations = await asyncio.gather(*(bounded(p) for p in prompts))
        return LLMResult(generations=[[g] for g in generations], llm_output={"model": self.model})

    def _stream(self, prompt: str, stop: list[str] | None = None, run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[GenerationChunk]:
        stream = self.clients.sync.text_generation(prompt, model=self.model, stream=True, **self._params(stop, kwargs))
        with stream:
            for output in stream:
                chunk = _chunk(output)
                if run_manager is not None and chunk.text:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    async def _astream(self, prompt: str, stop: list[str] | None = None, run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> AsyncIterator[GenerationChunk]:
        stream = self.clients.async_.text_generation(prompt, model=self.model, stream=True, **self._params(stop, kwargs))
        async with stream:
            async for output in stream:
                chunk = _chunk(output)
                if run_manager is not None and chunk.text:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk


def _chunk(output: Any) -> GenerationChunk:
    info = generation_info(output.details) if output.generated_text is not None else None
    return GenerationChunk(text=output.token.text, generation_info=info)
