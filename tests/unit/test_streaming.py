"""SSE parsing and client-side stop sequences (pure, fed byte by byte where it matters)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hfbridge import ResponseFormatError, ServerError, Task
from hfbridge.config import ClientConfig
from hfbridge.protocol import Call, StreamProcessor
from hfbridge.streaming import SSEDecoder, StopSequenceFilter
from hfbridge.tasks import get_task


def feed_all(data: bytes, step: int | None = None) -> list[str]:
    decoder = SSEDecoder()
    events = []
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        events += decoder.feed(piece)
    events += decoder.flush()
    return [e.data for e in events]


@pytest.mark.parametrize("step", [None, 1, 3, 7])
def test_sse_decoding_in_any_chunking(step: int | None) -> None:
    data = b'data: {"a":1}\n\ndata:{"b":2}\r\n\r\n: a comment\n\nevent: x\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n'
    assert feed_all(data, step) == ['{"a":1}', '{"b":2}', "line1\nline2", "[DONE]"]


def test_sse_flushes_an_unterminated_last_event() -> None:
    assert feed_all(b'data: {"a":1}') == ['{"a":1}']


def test_sse_handles_multibyte_characters_split_across_chunks() -> None:
    data = 'data: {"t":"héllo ✓"}\n\n'.encode()
    assert feed_all(data, 1) == ['{"t":"héllo ✓"}']


def run_filter(stops: list[str], pieces: list[str]) -> tuple[list[str], bool]:
    f = StopSequenceFilter(stops)
    out = [f.push(p) for p in pieces]
    out.append(f.flush())
    return out, f.stopped


def test_stop_sequence_split_across_tokens_is_caught_and_never_emitted() -> None:
    out, stopped = run_filter(["\nUser:"], ["Hello", " there", "\nUs", "er", ": more"])
    assert "".join(out) == "Hello there" and stopped
    assert all("\nUs" not in piece for piece in out)


def test_text_that_only_looks_like_a_stop_prefix_is_released() -> None:
    out, stopped = run_filter(["STOP"], ["ST", "ART", " now"])
    assert "".join(out) == "START now" and not stopped
    assert out[0] == ""  # "ST" was held back while it could still become STOP


def test_held_tail_is_released_at_the_end() -> None:
    out, stopped = run_filter(["STOP"], ["abc S"])
    assert out == ["abc ", "S"] and not stopped


def test_earliest_of_several_stops_wins() -> None:
    out, _ = run_filter(["b", "xyz"], ["axyzb"])
    assert "".join(out) == "a"


def _token(i: int, text: str, final: str | None = None, details: Any = None) -> dict:
    return {"index": i, "token": {"id": i, "text": text, "logprob": -0.5, "special": False}, "generated_text": final, "details": details}


def stream_of(task: Task, parameters: dict) -> StreamProcessor:
    call = Call(spec=get_task(task), model="m", inputs="x", parameters=parameters, stream=True)
    return StreamProcessor(ClientConfig(), call, 200)


def sse_bytes(*payloads: Any) -> bytes:
    return b"".join(b"data: " + (p if isinstance(p, bytes) else json.dumps(p).encode()) + b"\n\n" for p in payloads)


def test_token_stream_applies_stop_across_tokens_and_ends_early() -> None:
    proc = stream_of(Task.TEXT_GENERATION, {"stop": ["\n\n"]})
    data = sse_bytes(_token(0, "Hi"), _token(1, " there\n"), _token(2, "\nNext"), _token(3, " ignored", "Hi there\n\nNext ignored"))
    outs = []
    for i in range(len(data)):
        outs += proc.feed(data[i : i + 1])
        if proc.finished:
            break
    assert proc.finished
    assert "".join(o.token.text for o in outs) == "Hi there"
    assert outs[-1].generated_text == "Hi there" and outs[-1].details.finish_reason == "stop_sequence"


def test_token_stream_final_event_carries_the_whole_text() -> None:
    proc = stream_of(Task.TEXT_GENERATION, {})
    outs = proc.feed(sse_bytes(_token(0, "a"), _token(1, "b", "ab", {"finish_reason": "length", "generated_tokens": 2})))
    assert [o.token.text for o in outs] == ["a", "b"]
    assert outs[-1].generated_text == "ab" and outs[-1].details.generated_tokens == 2
    assert proc.finished


def test_error_event_mid_stream_raises() -> None:
    proc = stream_of(Task.TEXT_GENERATION, {})
    with pytest.raises(ServerError) as info:
        proc.feed(sse_bytes(_token(0, "a"), {"error": "CUDA out of memory", "error_type": "generation"}))
    assert "CUDA out of memory" in str(info.value)


def test_non_json_event_is_a_format_error() -> None:
    proc = stream_of(Task.TEXT_GENERATION, {})
    with pytest.raises(ResponseFormatError):
        proc.feed(b"data: not json\n\n")


def test_stream_without_final_event_releases_held_text_on_end() -> None:
    proc = stream_of(Task.TEXT_GENERATION, {"stop": ["XYZ"]})
    outs = proc.feed(sse_bytes(_token(0, "abc X")))
    outs += proc.end()
    assert "".join(o.token.text for o in outs) == "abc X"
    assert outs[-1].generated_text == "abc X"


def test_chat_stream_with_done_marker_and_stop() -> None:
    proc = stream_of(Task.CONVERSATIONAL, {"stop": ["!"]})

    def chunk(content: str, finish: str | None = None) -> dict:
        return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": finish}]}

    outs = proc.feed(sse_bytes(chunk("Deep"), chunk(" learning!"), chunk(" more"), b"[DONE]"))
    assert "".join(o.choices[0].delta.content for o in outs) == "Deep learning"
    assert outs[-1].choices[0].finish_reason == "stop"
