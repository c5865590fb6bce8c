"""Checks on what the user passed, run before anything is sent.

Each helper names the caller's own argument in its error (``text``, ``candidate_labels``,
``parameters.top_k``), so the message points at the line the user has to change.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

from pydantic import BaseModel, ValidationError

from .errors import InvalidInputError
from .schemas import CHAT_MESSAGE

__all__ = ["field_path", "first_problem", "require_text", "require_texts", "require_labels", "require_model_id", "parameters", "chat_messages", "require_table"]

_UNION_TAG = re.compile(r"^(str|int|float|bool|bytes|list|dict|tuple|set|none|literal|function-\w+|tagged-union)(\[.*\])?$")
#: discriminator values pydantic puts in an error's location (``messages.0.user.content``)
_TAGS = frozenset({"system", "developer", "user", "assistant", "tool", "text", "image_url",
                   "json_object", "json_schema", "json", "regex"})
_TAGGED_FIELDS = frozenset({"response_format", "grammar", "content", "tool_choice"})


def _is_model_name(part: str) -> bool:
    from . import schemas

    return part[:1].isupper() and isinstance(getattr(schemas, part, None), type)


def field_path(loc: Sequence[Any]) -> str:
    """A pydantic error location as the caller's dotted path, without union-member tags
    (``("inputs", "str")`` is just ``inputs``; ``("messages", 0, "tool", "tool_call_id")`` is
    ``messages.0.tool_call_id``)."""
    out: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, str):
            if _UNION_TAG.match(part) or _is_model_name(part):
                continue
            previous = loc[i - 1] if i else None
            first_of_many = i == 0 and len(loc) > 1  # a union validated on its own
            if part in _TAGS and (first_of_many or isinstance(previous, int) or previous in _TAGGED_FIELDS):
                continue
        out.append(str(part))
    return ".".join(out)


def first_problem(exc: ValidationError) -> tuple[str, str]:
    """(field path, message) of a validation error's first problem. A validator that checks
    several fields at once raises :class:`~hfbridge.schemas.FieldProblem` to name the one."""
    from .schemas._base import FieldProblem

    # A union reports one error per member; the deepest location is the member the input meant
    # (``content`` as a list of parts, not as the string it is not).
    errors = exc.errors()
    first = max(errors, key=lambda error: len(error["loc"]))
    loc, message = tuple(first["loc"]), first["msg"]
    error = (first.get("ctx") or {}).get("error")
    if isinstance(error, FieldProblem):
        loc, message = loc + tuple(error.field.split(".")), error.problem
    elif first["type"] in ("union_tag_invalid", "union_tag_not_found"):  # a wrong or missing role/type
        ctx = first.get("ctx") or {}
        loc = loc + (str(ctx.get("discriminator", "type")).strip("'\""),)
        given = f", got {ctx['tag']!r}" if "tag" in ctx else ""
        message = f"must be one of {ctx.get('expected_tags', '?')}{given}"
    where = field_path(loc)
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return where, message


#: ``org/name``, ``name``, or the router's ``org/name:provider``
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)?(:[A-Za-z0-9][A-Za-z0-9._\-]*)?$")


def require_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(field, f"must be a string, got {type(value).__name__}")
    if not value or value.isspace():
        raise InvalidInputError(field, "must not be empty")
    return value


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not value.isspace()


def require_texts(value: Any, field: str) -> str | list[str]:
    """A single text or a non-empty list of texts (each non-empty), order kept."""
    if isinstance(value, str):
        return require_text(value, field)
    if isinstance(value, (list, tuple)):
        if not value:
            raise InvalidInputError(field, "must contain at least one text")
        if not all(map(_is_text, value)):  # the field name is only built for the one at fault
            for i, item in enumerate(value):
                require_text(item, f"{field}[{i}]")
        return list(value)
    raise InvalidInputError(field, f"must be a string or a list of strings, got {type(value).__name__}")


def require_labels(value: Any, field: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInputError(field, "must be a list of strings")
    if not value:
        raise InvalidInputError(field, "must contain at least one label")
    labels = [require_text(item, f"{field}[{i}]") for i, item in enumerate(value)]
    if len(set(labels)) != len(labels):
        raise InvalidInputError(field, "must not repeat a label")
    return labels


def require_model_id(value: Any, field: str = "model") -> str:
    if not isinstance(value, str) or not _MODEL_ID.match(value) or ".." in value:
        raise InvalidInputError(
            field, f"must be a model id such as 'org/name' or 'name', got {value!r}"
        )
    return value


def require_table(value: Any, field: str = "table") -> dict[str, list[str]]:
    if not isinstance(value, Mapping) or not value:
        raise InvalidInputError(field, "must be a non-empty mapping {column: [cells]}")
    table: dict[str, list[str]] = {}
    lengths = set()
    for column, cells in value.items():
        if not isinstance(column, str) or isinstance(cells, str) or not isinstance(cells, Iterable):
            raise InvalidInputError(f"{field}[{column!r}]", "each column must map a name to a list of cells")
        table[column] = [str(cell) for cell in cells]
        lengths.add(len(table[column]))
    if len(lengths) != 1:
        raise InvalidInputError(field, "all columns must have the same number of cells")
    return table


def parameters(model: type[BaseModel] | None, field: str = "parameters", **values: Any) -> dict[str, Any]:
    """Validate task parameters against the shared request model; drop the ones left as None."""
    given = {k: v for k, v in values.items() if v is not None}
    if model is None or not given:
        return given
    try:
        validated = model.model_validate(given)
    except ValidationError as exc:
        where, message = first_problem(exc)
        where = where or "?"
        raise InvalidInputError(f"{field}.{where}" if field else where, message) from None
    return validated.model_dump(exclude_none=True, by_alias=True)


def chat_messages(value: Any, field: str = "messages") -> list[dict[str, Any]]:
    """Messages as OpenAI-shaped dicts; a bare string is one user message, a ``(role,
    content)`` pair one message. Every role is accepted (system, user, assistant with
    ``tool_calls``, tool with ``tool_call_id``); content may be a string or a list of parts."""
    if isinstance(value, str):
        value = [{"role": "user", "content": require_text(value, field)}]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise InvalidInputError(field, "must be a non-empty list of {'role', 'content'} messages")
    out = []
    for i, message in enumerate(value):
        if isinstance(message, BaseModel):
            message = message.model_dump(exclude_none=True, by_alias=True)
        if isinstance(message, (tuple, list)) and len(message) == 2:
            message = {"role": message[0], "content": message[1]}
        try:
            checked = CHAT_MESSAGE.validate_python(message)
        except ValidationError as exc:
            where, problem = first_problem(exc)
            raise InvalidInputError(f"{field}[{i}].{where}".rstrip("."), problem) from None
        out.append(checked.model_dump(exclude_none=True, by_alias=True))
    return out
