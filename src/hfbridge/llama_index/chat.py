"""``HFInferenceChat``: a LlamaIndex function-calling LLM over the core's chat completions.

Only conversions live here: LlamaIndex ``ChatMessage``s (text and image blocks, tool calls in
``additional_kwargs`` or ``ToolCallBlock``s, ``role="tool"`` results) to the OpenAI shape,
``FunctionTool`` metadata to OpenAI tools, and answers back to ``ChatResponse`` /
``ToolSelection``. Streams are folded with the core's :class:`~hfbridge.streaming.ChatStreamAssembler`,
so a streamed answer carries the same tool calls as a whole one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator, List, Optional, Sequence, Union

from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    ImageBlock,
    LLMMetadata,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection

from ..adapters import recording_gate, recording_lock
from ..chat_adapters import chat_parameters, decode_arguments, tool_choice_for, usage_counts
from ..errors import InvalidInputError
from ..streaming import ChatStreamAssembler
from ._fields import ConnectionMixin

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["HFInferenceChat"]

_ROLES = {"chatbot": "assistant", "model": "assistant", "function": "tool"}


class HFInferenceChat(ConnectionMixin, FunctionCallingLLM):
    """Chat completions with tool calling on a Hugging Face server (hosted, the router, a
    TGI/vLLM endpoint, or ``hfbridge serve``), as a LlamaIndex ``FunctionCallingLLM``: it runs
    ``FunctionAgent`` / ``AgentWorkflow``, ``structured_predict`` and ``as_structured_llm``.

    ```python
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.llms import ChatMessage
    from hfbridge.llama_index import HFInferenceChat, HFInferenceToolSpec

    llm = HFInferenceChat(base_url="http://127.0.0.1:8000", model_name="HuggingFaceTB/SmolLM2-135M-Instruct", max_tokens=32)
    print(llm.chat([ChatMessage(role="user", content="What is the capital of France?")]).message.content)
    agent = FunctionAgent(tools=HFInferenceToolSpec("http://127.0.0.1:8000").to_tool_list(), llm=llm)
    ```
    """

    model_name: str | None = Field(default=None, description="Model id; None on a spec-layout server: its default chat model.")
    max_tokens: int | None = Field(default=None, ge=1, description="Most tokens per answer; None: the server's default.")
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop: list[str] | None = None
    provider: str | None = Field(default=None, description="Router only: 'fastest', 'cheapest' or a provider name.")
    context_window: int = Field(default=8192, gt=0, description="Tokens the model can attend to (prompt + output).")
    num_output: int = Field(default=256, gt=0, description="Tokens LlamaIndex reserves for an answer when packing prompts.")
    answer_after_tool_results: bool = Field(
        default=False,
        description="When a conversation ends with tool results and the caller sets no tool_choice, answer in text "
                    "(tool_choice 'none'). For small models, which otherwise call the same tool again; with "
                    "FunctionAgent(initial_tool_choice='required') an agent then calls one tool and answers.",
    )

    @classmethod
    def class_name(cls) -> str:
        return "HFInferenceChat"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_tokens or self.num_output,
            model_name=self.model_name or "default",
            is_chat_model=True,
            is_function_calling_model=True,
        )

    # ---- requests -----------------------------------------------------------------------------
    def _request(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        fields = {
            "model": self.model_name, "max_tokens": self.max_tokens, "temperature": self.temperature, "top_p": self.top_p,
            "seed": self.seed, "frequency_penalty": self.frequency_penalty, "presence_penalty": self.presence_penalty,
            "stop": self.stop, "provider": self.provider,
        }
        return [_to_wire(m, i) for i, m in enumerate(messages)], chat_parameters(fields, None, kwargs)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        wire, params = self._request(messages, kwargs)
        with recording_lock():
            return _response(self.clients.sync.chat_completion(wire, **params))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        wire, params = self._request(messages, kwargs)
        async with recording_gate():
            return _response(await self.clients.async_.chat_completion(wire, **params))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        wire, params = self._request(messages, kwargs)
        stream = self.clients.sync.chat_completion(wire, stream=True, stream_options={"include_usage": True}, **params)

        def gen() -> Iterator[ChatResponse]:
            assembler = ChatStreamAssembler()
            with stream:
                for chunk in stream:
                    yield _partial(assembler, chunk)

        return gen()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        wire, params = self._request(messages, kwargs)
        stream = await self.clients.async_.chat_completion(wire, stream=True, stream_options={"include_usage": True}, **params)

        async def gen() -> AsyncIterator[ChatResponse]:
            assembler = ChatStreamAssembler()
            async with stream:
                async for chunk in stream:
                    yield _partial(assembler, chunk)

        return gen()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return chat_to_completion_decorator(self.chat)(prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        return stream_chat_to_completion_decorator(self.stream_chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return await achat_to_completion_decorator(self.achat)(prompt, **kwargs)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        return await astream_chat_to_completion_decorator(self.astream_chat)(prompt, **kwargs)

    # ---- function calling -----------------------------------------------------------------------
    def _prepare_chat_with_tools(
        self,
        tools: Sequence["BaseTool"],
        user_msg: Optional[Union[str, ChatMessage]] = None,
        chat_history: Optional[List[ChatMessage]] = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """``tool_choice``: ``"auto"`` (default with tools), ``"none"``, ``"required"`` or a tool's
        name; ``tool_required=True`` means ``"required"``."""
        specs = [tool.metadata.to_openai_tool(skip_length_check=True) for tool in tools]
        names = [spec["function"]["name"] for spec in specs]
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(ChatMessage(role=MessageRole.USER, content=user_msg) if isinstance(user_msg, str) else user_msg)
        if tool_choice is None and not tool_required and self.answer_after_tool_results and messages and messages[-1].role == MessageRole.TOOL:
            tool_choice = "none"
        choice = tool_choice_for(tool_choice if tool_choice is not None else ("required" if tool_required else None), names)
        prepared: dict[str, Any] = {"messages": messages, **kwargs}
        if specs:
            prepared.update(tools=specs, tool_choice=choice or "auto")
            if not allow_parallel_tool_calls:
                prepared["parallel_tool_calls"] = False
        return prepared

    def _validate_chat_with_tools_response(self, response: ChatResponse, tools: Sequence["BaseTool"],
                                           allow_parallel_tool_calls: bool = False, **kwargs: Any) -> ChatResponse:
        if not allow_parallel_tool_calls:
            calls = response.message.additional_kwargs.get("tool_calls") or []
            if len(calls) > 1:
                response.message.additional_kwargs["tool_calls"] = calls[:1]
                first_id = calls[0]["id"]
                response.message.blocks = [b for b in response.message.blocks
                                           if not isinstance(b, ToolCallBlock) or b.tool_call_id == first_id]
        return response

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any) -> List[ToolSelection]:
        calls = response.message.additional_kwargs.get("tool_calls") or []
        if not calls and error_on_no_tool_call:
            raise ValueError(f"Expected at least one tool call, but the model answered: {response.message.content!r}")
        selections = []
        for call in calls:
            args, _ = decode_arguments(call["function"]["arguments"])
            selections.append(ToolSelection(tool_id=call["id"], tool_name=call["function"]["name"], tool_kwargs=args or {}))
        return selections


# --------------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------------
def _image_part(block: ImageBlock, field: str) -> dict[str, Any]:
    if block.url is not None:
        return {"type": "image_url", "image_url": {"url": str(block.url)}}
    data = block.resolve_image(as_base64=True).read()
    if not data:
        raise InvalidInputError(field, "an image block without an image")
    mimetype = block.image_mimetype or "image/png"
    text = data.decode() if isinstance(data, bytes) else str(data)
    return {"type": "image_url", "image_url": {"url": f"data:{mimetype};base64,{text}"}}


def _wire_tool_calls(message: ChatMessage) -> list[dict[str, Any]]:
    calls = message.additional_kwargs.get("tool_calls")
    if calls:
        return [c if isinstance(c, dict) else c.model_dump() for c in calls]
    return [
        {"id": block.tool_call_id or f"call_{i}", "type": "function",
         "function": {"name": block.tool_name,
                      "arguments": block.tool_kwargs if isinstance(block.tool_kwargs, str) else json.dumps(block.tool_kwargs)}}
        for i, block in enumerate(b for b in message.blocks if isinstance(b, ToolCallBlock))
    ]


def _to_wire(message: ChatMessage, index: int) -> dict[str, Any]:
    """One LlamaIndex message in the OpenAI shape (validated by the core before sending)."""
    field = f"messages[{index}]"
    role = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
    role = _ROLES.get(role, role)
    images = [b for b in message.blocks if isinstance(b, ImageBlock)]
    text = "".join(b.text for b in message.blocks if isinstance(b, TextBlock))
    wire: dict[str, Any] = {"role": role}
    if images:
        parts: list[dict[str, Any]] = [{"type": "text", "text": b.text} if isinstance(b, TextBlock) else _image_part(b, field)
                                       for b in message.blocks if isinstance(b, (TextBlock, ImageBlock))]
        wire["content"] = parts
    else:
        wire["content"] = text
    if role == "assistant":
        calls = _wire_tool_calls(message)
        if calls:
            wire["tool_calls"] = calls
            wire["content"] = text or None
    if role == "tool":
        call_id = message.additional_kwargs.get("tool_call_id")
        if call_id is not None:
            wire["tool_call_id"] = str(call_id)
        if message.additional_kwargs.get("name"):
            wire["name"] = message.additional_kwargs["name"]
    return wire


def _message(answer: Any) -> ChatMessage:
    message = answer.choices[0].message if answer.choices else None
    content = (message.content if message else None) or ""
    calls = [c.model_dump() for c in (message.tool_calls or [])] if message else []
    blocks: list[Any] = [TextBlock(text=content)]
    for call in calls:
        args, _ = decode_arguments(call["function"]["arguments"])
        blocks.append(ToolCallBlock(tool_call_id=call["id"], tool_name=call["function"]["name"],
                                    tool_kwargs=args if args is not None else call["function"]["arguments"]))
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs={"tool_calls": calls} if calls else {})


def _usage(answer: Any) -> dict[str, int]:
    counts = usage_counts(answer.usage)
    if counts is None:
        return {}
    return {"prompt_tokens": counts[0], "completion_tokens": counts[1], "total_tokens": counts[2]}


def _response(answer: Any) -> ChatResponse:
    extra = _usage(answer)
    if answer.choices and answer.choices[0].finish_reason:
        extra["finish_reason"] = answer.choices[0].finish_reason
    return ChatResponse(message=_message(answer), raw=answer.model_dump(), additional_kwargs=extra)


def _partial(assembler: ChatStreamAssembler, chunk: Any) -> ChatResponse:
    """The answer so far, after one more chunk (LlamaIndex streams carry the whole message)."""
    assembler.add(chunk)
    so_far = assembler.completion()
    delta = chunk.choices[0].delta.content if chunk.choices else None
    extra = _usage(so_far)
    if so_far.choices[0].finish_reason:
        extra["finish_reason"] = so_far.choices[0].finish_reason
    return ChatResponse(message=_message(so_far), delta=delta or "", raw=chunk.model_dump(), additional_kwargs=extra)
