"""``ChatHFInference``: a LangChain chat model with tool calling and structured output.

Only conversions live here: LangChain messages to the OpenAI shape (``convert_to_openai_messages``),
tools to OpenAI tools (``convert_to_openai_tool``), and answers back to ``AIMessage`` /
``AIMessageChunk`` with ``tool_calls``, ``tool_call_chunks`` and ``usage_metadata``. Requests,
retries, streaming and the normalisation of servers' dialects are the core client's.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any, AsyncIterator, Callable, Iterator, Literal, Mapping, Sequence

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage, convert_to_openai_messages
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.output_parsers import JsonOutputKeyToolsParser, JsonOutputParser, PydanticOutputParser, PydanticToolsParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import Field

from ..adapters import recording_gate, recording_lock
from ..chat_adapters import chat_parameters, decode_arguments, tool_choice_for, usage_counts
from ..errors import InvalidInputError
from ..schemas import check_json_schema
from ._fields import ConnectionFields

__all__ = ["ChatHFInference"]

StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]


class ChatHFInference(ConnectionFields, BaseChatModel):
    """Chat completions on a Hugging Face server: the hosted API, the router's Inference
    Providers (``base_url="https://router.huggingface.co/v1"``), a TGI/vLLM endpoint, or
    ``hfbridge serve``.

    ```python
    from pydantic import BaseModel
    from hfbridge.langchain import ChatHFInference

    class Joke(BaseModel):
        setup: str
        punchline: str

    def get_weather(city: str) -> str:
        '''The weather in ``city``.'''
        return "sunny"

    chat = ChatHFInference(base_url="http://127.0.0.1:8000", model="HuggingFaceTB/SmolLM2-135M-Instruct", max_tokens=32)
    print(chat.invoke("What is the capital of France?").content)
    agent_model = chat.bind_tools([get_weather], tool_choice="any")
    joker = chat.with_structured_output(Joke)  # schema-constrained on hfbridge serve and TGI
    ```

    ``invoke`` / ``stream`` / ``batch`` and real async twins; ``bind_tools`` takes LangChain
    tools, pydantic models, TypedDicts, functions and OpenAI dicts; ``with_structured_output``
    methods ``json_schema`` (default), ``function_calling`` and ``json_mode``. Streams carry
    ``tool_call_chunks`` and end with ``usage_metadata``.
    """

    model: str | None = Field(default=None, description="Model id; None on a spec-layout server: its default chat model.")
    max_tokens: int | None = Field(default=None, ge=1, description="Most tokens per answer; None: the server's default.")
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    stop: list[str] | None = None
    provider: str | None = Field(default=None, description="Router only: 'fastest', 'cheapest' or a provider name.")
    streaming: bool = Field(default=False, description="Answer invoke() through the stream (callbacks see each token).")
    stream_usage: bool = Field(default=True, description="Ask streams for a final usage chunk (stream_options.include_usage).")
    max_concurrency: int = Field(default=8, ge=1, description="Connections the client pair keeps per host.")
    initial_tool_choice: str | None = Field(
        default=None,
        description="With tools bound and no tool_choice of the caller's: the tool_choice of a turn that answers the "
                    "user's message ('required', or a tool's name). For small models, which answer a request that "
                    "needs a tool in text; a bigger model or the hosted API chooses well on its own.",
    )
    answer_after_tool_results: bool = Field(
        default=False,
        description="With tools bound and no tool_choice of the caller's: answer a conversation that ends with tool "
                    "results in text (tool_choice 'none'). For small models, which otherwise call the same tool again.",
    )

    @property
    def _llm_type(self) -> str:
        return "hfbridge-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.clients.base_url, **self._fields()}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "huggingface"
        params["ls_model_name"] = kwargs.get("model") or self.model or "default"
        params["ls_model_type"] = "chat"
        params["ls_temperature"] = kwargs.get("temperature", self.temperature)
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        stops = list(dict.fromkeys((self.stop or []) + (stop or []) + list(kwargs.get("stop") or [])))
        if stops:
            params["ls_stop"] = stops
        return params

    # ---- requests -----------------------------------------------------------------------------
    def _fields(self) -> dict[str, Any]:
        names = ("model", "max_tokens", "temperature", "top_p", "seed", "frequency_penalty", "presence_penalty",
                 "logprobs", "top_logprobs", "provider", "stop")
        return {name: getattr(self, name) for name in names}

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any], *, stream: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        params = chat_parameters(self._fields(), stop, kwargs)
        if params.get("tools") and params.get("tool_choice") is None and messages:
            choice = self._policy_choice(messages[-1], [t["function"]["name"] for t in params["tools"]])
            if choice is not None:
                params["tool_choice"] = choice
        if stream and self.stream_usage and "stream_options" not in params:
            params["stream_options"] = {"include_usage": True}
        if not stream:
            params.pop("stream_options", None)
        return [_without_call_blocks(m) for m in convert_to_openai_messages(messages)], params

    def _policy_choice(self, last: BaseMessage, names: list[str]) -> Any:
        """The ``tool_choice`` that ``initial_tool_choice`` / ``answer_after_tool_results`` give
        a turn the caller left to the model (the same policy as :class:`~hfbridge.langchain.agents.ToolThenAnswer`,
        for any framework that drives the model)."""
        if isinstance(last, HumanMessage) and self.initial_tool_choice is not None:
            return tool_choice_for(self.initial_tool_choice, names)
        if isinstance(last, ToolMessage) and self.answer_after_tool_results:
            return "none"
        return None

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        if self.streaming:
            return _aggregate(self._stream(messages, stop, run_manager, **kwargs))
        wire, params = self._request(messages, stop, kwargs, stream=False)
        with recording_lock():
            answer = self.clients.sync.chat_completion(wire, **params)
        return _result(answer, params.get("model"))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        if self.streaming:
            chunks = [chunk async for chunk in self._astream(messages, stop, run_manager, **kwargs)]
            return _aggregate(iter(chunks))
        wire, params = self._request(messages, stop, kwargs, stream=False)
        async with recording_gate():
            answer = await self.clients.async_.chat_completion(wire, **params)
        return _result(answer, params.get("model"))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        wire, params = self._request(messages, stop, kwargs, stream=True)
        with recording_lock(), self.clients.sync.chat_completion(wire, stream=True, **params) as stream:
            for raw in stream:
                chunk = _chunk(raw, params.get("model"))
                if run_manager is not None:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        wire, params = self._request(messages, stop, kwargs, stream=True)
        async with recording_gate(), self.clients.async_.chat_completion(wire, stream=True, **params) as stream:
            async for raw in stream:
                chunk = _chunk(raw, params.get("model"))
                if run_manager is not None:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    # ---- tools and structured output ----------------------------------------------------------
    def bind_tools(
        self,
        tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | Mapping[str, Any] | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (any form LangChain converts). ``tool_choice``: ``"auto"``, ``"none"``,
        ``"any"`` / ``"required"`` / ``True`` (call some tool), or a tool's name. A tool that
        cannot be converted or a ``tool_choice`` naming no bound tool fails here, not later."""
        formatted = [_openai_tool(t, i, strict) for i, t in enumerate(tools)]
        names = [t["function"]["name"] for t in formatted]
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        choice = tool_choice_for(tool_choice, names)
        if choice is not None:
            kwargs["tool_choice"] = choice
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: Mapping[str, Any] | type,
        *,
        method: StructuredMethod = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Answers parsed into ``schema`` (a pydantic class, a TypedDict or a JSON schema).

        ``json_schema`` constrains the answer to the schema (``response_format``);
        ``function_calling`` forces a call of one tool whose parameters are the schema;
        ``json_mode`` asks for any JSON object (say in the prompt what it must hold). On
        ``hfbridge serve`` and TGI all three are enforced by grammar-constrained decoding."""
        if kwargs:
            raise InvalidInputError(sorted(kwargs)[0], "unknown with_structured_output option")
        if method not in ("json_schema", "function_calling", "json_mode"):
            raise InvalidInputError("method", f"must be 'json_schema', 'function_calling' or 'json_mode', got {method!r}")
        is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)  # pydantic 2, and 1 via pydantic.v1
        json_schema = _object_schema(schema)
        trace = {"ls_structured_output_format": {"kwargs": {"method": method, "strict": strict}, "schema": json_schema}}
        if method == "function_calling":
            tool = convert_to_openai_tool(schema, strict=strict)
            name = tool["function"]["name"]
            llm = self.bind_tools([schema], tool_choice=name, strict=strict, **trace)
            parser: Runnable = (PydanticToolsParser(tools=[schema], first_tool_only=True) if is_pydantic
                                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True))
        else:
            if method == "json_mode":
                response_format: dict[str, Any] = {"type": "json_object"}
            else:
                spec = {"name": json_schema.get("title", "response"), "schema": json_schema}
                if json_schema.get("description"):
                    spec["description"] = json_schema["description"]
                if strict is not None:
                    spec["strict"] = strict
                response_format = {"type": "json_schema", "json_schema": spec}
            llm = self.bind(response_format=response_format, **trace)
            parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks([fallback], exception_key="parsing_error")


def _openai_tool(tool: Any, index: int, strict: bool | None) -> dict[str, Any]:
    try:
        return convert_to_openai_tool(tool, strict=strict)
    except (ValueError, TypeError, AttributeError, NotImplementedError) as exc:
        raise InvalidInputError(f"tools[{index}]", f"LangChain cannot turn {tool!r} into a tool: {exc}") from None


def _object_schema(schema: Any) -> dict[str, Any]:
    """The JSON schema of a structured-output schema, which must describe an object."""
    try:
        converted = convert_to_json_schema(schema)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError("schema", f"must be a pydantic class, a TypedDict or a JSON schema: {exc}") from None
    try:
        check_json_schema(converted, require_object=True)
    except ValueError as exc:
        raise InvalidInputError("schema", str(exc)) from None
    if converted.get("type", "object") != "object":
        raise InvalidInputError("schema", f"must describe an object, got type {converted.get('type')!r}")
    return converted


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------
def _usage(usage: Any) -> UsageMetadata | None:
    counts = usage_counts(usage)
    if counts is None:
        return None
    return UsageMetadata(input_tokens=counts[0], output_tokens=counts[1], total_tokens=counts[2])


def _metadata(answer: Any, finish_reason: str | None, requested_model: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"model_name": answer.model or requested_model or "default", "model_provider": "huggingface"}
    if finish_reason is not None:
        meta["finish_reason"] = finish_reason
    if answer.system_fingerprint:
        meta["system_fingerprint"] = answer.system_fingerprint
    return meta


def _without_call_blocks(message: dict[str, Any]) -> dict[str, Any]:
    """An assistant message of LangChain's v1 output (content blocks) keeps its tool calls as
    ``tool_call`` blocks in ``content`` as well as in ``tool_calls``; the wire has them once, in
    ``tool_calls``. Every other block is sent as it is."""
    content = message.get("content")
    if message.get("role") != "assistant" or not isinstance(content, list):
        return message
    kept = [block for block in content if not (isinstance(block, dict) and block.get("type") == "tool_call" and message.get("tool_calls"))]
    return {**message, "content": kept or ""} if len(kept) != len(content) else message


def _result(answer: Any, requested_model: str | None) -> ChatResult:
    choice = answer.choices[0]
    calls, invalid = [], []
    for call in choice.message.tool_calls or []:
        args, error = decode_arguments(call.function.arguments)
        if error is None:
            calls.append(tool_call(name=call.function.name, args=args, id=call.id))
        else:
            invalid.append(invalid_tool_call(name=call.function.name, args=call.function.arguments, id=call.id, error=error))
    meta = _metadata(answer, choice.finish_reason, requested_model)
    if choice.logprobs is not None:
        meta["logprobs"] = choice.logprobs.model_dump()
    message = AIMessage(content=choice.message.content or "", tool_calls=calls, invalid_tool_calls=invalid,
                        usage_metadata=_usage(answer.usage), response_metadata=meta, id=answer.id or None)
    return ChatResult(generations=[ChatGeneration(message=message, generation_info={"finish_reason": choice.finish_reason})],
                      llm_output={"model_name": meta["model_name"]})


def _chunk(raw: Any, requested_model: str | None) -> ChatGenerationChunk:
    usage = _usage(raw.usage)
    if not raw.choices:  # the final usage chunk
        message = AIMessageChunk(content="", usage_metadata=usage, id=raw.id or None,
                                 response_metadata=_metadata(raw, None, requested_model), chunk_position="last")
        return ChatGenerationChunk(message=message)
    choice = raw.choices[0]
    fragments = [
        tool_call_chunk(name=f.function.name, args=f.function.arguments, id=f.id, index=f.index)
        for f in choice.delta.tool_calls or []
    ]
    meta = _metadata(raw, choice.finish_reason, requested_model) if choice.finish_reason else {}
    if choice.logprobs is not None:
        meta["logprobs"] = choice.logprobs.model_dump()
    message = AIMessageChunk(content=choice.delta.content or "", tool_call_chunks=fragments, usage_metadata=usage,
                             response_metadata=meta, id=raw.id or None)
    info = {"finish_reason": choice.finish_reason} if choice.finish_reason else None
    return ChatGenerationChunk(message=message, generation_info=info)


def _aggregate(chunks: Iterator[ChatGenerationChunk]) -> ChatResult:
    total: ChatGenerationChunk | None = None
    for chunk in chunks:
        total = chunk if total is None else total + chunk
    if total is None:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])
    message = total.message
    merged = AIMessage(content=message.content, tool_calls=message.tool_calls, invalid_tool_calls=message.invalid_tool_calls,
                       usage_metadata=message.usage_metadata, response_metadata=message.response_metadata, id=message.id)
    return ChatResult(generations=[ChatGeneration(message=merged, generation_info=total.generation_info)])
