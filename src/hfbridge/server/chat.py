"""Chat requests with tools, tool results, response formats and content parts, served by a model
that reads and writes plain text.

The generation backend takes ``{role, content}`` messages with string content, sampling
parameters and at most one constraint, and answers text. This module sits on either side of it:
:func:`plan_chat` turns a validated chat request into those (tools and their calling
instructions rendered into the prompt as TGI does, earlier tool calls written back in the format
the model is asked to use, ``tool`` results as ``tool`` turns, text parts joined), and the
resulting :class:`ChatPlan` turns the backend's answers back into OpenAI's shape: ``tool_calls``
with ``finish_reason: "tool_calls"``, streamed as ``delta.tool_calls`` fragments, and the usage
chunk of ``stream_options.include_usage``. The backend never sees a tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from ..schemas._base import FieldProblem
from .constraints import ConstraintSpec
from .toolcalls import NO_TOOL, ReadCall, ToolCallFormat, ToolCallReader, closed_objects, render_calls, without_titles

__all__ = ["ChatInputError", "ChatPlan", "plan_chat", "grammar_constraint"]

#: the request parameters the backend itself honours
#: the default ``max_tokens`` of a constrained answer (a tool call, a response format), which is
#: usable only when complete: cut off by the plain default (64) it is neither valid JSON nor a
#: call. Measured on SmolLM2-135M: a call with a long string argument took 151 tokens.
CONSTRAINED_MAX_TOKENS = 256
_SAMPLING = ("max_tokens", "temperature", "top_p", "stop", "seed", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs")


class ChatInputError(FieldProblem):
    """A chat request the server cannot serve as asked: a 400 naming ``field``."""


def grammar_constraint(grammar: Mapping[str, Any], field: str) -> ConstraintSpec:
    """TGI's ``{"type": "json" | "json_object", "value": <schema>}`` or ``{"type": "regex",
    "value": <pattern>}`` (already validated by :mod:`hfbridge.schemas.grammar`)."""
    if grammar["type"] == "regex":
        return ConstraintSpec.regex(grammar["value"], field)
    return ConstraintSpec.json_schema(grammar["value"], field)


def _response_format_constraint(response_format: Mapping[str, Any] | None, field: str) -> ConstraintSpec | None:
    """OpenAI's ``json_object`` and ``json_schema`` (``strict`` closes every object, as OpenAI's
    strict mode requires), and TGI's ``json`` and ``regex`` forms; ``text`` asks for nothing."""
    if not response_format:
        return None
    kind = response_format["type"]
    if kind == "text":
        return None
    if kind == "json_object":
        return ConstraintSpec.json_schema(response_format.get("value") or {"type": "object"}, field)
    if kind == "json_schema":
        spec = response_format.get("json_schema") or response_format["value"]
        schema = closed_objects(spec["schema"]) if spec.get("strict") else spec["schema"]
        return ConstraintSpec.json_schema(schema, field)
    return grammar_constraint(response_format, field)


# --------------------------------------------------------------------------------------------
# Requests: messages the template can render
# --------------------------------------------------------------------------------------------
def _text(content: Any, where: str) -> str:
    """A message's content as one string; parts are joined by newlines. The server's chat
    models read text only, so an image is refused rather than silently dropped."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        if part["type"] != "text":
            raise ChatInputError(f"{where}.{j}.image_url", "the chat models this server runs read text only; send the image to an image task instead")
        texts.append(part["text"])
    return "\n".join(texts)


def _render(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    out = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        role = "system" if message["role"] == "developer" else message["role"]
        content = _text(message.get("content"), f"{where}.content")
        calls = message.get("tool_calls") or []
        if calls:
            made = []
            for j, call in enumerate(calls):
                function = call["function"]
                try:
                    made.append((function["name"], json.loads(function.get("arguments") or "{}")))
                except json.JSONDecodeError as exc:
                    raise ChatInputError(f"{where}.tool_calls.{j}.function.arguments", f"is not JSON: {exc}") from None
            content = (content + "\n" if content else "") + render_calls(made)
        out.append({"role": role, "content": content})
    return out


# --------------------------------------------------------------------------------------------
# The plan, and answers shaped by it
# --------------------------------------------------------------------------------------------
@dataclass
class ChatPlan:
    #: what the backend's chat template renders
    messages: list[dict[str, str]]
    #: what the backend's sampling honours
    parameters: dict[str, Any]
    constraint: ConstraintSpec | None = None
    tools: ToolCallFormat | None = None
    include_usage: bool = False

    @property
    def call_id_seed(self) -> str | None:
        """What tool-call ids are derived from: the prompt and the sampling parameters, so a
        deterministic answer is the same each time. Unseeded sampling keeps random ids."""
        sampled = any(self.parameters.get(k) not in (None, 0, 0.0) for k in ("temperature", "top_p")) and "seed" not in self.parameters
        if sampled:
            return None
        return json.dumps([self.messages, self.parameters], sort_keys=True, default=str)

    # -- whole answers --------------------------------------------------------------------------
    def answer(self, completion: dict[str, Any]) -> dict[str, Any]:
        if self.tools is None:
            return completion
        choice = completion["choices"][0]
        reader = self.tools.reader(self.call_id_seed)
        reader.feed(choice["message"].get("content") or "")
        if reader.answered and not reader.calls:  # no_tool: the answer is its content
            choice["message"] = {"role": "assistant", "content": reader.text}
        elif reader.is_calls:
            # A call cut off before its name was complete is nothing a client can run: no call.
            message: dict[str, Any] = {"role": "assistant", "content": None}
            if reader.calls:
                message["tool_calls"] = [_call(c) for c in reader.calls]
            choice["message"] = message
            choice["finish_reason"] = _finish(choice["finish_reason"], reader)
        return completion

    # -- streams -------------------------------------------------------------------------------
    def stream(self, chunks: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The backend's chunks with tool calls as ``delta.tool_calls`` fragments (``id``,
        ``type`` and the name in a call's first fragment, then its arguments in pieces); with
        ``include_usage``, usage moves to one last chunk with no choices (OpenAI's rule, so a
        client that sums usage over chunks counts it once)."""
        reader = self.tools.reader(self.call_id_seed) if self.tools is not None else None
        last: dict[str, Any] | None = None
        usage = None
        for chunk in chunks:
            last = chunk
            if self.include_usage:
                usage = chunk.get("usage") or usage
                chunk["usage"] = None
            if reader is not None:
                shaped = self._tool_chunk(chunk, reader)
                if shaped is None:
                    continue
                chunk = shaped
            yield chunk
        if self.include_usage and last is not None:
            yield {**{k: v for k, v in last.items() if k not in ("choices", "usage")}, "choices": [], "usage": usage}

    @staticmethod
    def _tool_chunk(chunk: dict[str, Any], reader: ToolCallReader) -> dict[str, Any] | None:
        choice = chunk["choices"][0]
        delta = choice["delta"]
        events = reader.feed(delta.get("content") or "")
        if reader.answered and not reader.calls:  # no_tool: stream its content as the text
            if not events.text and choice["finish_reason"] is None and not choice.get("logprobs"):
                return None
            choice["delta"] = {"role": "assistant", "content": events.text}
            return chunk
        if not reader.is_calls:
            return chunk
        fragments: dict[int, dict[str, Any]] = {}
        for index, name in events.started:
            fragments[index] = {"index": index, "id": reader.calls[index].id, "type": "function",
                                "function": {"name": name, "arguments": ""}}
        for index, piece in events.arguments:
            fragment = fragments.setdefault(index, {"index": index, "function": {}})
            fragment["function"]["arguments"] = fragment["function"].get("arguments", "") + piece
        if choice["finish_reason"] is not None:
            choice["finish_reason"] = _finish(choice["finish_reason"], reader)
        if not fragments and choice["finish_reason"] is None and not choice.get("logprobs"):
            return None  # the call's punctuation: nothing a client needs to see
        choice["delta"] = {"role": "assistant", "tool_calls": list(fragments.values())} if fragments else {"role": "assistant"}
        return chunk


def _call(call: ReadCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _finish(reason: str, reader: ToolCallReader) -> str:
    """Calls that were written to the end say ``tool_calls``; cut-off ones keep ``length``."""
    return "tool_calls" if reason == "stop" and reader.complete else reason


def _format_prompt(response_format: Mapping[str, Any]) -> str:
    """What the model is told about a constrained answer. The grammar alone only forbids; a
    model that does not know the schema fills its first string until it runs out of tokens
    (measured on SmolLM2-135M: it never reached a second required key). OpenAI, too, shows the
    model the schema of a structured output."""
    kind = response_format["type"]
    if kind == "regex":
        return f"\n\nAnswer with text that matches this regular expression: {response_format['value']}"
    schema = None
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or response_format["value"])["schema"]
    elif kind in ("json", "json_object"):
        schema = response_format.get("value")
    if not schema:
        return "\n\nAnswer with a JSON object."
    return f"\n\nAnswer with a JSON object that follows this JSON schema: {json.dumps(without_titles(schema), ensure_ascii=False)}"


def plan_chat(messages: Sequence[Mapping[str, Any]], parameters: Mapping[str, Any], *, stream: bool, prefix: str = "") -> ChatPlan:
    """Everything a validated request asks for, accounted for: the backend's sampling
    parameters, one constraint (tools or a response format), the prompt. ``prefix`` is where
    the parameters sit in the body (``parameters.`` on the spec's conversational route)."""
    tools = ToolCallFormat.from_request(parameters.get("tools"), parameters.get("tool_choice"), parameters.get("parallel_tool_calls"))
    if tools is not None:
        tools = ToolCallFormat(tools.functions, tools.text_allowed, tools.parallel, field=f"{prefix}tools")
        if tools.text_allowed and any(f["name"] == NO_TOOL for f in tools.functions):
            raise ChatInputError(f"{prefix}tools", f"'{NO_TOOL}' is the name a text answer is given under with tool_choice "
                                                   '"auto" (as in TGI); rename that tool')
    response = _response_format_constraint(parameters.get("response_format"), f"{prefix}response_format")
    if tools is not None and response is not None:
        raise ChatInputError(f"{prefix}response_format", 'cannot be combined with tools (unless tool_choice is "none"): '
                                                         "the answer is either a tool call or follows the format")
    options = parameters.get("stream_options")
    if options and not stream:
        raise ChatInputError(f"{prefix}stream_options", "only applies to a streamed answer (stream: true)")
    rendered = _render(messages)
    users = [i for i, message in enumerate(rendered) if message["role"] == "user"]
    target = users[-1] if users else len(rendered) - 1
    if tools is not None:
        rendered[target]["content"] = tools.prompt(parameters.get("tool_prompt")) + rendered[target]["content"]
    elif response is not None:
        rendered[target]["content"] += _format_prompt(parameters.get("response_format"))
    sampling = {k: parameters[k] for k in _SAMPLING if parameters.get(k) is not None}
    constraint = tools.constraint() if tools is not None else response
    if constraint is not None:
        sampling.setdefault("max_tokens", CONSTRAINED_MAX_TOKENS)
    return ChatPlan(
        messages=rendered,
        parameters=sampling,
        constraint=constraint,
        tools=tools,
        include_usage=bool(options and options.get("include_usage")),
    )
