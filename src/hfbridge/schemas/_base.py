"""The two base classes every body model derives from, and why they differ.

Requests are strict (``extra="forbid"``): a misspelt parameter is an error naming it, never a
silently ignored value. Responses are lenient (``extra="allow"``): servers add fields over time
and a client should not break on them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


class FieldProblem(ValueError):
    """Raised by a model validator that checks several fields at once, to say which one is
    wrong (pydantic would report the model itself); see ``validation.first_problem``."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
