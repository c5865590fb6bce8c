"""What users pass for tools, tool choice, response formats and grammars, in the wire's shape.

Pure conversions, run before anything is sent. People hand over tools in several forms (the
OpenAI dict, a bare function definition, a pydantic model class, a :class:`~hfbridge.schemas.Tool`)
and response formats as dicts or pydantic classes; everything becomes the OpenAI shape here, and
the shared request model (:class:`~hfbridge.schemas.ChatCompletionParameters`) then checks it, so
the server and the client agree on what is valid and every error names the field.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Mapping, Sequence

from pydantic import BaseModel

from .errors import InvalidInputError

__all__ = ["tools_to_wire", "tool_choice_to_wire", "response_format_to_wire", "grammar_to_wire", "provider_model"]

#: the router's provider policies; any provider name is also accepted
PROVIDER_POLICIES = ("fastest", "cheapest")
_PROVIDER = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def _is_model_class(value: Any) -> bool:
    return inspect.isclass(value) and issubclass(value, BaseModel)


def _description(cls: type) -> str | None:
    doc = inspect.getdoc(cls)
    return doc if doc and doc != inspect.getdoc(BaseModel) else None


def _tool(value: Any, index: int) -> Any:
    field = f"tools[{index}]"
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True, by_alias=True)
    if _is_model_class(value):
        function: dict[str, Any] = {"name": value.__name__, "parameters": value.model_json_schema()}
        if _description(value):
            function["description"] = _description(value)
        return {"type": "function", "function": function}
    if isinstance(value, Mapping):
        if "function" in value:
            return dict(value)
        if "name" in value:  # a bare function definition
            return {"type": "function", "function": dict(value)}
        raise InvalidInputError(field, "must be {'type': 'function', 'function': {'name', 'description', 'parameters'}}")
    raise InvalidInputError(
        field, f"must be an OpenAI tool dict, a function definition dict or a pydantic model class, got {type(value).__name__}"
    )


def tools_to_wire(tools: Sequence[Any] | None) -> list[Any] | None:
    if tools is None:
        return None
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
        raise InvalidInputError("tools", "must be a list of tools")
    if not tools:
        raise InvalidInputError("tools", "must not be an empty list (leave it out for no tools)")
    return [_tool(tool, i) for i, tool in enumerate(tools)]


def tool_choice_to_wire(choice: Any) -> Any:
    """``"auto"``, ``"none"``, ``"required"``, a tool's name, or the OpenAI dict."""
    if choice is None or isinstance(choice, (str, Mapping)):
        return choice
    if isinstance(choice, BaseModel):
        return choice.model_dump(exclude_none=True)
    raise InvalidInputError("tool_choice", f"must be 'auto', 'none', 'required' or a tool name, got {type(choice).__name__}")


def response_format_to_wire(value: Any) -> Any:
    """A dict as given, or a pydantic model class as a strict ``json_schema`` format."""
    if value is None or isinstance(value, Mapping):
        return None if value is None else dict(value)
    if _is_model_class(value):
        spec: dict[str, Any] = {"name": value.__name__, "schema": value.model_json_schema(), "strict": True}
        if _description(value):
            spec["description"] = _description(value)
        return {"type": "json_schema", "json_schema": spec}
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True, by_alias=True)
    raise InvalidInputError(
        "response_format", f"must be a dict such as {{'type': 'json_object'}} or a pydantic model class, got {type(value).__name__}"
    )


def grammar_to_wire(value: Any) -> Any:
    """TGI's ``grammar``: a dict as given, or a pydantic model class as a JSON grammar."""
    if value is None or isinstance(value, Mapping):
        return None if value is None else dict(value)
    if _is_model_class(value):
        return {"type": "json", "value": value.model_json_schema()}
    raise InvalidInputError(
        "grammar", f"must be {{'type': 'json' | 'regex', 'value': ...}} or a pydantic model class, got {type(value).__name__}"
    )


def provider_model(model: str | None, provider: str | None) -> str | None:
    """The router's ``org/name:provider`` model id."""
    if provider is None:
        return model
    if not isinstance(provider, str) or not _PROVIDER.match(provider):
        raise InvalidInputError(
            "provider", f"must be {' or '.join(repr(p) for p in PROVIDER_POLICIES)} or a provider name such as 'together', got {provider!r}"
        )
    if model is None:
        raise InvalidInputError("model", "provider= needs a model id to route")
    if ":" in model:
        raise InvalidInputError("provider", f"the model {model!r} already names a provider")
    return f"{model}:{provider}"
