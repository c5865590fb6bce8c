"""What makes two recordings of the same deterministic calls byte-identical.

Re-recording a cassette against the same server with the same models changes only what the
server makes up per answer or reports about itself: the ``Date`` and ``X-Compute-Time`` headers,
``X-Compute-Type`` (``cache`` when the server answered the same request before, else ``cpu``),
and the random id and clock time of chat completions (``"id": "chatcmpl-..."``, numbered
in recording order; ``"created": ...``). Those are normalised as each response is recorded, so a re-recording's diff
shows only answers that really changed. Replays never depend on them: hfbridge reads none of
these headers, and chat ids are passed through as opaque strings.

A second source of churn is vcrpy's ``all`` mode itself, which appends the new interactions to
the loaded ones (so a test sees its requests twice) and keeps old interactions nobody sent any
more; :class:`FreshPersister` makes ``all`` start from an empty cassette instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["VOLATILE_HEADERS", "RECORDED_CHAT_ID", "RECORDED_CREATED", "ChatIds", "normalise_response", "FreshPersister",
           "canonical_body", "body_matcher"]

#: response headers that differ between answers to the same request (dropped from recordings)
VOLATILE_HEADERS = frozenset({"date", "x-compute-time", "x-compute-type"})
#: the id and creation time every recorded chat completion gets
RECORDED_CHAT_ID = "chatcmpl-recorded"
RECORDED_CREATED = 0

_CHAT_ID = re.compile(r'("id"\s*:\s*")chatcmpl-[A-Za-z0-9_-]+(")')
_CREATED = re.compile(r'("created"\s*:\s*)\d+')
_TEXT_TYPES = ("application/json", "text/event-stream")


def _header(headers: dict[str, Any], name: str) -> str:
    for key, values in headers.items():
        if key.lower() == name:
            return str(values[0] if isinstance(values, list) and values else values)
    return ""


class ChatIds:
    """Recorded chat ids, one per answer: ``chatcmpl-recorded-1``, ``-2``... in the order the
    answers were recorded (recording is serial), the same for every chunk of one stream.
    Distinct ids matter: frameworks key messages by them (LangGraph's ``add_messages``
    replaces a message whose id it has seen), so one id for every answer would merge an
    agent's turns on replay."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def __call__(self, match: "re.Match[str]") -> str:
        original = match.group(0)
        if original not in self._seen:
            self._seen[original] = f"{match.group(1)}{RECORDED_CHAT_ID}-{len(self._seen) + 1}{match.group(2)}"
        return self._seen[original]


def normalise_response(response: dict[str, Any], ids: "ChatIds | None" = None) -> dict[str, Any]:
    """``response`` (vcrpy's dict) without what changes between identical answers."""
    headers = response.get("headers", {})
    for name in [n for n in headers if n.lower() in VOLATILE_HEADERS]:
        del headers[name]
    body = response.get("body", {})
    raw = body.get("string")
    if not raw or not _header(headers, "content-type").startswith(_TEXT_TYPES):
        return response
    is_bytes = isinstance(raw, bytes)
    try:
        text = raw.decode() if is_bytes else raw
    except UnicodeDecodeError:
        return response
    text = _CREATED.sub(rf"\g<1>{RECORDED_CREATED}", _CHAT_ID.sub(ids if ids is not None else ChatIds(), text))
    body["string"] = text.encode() if is_bytes else text
    for name in [n for n in headers if n.lower() == "content-length"]:
        headers[name] = [str(len(text.encode()))]
    return response


class FreshPersister:
    """Saves like vcrpy's own persister but never loads: a re-recording starts empty.

    (vcrpy is imported only when a cassette is used, like everywhere in the kit.)"""

    @classmethod
    def load_cassette(cls, cassette_path: Any, serializer: Any) -> Any:
        from vcr.persisters.filesystem import CassetteNotFoundError

        raise CassetteNotFoundError()

    @staticmethod
    def save_cassette(cassette_path: Any, cassette_dict: Any, serializer: Any) -> None:
        from vcr.persisters.filesystem import FilesystemPersister

        FilesystemPersister.save_cassette(cassette_path, cassette_dict, serializer)


def _placeholders(messages: list[Any]) -> None:
    """Tool-call ids in a chat body replaced by their order of first appearance, in place."""
    seen: dict[str, str] = {}

    def stand_in(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return seen.setdefault(value, f"tool-call-{len(seen) + 1}")

    for message in messages:
        if not isinstance(message, dict):
            continue
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and "id" in call:
                call["id"] = stand_in(call["id"])
        if "tool_call_id" in message:
            message["tool_call_id"] = stand_in(message["tool_call_id"])


def canonical_body(body: Any) -> Any:
    """A request body as the cassettes compare it: chat bodies with their tool-call ids
    numbered, so a conversation whose example calls a framework ids at random (LangChain's
    ``tool_example_to_messages`` uses uuid4) still finds its recording; anything else as is."""
    if isinstance(body, bytes):
        try:
            body = body.decode()
        except UnicodeDecodeError:
            return body
    if not isinstance(body, str) or '"messages"' not in body:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        return body
    _placeholders(data["messages"])
    return json.dumps(data, sort_keys=True)


def body_matcher(recorded: Any, live: Any) -> None:
    """vcrpy's ``body`` matcher, with :func:`canonical_body` on both sides."""
    assert canonical_body(recorded.body) == canonical_body(live.body)
