"""Server-sent events and client-side stop sequences, as pure incremental parsers.

Transports feed raw bytes in whatever chunks the socket gives; these classes turn them into
events and hold back just enough text that a stop sequence split across tokens is still caught
before any of it reaches the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import orjson

from . import schemas as s
from .config import DEFAULT_MAX_SSE_LINE_BYTES
from .errors import ResponseTooLargeError

__all__ = ["ServerSentEvent", "SSEDecoder", "StopSequenceFilter", "TokenStreamState", "ChatStreamState", "DONE"]

DONE = "[DONE]"


@dataclass(frozen=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Incremental SSE decoding (WHATWG rules): ``data:`` with or without a space, comments,
    CRLF, CR or LF line ends, multi-line data joined by newlines, events dispatched on a blank line.

    Linear in the bytes fed, however they are chunked: a partial line is never scanned twice.
    Bounded: a line, or an event's data, longer than ``max_line_bytes`` raises
    :class:`~hfbridge.ResponseTooLargeError` instead of growing without end."""

    _LINE_END = re.compile(rb"\r\n|\r|\n")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_SSE_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer known to hold no line end
        self._data: list[str] = []
        self._data_size = 0
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        buffer = self._buffer
        buffer += chunk
        events: list[ServerSentEvent] = []
        start = 0
        while True:
            found = self._LINE_END.search(buffer, max(start, self._scanned))
            if found is None:
                self._scanned = len(buffer)
                break
            if found.group() == b"\r" and found.end() == len(buffer):
                self._scanned = found.start()  # a CR at the very end: an LF may follow
                break
            line = bytes(buffer[start : found.start()]).decode("utf-8", "replace")
            start = found.end()
            event = self._line(line)
            if event is not None:
                events.append(event)
        if start:
            del buffer[:start]
            self._scanned -= start
        if len(buffer) > self.max_line_bytes:
            raise self._too_long("line")
        return events

    def flush(self) -> list[ServerSentEvent]:
        """Events still pending when the stream ends without a final blank line."""
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append(self._dispatch())
        return events

    def _too_long(self, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"an event-stream {what} is longer than {self.max_line_bytes} bytes; reading stopped",
            limit=self.max_line_bytes,
        )

    def _line(self, line: str) -> ServerSentEvent | None:
        if line == "":
            return self._dispatch() if self._data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_size += len(value) + 1
            if self._data_size > self.max_line_bytes:
                raise self._too_long("event")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None

    def _dispatch(self) -> ServerSentEvent:
        event = ServerSentEvent("\n".join(self._data), self._event or "message", self._id)
        self._data, self._data_size, self._event = [], 0, ""
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
    """Turns TGI token events into the outputs the user sees, with stop sequences applied."""

    def __init__(self, stops: Sequence[str] | None) -> None:
        self.filter = StopSequenceFilter(stops)
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
            if self.filter.stopped:
                details = (details or s.GenerationDetails()).model_copy(update={"finish_reason": "stop_sequence"})
            token = event.token.model_copy(update={"text": emitted})
            out.append(s.TextGenerationStreamOutput(token=token, generated_text=self.text, details=details))
        elif emitted:
            out.append(event.model_copy(update={"token": event.token.model_copy(update={"text": emitted})}))
        return out

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
    """The same for chat-completion chunks: stop sequences applied to ``delta.content``."""

    def __init__(self, stops: Sequence[str] | None) -> None:
        self.filter = StopSequenceFilter(stops)
        self.finished = False

    def on_payload(self, payload: dict[str, Any]) -> list[s.ChatCompletionChunk]:
        if self.finished:
            return []
        chunk = s.ChatCompletionChunk.model_validate(payload)
        if not chunk.choices:
            return [chunk]
        choice = chunk.choices[0]
        content = self.filter.push(choice.delta.content or "")
        if choice.finish_reason is not None or self.filter.stopped:
            content += self.filter.flush()
            self.finished = True
            reason = "stop" if self.filter.stopped else choice.finish_reason
            choice = choice.model_copy(update={"finish_reason": reason})
        delta = choice.delta.model_copy(update={"content": content})
        return [chunk.model_copy(update={"choices": [choice.model_copy(update={"delta": delta})]})]

    def on_end(self) -> list[s.ChatCompletionChunk]:
        if self.finished:
            return []
        self.finished = True
        tail = self.filter.flush()
        if not tail:
            return []
        return [s.ChatCompletionChunk(choices=[s.ChatCompletionChunkChoice(delta=s.ChatCompletionDelta(content=tail))])]


def iter_events(decoder: SSEDecoder, chunks: Iterable[bytes]) -> Iterable[ServerSentEvent]:
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()
