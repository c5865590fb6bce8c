"""A client whose "transport" returns the request it would send: the pure half, tested alone."""

from __future__ import annotations

from typing import Any

from hfbridge._base import TaskMethods
from hfbridge.config import ClientConfig
from hfbridge.protocol import Call, build_request


class CaptureClient(TaskMethods):
    def __init__(self, **settings: Any) -> None:
        self._config = ClientConfig.resolve(**settings)
        self.calls: list[Call] = []

    def _execute(self, call: Call) -> Any:
        self.calls.append(call)
        return build_request(self._config, call)

    _stream = _execute
