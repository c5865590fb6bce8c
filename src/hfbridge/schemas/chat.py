"""Chat completions in the OpenAI shape: messages, tools, tool choice, response formats, answers.

The OpenAI shape is the normal form. Every server hfbridge talks to (the hosted API, the router's
Inference Providers, TGI, vLLM, ``hfbridge serve``) speaks a dialect of it; the variants they
really send (an integer tool-call ``id``, ``arguments`` as an object instead of a JSON string, a
single tool call instead of a list, ``object: "text_completion"``) are folded into the normal
form by :func:`normalize_tool_call` and the answer models' validators, in one place.

Request models are strict and shared with the server, so a body the client refuses is refused by
``hfbridge serve`` with the same field name.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Mapping, Union

from pydantic import ConfigDict, Field, TypeAdapter, field_validator, model_validator

from ._base import FieldProblem, _Request, _Response
from .grammar import RegexGrammar, check_json_schema
from .tasks import Options, _TaskRequest

__all__ = [
    "TextPart",
    "ImageURL",
    "ImagePart",
    "ContentPart",
    "FunctionCall",
    "ToolCall",
    "SystemMessage",
    "UserMessage",
    "AssistantMessage",
    "ToolMessage",
    "ChatMessage",
    "CHAT_MESSAGE",
    "FunctionDefinition",
    "Tool",
    "FunctionName",
    "NamedToolChoice",
    "ToolChoice",
    "JSONSchemaSpec",
    "ResponseFormatText",
    "ResponseFormatJSONObject",
    "ResponseFormatJSONSchema",
    "ResponseFormatJSON",
    "ResponseFormat",
    "StreamOptions",
    "ChatCompletionParameters",
    "ChatCompletionRequest",
    "ConversationalRequest",
    "normalize_tool_call",
    "ChatTopLogprob",
    "ChatTokenLogprob",
    "ChatLogprobs",
    "ChatCompletionMessage",
    "ChatCompletionChoice",
    "ChatCompletionUsage",
    "ChatCompletion",
    "FunctionCallDelta",
    "ToolCallDelta",
    "ChatCompletionDelta",
    "ChatCompletionChunkChoice",
    "ChatCompletionChunk",
]

#: OpenAI's rule for function names; TGI and vLLM follow it
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# --------------------------------------------------------------------------------------------
# Message content
# --------------------------------------------------------------------------------------------
class TextPart(_Request):
    type: Literal["text"]
    text: str


class ImageURL(_Request):
    url: str
    detail: Literal["auto", "low", "high"] | None = None

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "data:")):
            raise ValueError("must be an http(s) URL or a data: URL (data:image/png;base64,...)")
        if value.startswith("data:") and ";base64," not in value[:100]:
            raise ValueError("a data: URL must be base64 encoded (data:<type>;base64,<data>)")
        return value


class ImagePart(_Request):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[Union[TextPart, ImagePart], Field(discriminator="type")]


# --------------------------------------------------------------------------------------------
# Tool calls (both directions: an assistant message sent back, and an answer received)
# --------------------------------------------------------------------------------------------
def normalize_tool_call(raw: Any, index: int = 0) -> Any:
    """One tool call in the OpenAI shape, from any of the shapes servers send.

    Seen in the wild: ``id`` as an integer (TGI), no ``id`` or ``type`` at all, ``arguments`` as
    a JSON object rather than its string, TGI's older ``{"_name": ..., ...args}`` inside the
    arguments, ``description: null`` inside ``function``. Anything that is not a mapping is
    returned untouched for pydantic to reject with a clear location.
    """
    if not isinstance(raw, Mapping):
        return raw
    call = dict(raw)
    function = call.get("function")
    if isinstance(function, Mapping):
        function = dict(function)
        args = function.get("arguments")
        if isinstance(args, Mapping):
            args = dict(args)
            legacy_name = args.pop("_name", None)
            if legacy_name and not function.get("name"):
                function["name"] = legacy_name
            function["arguments"] = json.dumps(args, ensure_ascii=False)
        elif args is None and "arguments" in function:
            function["arguments"] = "{}"
        function.pop("description", None)
        call["function"] = function
    if isinstance(call.get("id"), int):
        call["id"] = str(call["id"])
    if not call.get("id"):
        call["id"] = f"call_{index}"
    call.setdefault("type", "function")
    return call


class FunctionCall(_Response):
    name: str
    #: the arguments as a JSON string, exactly as OpenAI sends them
    arguments: str = "{}"

    def parsed_arguments(self) -> Any:
        """The arguments decoded; ``{}`` for an empty string. Raises ``ValueError`` if not JSON."""
        return json.loads(self.arguments) if self.arguments.strip() else {}


class ToolCall(_Response):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall

    @model_validator(mode="before")
    @classmethod
    def _normal_form(cls, data: Any) -> Any:
        return normalize_tool_call(data)


def _tool_calls_list(value: Any) -> Any:
    if isinstance(value, Mapping):  # a single call where a list belongs
        value = [value]
    if isinstance(value, list):
        return [normalize_tool_call(item, i) for i, item in enumerate(value)]
    return value


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------
class SystemMessage(_Request):
    role: Literal["system", "developer"]
    content: Union[str, list[TextPart]]
    name: str | None = None


class UserMessage(_Request):
    role: Literal["user"]
    content: Union[str, list[ContentPart]]
    name: str | None = None


class AssistantMessage(_Request):
    role: Literal["assistant"]
    content: Union[str, list[TextPart], None] = None
    tool_calls: list[ToolCall] | None = None
    name: str | None = None

    @field_validator("tool_calls", mode="before")
    @classmethod
    def _calls(cls, value: Any) -> Any:
        return _tool_calls_list(value)

    @model_validator(mode="after")
    def _something_said(self) -> "AssistantMessage":
        if self.content is None and not self.tool_calls:
            raise FieldProblem("content", "an assistant message needs content or tool_calls")
        return self


class ToolMessage(_Request):
    role: Literal["tool"]
    content: Union[str, list[TextPart]]
    tool_call_id: str = Field(min_length=1)
    name: str | None = None

    @field_validator("tool_call_id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


ChatMessage = Annotated[
    Union[SystemMessage, UserMessage, AssistantMessage, ToolMessage], Field(discriminator="role")
]
#: validates one message of any role (``CHAT_MESSAGE.validate_python(dict)``)
CHAT_MESSAGE: TypeAdapter = TypeAdapter(ChatMessage, config=ConfigDict(defer_build=True))


# --------------------------------------------------------------------------------------------
# Tools and tool choice
# --------------------------------------------------------------------------------------------
class FunctionDefinition(_Request):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not TOOL_NAME.match(value):
            raise ValueError("must be 1-64 letters, digits, '_' or '-'")
        return value

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: Any) -> Any:
        return None if value is None else check_json_schema(value, require_object=True)


class Tool(_Request):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class FunctionName(_Request):
    name: str


class NamedToolChoice(_Request):
    type: Literal["function"] = "function"
    function: FunctionName


ToolChoice = Union[Literal["auto", "none", "required"], NamedToolChoice]


# --------------------------------------------------------------------------------------------
# Response formats
# --------------------------------------------------------------------------------------------
class JSONSchemaSpec(_Request):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: Any) -> dict[str, Any]:
        return check_json_schema(value)


class ResponseFormatText(_Request):
    type: Literal["text"]


class ResponseFormatJSONObject(_Request):
    """``{"type": "json_object"}``: any JSON object. TGI also takes a schema in ``value``."""

    type: Literal["json_object"]
    value: dict[str, Any] | None = None

    @field_validator("value")
    @classmethod
    def _schema(cls, value: Any) -> Any:
        return None if value is None else check_json_schema(value)


class ResponseFormatJSONSchema(_Request):
    """OpenAI's ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``; TGI
    puts the same object in ``value``."""

    type: Literal["json_schema"]
    json_schema: JSONSchemaSpec | None = None
    value: JSONSchemaSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> "ResponseFormatJSONSchema":
        if (self.json_schema is None) == (self.value is None):
            raise FieldProblem("json_schema", "give the schema in 'json_schema' (OpenAI) or 'value' (TGI), exactly one")
        return self

    @property
    def spec(self) -> JSONSchemaSpec:
        return self.json_schema or self.value  # type: ignore[return-value]


class ResponseFormatJSON(_Request):
    """TGI's grammar form: ``{"type": "json", "value": <schema>}``."""

    type: Literal["json"]
    value: dict[str, Any]

    @field_validator("value")
    @classmethod
    def _schema(cls, value: Any) -> dict[str, Any]:
        return check_json_schema(value)


ResponseFormat = Annotated[
    Union[ResponseFormatText, ResponseFormatJSONObject, ResponseFormatJSONSchema, ResponseFormatJSON, RegexGrammar],
    Field(discriminator="type"),
]


class StreamOptions(_Request):
    include_usage: bool | None = None


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------
class ChatCompletionParameters(_Request):
    """Everything of a chat request but the messages, the model and ``stream``."""

    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    #: TGI: the text put before the tool descriptions in the prompt
    tool_prompt: str | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=100.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: list[str] | None = None
    seed: int | None = Field(default=None, ge=0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    n: int | None = Field(default=None, ge=1, le=1, description="Only one choice is supported.")
    user: str | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("tool_choice", mode="before")
    @classmethod
    def _choice(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in ("auto", "none", "required"):
            return {"type": "function", "function": {"name": value}}  # a bare tool name
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "ChatCompletionParameters":
        names = [tool.function.name for tool in self.tools or []]
        if len(set(names)) != len(names):
            raise FieldProblem("tools", f"two tools have the same name ({names})")
        choice = self.tool_choice
        if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
            known = ", ".join(names) or "no tools were given"
            raise FieldProblem("tool_choice", f"names '{choice.function.name}', which is not in tools ({known})")
        if choice == "required" and not names:
            raise FieldProblem("tool_choice", "'required' needs at least one tool in tools")
        if self.top_logprobs and not self.logprobs:
            raise FieldProblem("top_logprobs", "needs logprobs=True")
        return self


class ChatCompletionRequest(ChatCompletionParameters):
    """The OpenAI-style ``/v1/chat/completions`` body."""

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None


class ConversationalRequest(_TaskRequest):
    """``/pipeline/conversational``: ``inputs`` is the last user turn (the spec requires it);
    ``messages`` carries the whole conversation when there is more than one turn."""

    inputs: Union[str, list[str]]
    messages: list[ChatMessage] | None = None
    parameters: ChatCompletionParameters | None = None
    stream: bool | None = None
    options: Options | None = None


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------
class ChatTopLogprob(_Response):
    token: str
    logprob: float
    bytes: list[int] | None = None


class ChatTokenLogprob(_Response):
    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[ChatTopLogprob] = Field(default_factory=list)


class ChatLogprobs(_Response):
    content: list[ChatTokenLogprob] | None = None


class ChatCompletionMessage(_Response):
    role: str = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None

    @field_validator("tool_calls", mode="before")
    @classmethod
    def _calls(cls, value: Any) -> Any:
        value = _tool_calls_list(value)
        return value or None  # an empty list means no call


class ChatCompletionChoice(_Response):
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: str | None = None
    logprobs: ChatLogprobs | None = None


class ChatCompletionUsage(_Response):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


def _object_name(value: Any, normal: str) -> Any:
    # Some servers (older TGI) label chat answers "text_completion"; the shape is the same.
    return normal if value in (None, "text_completion", "") else value


class ChatCompletion(_Response):
    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[ChatCompletionChoice]
    usage: ChatCompletionUsage | None = None
    system_fingerprint: str | None = None

    @field_validator("object", mode="before")
    @classmethod
    def _object(cls, value: Any) -> Any:
        return _object_name(value, "chat.completion")

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @property
    def message(self) -> ChatCompletionMessage:
        """The first choice's message (servers answer one choice)."""
        return self.choices[0].message


class FunctionCallDelta(_Response):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(_Response):
    """A fragment of a streamed tool call: ``index`` says which call it belongs to; ``id`` and
    ``function.name`` come once, ``function.arguments`` in pieces to be concatenated."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: FunctionCallDelta = Field(default_factory=FunctionCallDelta)

    @model_validator(mode="before")
    @classmethod
    def _normal_form(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if isinstance(data.get("id"), int):
            data["id"] = str(data["id"])
        function = data.get("function")
        if isinstance(function, Mapping):
            function = dict(function)
            if isinstance(function.get("arguments"), Mapping):
                function["arguments"] = json.dumps(function["arguments"], ensure_ascii=False)
            function.pop("description", None)
            data["function"] = function
        return data


class ChatCompletionDelta(_Response):
    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None

    @field_validator("tool_calls", mode="before")
    @classmethod
    def _calls(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            value = [value]
        return value or None


class ChatCompletionChunkChoice(_Response):
    index: int = 0
    delta: ChatCompletionDelta = Field(default_factory=ChatCompletionDelta)
    finish_reason: str | None = None
    logprobs: ChatLogprobs | None = None


class ChatCompletionChunk(_Response):
    """One streamed chunk. With ``stream_options={"include_usage": True}`` the last chunk has
    empty ``choices`` and carries ``usage``."""

    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    choices: list[ChatCompletionChunkChoice] = Field(default_factory=list)
    usage: ChatCompletionUsage | None = None
    system_fingerprint: str | None = None

    @field_validator("object", mode="before")
    @classmethod
    def _object(cls, value: Any) -> Any:
        return _object_name(value, "chat.completion.chunk")

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value
