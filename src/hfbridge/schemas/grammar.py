"""Constraints on generated text: a JSON schema or a regular expression.

TGI's ``grammar`` parameter of text generation is ``{"type": "json", "value": <schema>}`` or
``{"type": "regex", "value": <pattern>}`` (``json_object`` is TGI's alias of ``json``). The chat
``response_format`` reuses the JSON form, so one model describes both and the server compiles
both with the same code.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator

from ._base import _Request

__all__ = ["JSONGrammar", "RegexGrammar", "Grammar", "check_json_schema"]


def check_json_schema(schema: Any, *, require_object: bool = False) -> dict[str, Any]:
    """A light structural check of a JSON schema, enough to name what is wrong before sending.

    It does not validate the schema against the meta-schema (that is the server's job and costs
    a dependency); it catches the mistakes people make: a non-object, a ``type`` that is not a
    JSON type, ``properties`` that is not a mapping of schemas, ``required`` naming no property.
    """
    if not isinstance(schema, dict):
        raise ValueError(f"must be a JSON schema object (a dict), got {type(schema).__name__}")
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    allowed = {"object", "array", "string", "number", "integer", "boolean", "null"}
    for k in kinds:
        if k not in allowed:
            raise ValueError(f"'type' must be one of {sorted(allowed)}, got {k!r}")
    if require_object and kinds and "object" not in kinds:
        raise ValueError(f"must describe an object ('type': 'object'), got 'type': {kind!r}")
    properties = schema.get("properties")
    if properties is not None:
        if not isinstance(properties, dict) or not all(isinstance(v, (dict, bool)) for v in properties.values()):
            raise ValueError("'properties' must map each property name to a schema")
    required = schema.get("required")
    if required is not None:
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise ValueError("'required' must be a list of property names")
        missing = [r for r in required if properties is not None and r not in properties]
        if missing:
            raise ValueError(f"'required' names {missing}, which 'properties' does not define")
    return schema


class JSONGrammar(_Request):
    type: Literal["json", "json_object"]
    value: dict[str, Any]

    @field_validator("value")
    @classmethod
    def _schema(cls, value: Any) -> dict[str, Any]:
        return check_json_schema(value)


class RegexGrammar(_Request):
    type: Literal["regex"]
    value: str = Field(min_length=1)

    @field_validator("value")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


Grammar = Annotated[Union[JSONGrammar, RegexGrammar], Field(discriminator="type")]
