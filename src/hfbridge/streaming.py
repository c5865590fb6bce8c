"""Server-sent events and client-side stop sequences, as pure incremental parsers.

Transports feed raw bytes in whatever chunks the socket gives; these classes turn them into
events and hold back just enough text that a stop sequence split across tokens is still caught
before any of it reaches the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterable, Iterable, Sequence

import orjson

from . import schemas as s

__all__ = [
    "ServerSentEvent", "SSEDecoder", "StopSequenceFilter", "TokenStreamState", "ChatStreamState",
    "ChatStreamAssembler", "assemble_chat_stream", "aassemble_chat_stream", "DONE",
]

DONE = "[DONE]"


@dataclass(frozen=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Incremental SSE decoding (WHATWG rules): ``data:`` with or without a space, comments,
    CRLF or LF line ends, multi-line data joined by newlines, events dispatched on a blank line."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        self._buffer += chunk
        events: list[ServerSentEvent] = []
        while True:
            cut = self._next_line_end()
            if cut is None:
                break
            end, width = cut
            line = self._buffer[:end].decode("utf-8", "replace")
            self._buffer = self._buffer[end + width :]
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """Events still pending when the stream ends without a final blank line."""
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append(self._dispatch())
        return events

    def _next_line_end(self) -> tuple[int, int] | None:
        for i, byte in enumerate(self._buffer):
            if byte == 0x0A:
                return i, 1
            if byte == 0x0D:
                if i + 1 < len(self._buffer):
                    return (i, 2) if self._buffer[i + 1] == 0x0A else (i, 1)
                return None  # a lone CR at the end: wait to see if LF follows
        return None

    def _line(self, line: str) -> ServerSentEvent | None:
        if line == "":
            return self._dispatch() if self._data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None

    def _dispatch(self) -> ServerSentEvent:
        event = ServerSentEvent("\n".join(self._data), self._event or "message", self._id)
        self._data, self._event = [], ""
        return event


class StopSequenceFilter:
    """Emits text as it arrives, except a tail that could still become a stop sequence."""

    def __init__(self, stops: Sequence[str] | None) -> None:
        self.stops = [stop for stop in (stops or []) if stop]
        self._held = ""
        self.stopped = False

    def push(self, text: str) -> str:
        """Text safe to emit now. After a stop sequence is seen, ``stopped`` is True and any
        further text is dropped (it lies after the stop)."""
        if self.stopped:
            return ""
        if not self.stops:
            return text
        buffer = self._held + text
        hits = [buffer.find(stop) for stop in self.stops]
        hits = [h for h in hits if h >= 0]
        if hits:
            self.stopped = True
            self._held = ""
            return buffer[: min(hits)]
        keep = self._longest_stop_prefix_suffix(buffer)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """The held-back tail, once the stream has ended without completing a stop."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

    def _longest_stop_prefix_suffix(self, buffer: str) -> int:
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:n]):
                    best = n
                    break
        return best


def decode_event(event: ServerSentEvent) -> Any:
    """The JSON payload of an event, :data:`DONE` for the end marker, None for blank data."""
    data = event.data.strip()
    if not data:
        return None
    if data == DONE:
        return DONE
    return orjson.loads(data)


class TokenStreamState:
    """Turns TGI token events into the outputs the user sees, with stop sequences applied.

    The final event's ``generated_text`` is the server's own (it may hold the prompt, or differ
    from the joined token texts where special tokens were dropped), so a streamed answer ends
    with the text the non-streamed call returns; only a stop sequence the client had to enforce
    itself makes it the joined token texts instead."""

    def __init__(self, stops: Sequence[str] | None, prompt: str = "", return_full_text: bool | None = None) -> None:
        self.filter = StopSequenceFilter(stops)
        self.stops = self.filter.stops
        self.prompt = prompt
        self.return_full_text = return_full_text
        self.text = ""
        self.finished = False

    def on_payload(self, payload: dict[str, Any]) -> list[s.TextGenerationStreamOutput]:
        if self.finished:
            return []
        event = s.TextGenerationStreamOutput.model_validate(payload)
        emitted = self.filter.push(event.token.text)
        final = event.generated_text is not None or self.filter.stopped
        if final:
            emitted += self.filter.flush()
        self.text += emitted
        out: list[s.TextGenerationStreamOutput] = []
        if final:
            self.finished = True
            details = event.details
            text = self.text
            if not self.filter.stopped and event.generated_text is not None:
                text, cut = self._server_text(event.generated_text)
                if cut:
                    details = (details or s.GenerationDetails()).model_copy(update={"finish_reason": "stop_sequence"})
            if self.filter.stopped:
                details = (details or s.GenerationDetails()).model_copy(update={"finish_reason": "stop_sequence"})
            token = event.token.model_copy(update={"text": emitted})
            out.append(event.model_copy(update={"token": token, "generated_text": text, "details": details}))
        elif emitted:
            out.append(event.model_copy(update={"token": event.token.model_copy(update={"text": emitted})}))
        return out

    def _server_text(self, text: str) -> tuple[str, bool]:
        """The server's final text with the stop sequences applied to its generated part."""
        from .shapes import generated_start, truncate_at_stop

        start = generated_start(text, self.prompt, self.return_full_text)
        cut = truncate_at_stop(text[start:], self.stops) if self.stops else None
        return (text, False) if cut is None else (text[:start] + cut, True)

    def on_end(self) -> list[s.TextGenerationStreamOutput]:
        """The stream closed without a final event: release what was held back."""
        if self.finished:
            return []
        self.finished = True
        tail = self.filter.flush()
        self.text += tail
        token = s.StreamToken(id=-1, text=tail, special=False)
        return [s.TextGenerationStreamOutput(token=token, generated_text=self.text, details=None)]


class ChatStreamState:
    """The same for chat-completion chunks: stop sequences applied to ``delta.content``, tool-call
    fragments passed through, finish reasons in OpenAI's words.

    The stream is over at ``[DONE]``, or at the first finish reason unless the caller asked for
    ``include_usage``: then the usage chunk (empty ``choices``) that follows is awaited too."""

    def __init__(self, stops: Sequence[str] | None, include_usage: bool = False) -> None:
        self.filter = StopSequenceFilter(stops)
        self.include_usage = include_usage
        self.finished = False
        self._finish_sent = False
        self._called_tools = False

    def on_payload(self, payload: dict[str, Any]) -> list[s.ChatCompletionChunk]:
        from .shapes import chat_finish_reason

        if self.finished:
            return []
        chunk = s.ChatCompletionChunk.model_validate(payload)
        if not chunk.choices:
            if chunk.usage is not None and self._finish_sent:
                self.finished = True
            return [chunk]
        if self._finish_sent:  # after a stop sequence the client enforced: only usage matters now
            return [chunk.model_copy(update={"choices": []})] if chunk.usage is not None else []
        choice = chunk.choices[0]
        if choice.delta.tool_calls:
            self._called_tools = True
        content = self.filter.push(choice.delta.content or "")
        reason = choice.finish_reason
        if reason is not None or self.filter.stopped:
            content += self.filter.flush()
            reason = "stop" if self.filter.stopped else chat_finish_reason(reason, self._called_tools)
            self._finish_sent = True
            self.finished = not self.include_usage or chunk.usage is not None
        delta = choice.delta.model_copy(update={"content": content if (content or choice.delta.content is not None) else None})
        choice = choice.model_copy(update={"delta": delta, "finish_reason": reason})
        return [chunk.model_copy(update={"choices": [choice]})]

    def on_end(self) -> list[s.ChatCompletionChunk]:
        if self.finished:
            return []
        self.finished = True
        tail = self.filter.flush()
        if not tail:
            return []
        return [s.ChatCompletionChunk(choices=[s.ChatCompletionChunkChoice(delta=s.ChatCompletionDelta(content=tail))])]


class ChatStreamAssembler:
    """Chunks in, one :class:`~hfbridge.schemas.ChatCompletion` out: content joined, tool calls
    rebuilt from their fragments (keyed by ``index``; ``id`` and ``name`` from the fragment that
    carries them, ``arguments`` concatenated in order, several calls interleaved), the finish
    reason, the usage chunk and the log-probabilities kept."""

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = 0
        self.system_fingerprint: str | None = None
        self.role = "assistant"
        self._content: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._logprobs: list[s.ChatTokenLogprob] = []
        self._has_logprobs = False
        self.finish_reason: str | None = None
        self.usage: s.ChatCompletionUsage | None = None

    def add(self, chunk: Any) -> None:
        if not isinstance(chunk, s.ChatCompletionChunk):
            chunk = s.ChatCompletionChunk.model_validate(chunk)
        self.id = self.id or chunk.id
        self.model = self.model or chunk.model
        self.created = self.created or chunk.created
        self.system_fingerprint = self.system_fingerprint or chunk.system_fingerprint
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.role:
                self.role = delta.role
            if delta.content:
                self._content.append(delta.content)
            for fragment in delta.tool_calls or []:
                call = self._calls.setdefault(fragment.index, {"id": None, "name": None, "arguments": []})
                call["id"] = call["id"] or fragment.id
                call["name"] = call["name"] or fragment.function.name
                if fragment.function.arguments:
                    call["arguments"].append(fragment.function.arguments)
            if choice.logprobs is not None:
                self._has_logprobs = True
                self._logprobs.extend(choice.logprobs.content or [])
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason

    def completion(self) -> s.ChatCompletion:
        from .shapes import chat_finish_reason

        calls = [
            s.ToolCall(id=call["id"] or f"call_{index}", function=s.FunctionCall(name=call["name"] or "", arguments="".join(call["arguments"]) or "{}"))
            for index, call in sorted(self._calls.items())
        ]
        message = s.ChatCompletionMessage(role=self.role, content="".join(self._content) if self._content else None, tool_calls=calls or None)
        choice = s.ChatCompletionChoice(
            index=0, message=message, finish_reason=chat_finish_reason(self.finish_reason, bool(calls)),
            logprobs=s.ChatLogprobs(content=self._logprobs) if self._has_logprobs else None,
        )
        return s.ChatCompletion(id=self.id, created=self.created, model=self.model, choices=[choice], usage=self.usage,
                                system_fingerprint=self.system_fingerprint)


def assemble_chat_stream(chunks: Iterable[Any]) -> s.ChatCompletion:
    """The :class:`~hfbridge.schemas.ChatCompletion` a chat stream adds up to (consumes it)."""
    assembler = ChatStreamAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.completion()


async def aassemble_chat_stream(chunks: AsyncIterable[Any]) -> s.ChatCompletion:
    """:func:`assemble_chat_stream` for an async stream."""
    assembler = ChatStreamAssembler()
    async for chunk in chunks:
        assembler.add(chunk)
    return assembler.completion()


def iter_events(decoder: SSEDecoder, chunks: Iterable[bytes]) -> Iterable[ServerSentEvent]:
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()
