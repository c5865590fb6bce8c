"""``HFInferenceLLM`` for LlamaIndex: completion and chat over the core's text generation."""

from __future__ import annotations

from typing import Any, Sequence

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.base.llms.generic_utils import (
    astream_completion_response_to_chat_response,
    completion_response_to_chat_response,
    stream_completion_response_to_chat_response,
)

from ..adapters import generation_info, generation_parameters, recording_gate
from ._fields import ConnectionMixin

__all__ = ["HFInferenceLLM"]


class HFInferenceLLM(ConnectionMixin, CustomLLM):
    """Text generation on a Hugging Face server, as a LlamaIndex LLM.

    Chat goes through ``messages_to_prompt`` (overridable) to one completion, so any
    text-generation model can chat; the async methods use the async client for real. A stream
    abandoned early releases its connection and leaves the LLM usable."""

    model_name: str | None = Field(default=None, description="Model id; None on a spec-layout server: its default model.")
    max_new_tokens: int = Field(default=256, ge=1, description="Most tokens generated (reported as num_output).")
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    do_sample: bool | None = None
    seed: int | None = None
    stop: list[str] | None = None
    context_window: int = Field(default=2048, gt=0, description="Tokens the model can attend to (prompt + output).")

    @classmethod
    def class_name(cls) -> str:
        return "HFInferenceLLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_new_tokens,
            model_name=self.model_name or "default",
            is_chat_model=False,
        )

    def _params(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        fields = {**self.__dict__, "return_full_text": False}
        kwargs = {k: v for k, v in kwargs.items() if k != "formatted"}
        return generation_parameters(fields, None, kwargs)

    def _prompt(self, prompt: str, formatted: bool) -> str:
        return prompt if formatted else self.completion_to_prompt(prompt)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        result = self.clients.sync.text_generation(self._prompt(prompt, formatted), model=self.model_name, **self._params(kwargs))
        return CompletionResponse(text=result.generated_text, raw=result.model_dump(), additional_kwargs=generation_info(result.details) or {})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        stream = self.clients.sync.text_generation(self._prompt(prompt, formatted), model=self.model_name, stream=True, **self._params(kwargs))

        def gen() -> CompletionResponseGen:
            text = ""
            with stream:
                for output in stream:
                    text += output.token.text
                    yield CompletionResponse(text=text, delta=output.token.text, raw=output.model_dump())

        return gen()

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        async with recording_gate():
            result = await self.clients.async_.text_generation(self._prompt(prompt, formatted), model=self.model_name, **self._params(kwargs))
        return CompletionResponse(text=result.generated_text, raw=result.model_dump(), additional_kwargs=generation_info(result.details) or {})

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        stream = await self.clients.async_.text_generation(self._prompt(prompt, formatted), model=self.model_name, stream=True, **self._params(kwargs))

        async def gen() -> CompletionResponseAsyncGen:
            text = ""
            async with stream:
                async for output in stream:
                    text += output.token.text
                    yield CompletionResponse(text=text, delta=output.token.text, raw=output.model_dump())

        return gen()

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return completion_response_to_chat_response(self.complete(self.messages_to_prompt(messages), formatted=True, **kwargs))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return stream_completion_response_to_chat_response(self.stream_complete(self.messages_to_prompt(messages), formatted=True, **kwargs))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return completion_response_to_chat_response(await self.acomplete(self.messages_to_prompt(messages), formatted=True, **kwargs))

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        return astream_completion_response_to_chat_response(
            await self.astream_complete(self.messages_to_prompt(messages), formatted=True, **kwargs)
        )
