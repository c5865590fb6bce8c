"""What the LangChain and LlamaIndex chat models share, framework-free.

The chat adapters convert messages and tool schemas with each framework's own helpers and map
answers back; the decisions that do not depend on the framework (which call options exist, how
configured and per-call options and stop sequences combine, how a tool call's JSON arguments
are decoded, what a tool choice means) are made here, once.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from .errors import InvalidInputError

__all__ = ["CHAT_OPTIONS", "chat_parameters", "decode_arguments", "usage_counts", "tool_choice_for", "check_tool_choice"]

#: keyword arguments of ``chat_completion`` an adapter passes through, by the core's names
CHAT_OPTIONS = (
    "model", "max_tokens", "temperature", "top_p", "seed", "frequency_penalty", "presence_penalty",
    "logprobs", "top_logprobs", "tools", "tool_choice", "response_format", "parallel_tool_calls",
    "tool_prompt", "provider", "stream_options",
)


def chat_parameters(fields: Mapping[str, Any], stop: Sequence[str] | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``chat_completion`` keyword arguments from an adapter's fields and one call's options.

    Per-call options win over fields; stop sequences from the fields, the call's ``stop`` and
    the options are all applied (in that order, without repeats). An unknown option is an
    error naming it, never silently dropped."""
    unknown = set(overrides) - set(CHAT_OPTIONS) - {"stop"}
    if unknown:
        raise InvalidInputError(sorted(unknown)[0], f"unknown chat option; known: {', '.join(CHAT_OPTIONS)}, stop")
    params = {name: fields.get(name) for name in CHAT_OPTIONS}
    params.update({k: v for k, v in overrides.items() if k != "stop"})
    stops = list(fields.get("stop") or []) + list(stop or []) + list(overrides.get("stop") or [])
    params["stop"] = list(dict.fromkeys(stops)) or None
    return {k: v for k, v in params.items() if v is not None}


def decode_arguments(arguments: str) -> tuple[dict[str, Any] | None, str | None]:
    """A tool call's arguments as a dict, or (None, why) when they are not a JSON object
    (frameworks report such calls as invalid rather than failing the whole answer)."""
    if not arguments.strip():
        return {}, None
    try:
        value = json.loads(arguments)
    except ValueError as exc:
        return None, f"the arguments are not JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"the arguments are not a JSON object: {type(value).__name__}"
    return value, None


def usage_counts(usage: Any) -> tuple[int, int, int] | None:
    """(input, output, total) tokens of a ``ChatCompletionUsage``, None when the server sent none."""
    if usage is None or (usage.prompt_tokens is None and usage.completion_tokens is None):
        return None
    prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
    return prompt, completion, usage.total_tokens if usage.total_tokens is not None else prompt + completion


def tool_choice_for(choice: Any, names: Sequence[str]) -> Any:
    """The wire's ``tool_choice`` from a framework's: ``"any"`` / ``True`` / ``"required"`` force a
    call, ``"auto"`` and ``"none"`` as they are, a tool's name (or ``{"name": ...}``) forces
    that tool. Checked against the bound tools, so a wrong name fails before any request."""
    if choice is None or choice is False:
        return None
    if choice is True or choice in ("any", "required"):
        if not names:
            raise InvalidInputError("tool_choice", "forcing a tool call needs at least one tool")
        return "required"
    if choice in ("auto", "none"):
        return choice
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name") if "function" in choice else choice.get("name")
        if not isinstance(name, str):
            raise InvalidInputError("tool_choice", f"must name a function, got {dict(choice)!r}")
        choice = name
    if isinstance(choice, str):
        check_tool_choice(choice, names)
        return {"type": "function", "function": {"name": choice}}
    raise InvalidInputError("tool_choice", f"must be 'auto', 'none', 'any'/'required', a tool name or True, got {choice!r}")


def check_tool_choice(name: str, names: Sequence[str]) -> None:
    if name not in names:
        known = ", ".join(names) or "no tools are bound"
        raise InvalidInputError("tool_choice", f"names '{name}', which is not among the tools ({known})")
