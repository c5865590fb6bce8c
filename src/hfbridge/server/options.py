"""Settings dataclasses whose fields are also ``hfbridge serve`` options."""

from __future__ import annotations

from dataclasses import field
from typing import Any

__all__ = ["ServeOptions", "knob"]


def knob(default: Any, help: str) -> Any:
    """A field with the help text of its option."""
    return field(default=default, metadata={"help": help})


class ServeOptions:
    """Names a settings class's options: ``--{PREFIX}{field-name}``. The prefix keeps apart
    options of the same field names in two classes (the encoder and the generation batches)."""

    PREFIX = ""

    @classmethod
    def option(cls, name: str) -> str:
        """The ``hfbridge serve`` option that sets the field ``name``."""
        return "--" + cls.PREFIX + name.replace("_", "-")

    @classmethod
    def dest(cls, name: str) -> str:
        """Where argparse keeps that option's value."""
        return cls.PREFIX.replace("-", "_") + name
