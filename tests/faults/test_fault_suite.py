"""Every fault through every surface, over real sockets: the outcome is the expected one (the
call recovered, or raised the typed error), and no call outlives its deadline by more than
``MARGIN`` seconds. The table of outcomes is printed at the end of the run (see conftest).

One test per fault; its surfaces run at once, each against a fault server of its own (faults
that cost memory run them one after the other)."""

from __future__ import annotations

import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.scripted_server import ScriptedServer

from .faults import FAULTS, MARGIN, RECOVERED, SETTINGS, SURFACES, Fault, Surface, gzip_bomb, script

pytestmark = [pytest.mark.filterwarnings("error::ResourceWarning"),
              pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _short(outcome: BaseException | None) -> str:
    return "ok" if outcome is None else type(outcome).__name__.replace("Error", "").replace("API", "")


def _try(fault: Fault, surface: Surface) -> tuple[Any, BaseException | None, float, int]:
    """(result, error, seconds, requests the server saw) of one surface under one fault."""
    with ScriptedServer() as server:
        server.on("*", script(fault))
        url = f"http://127.0.0.1:{_closed_port()}" if fault.no_server else server.url
        started = time.monotonic()
        try:
            result, error = surface.run(url), None
        except Exception as exc:  # noqa: BLE001 - what the surface raised is the outcome under test
            result, error = None, exc
        return result, error, time.monotonic() - started, len(server.requests)


def _problems(fault: Fault, result: Any, error: BaseException | None, seconds: float, requests: int) -> list[str]:
    found = []
    if seconds > SETTINGS["deadline"] + MARGIN:
        found.append(f"took {seconds:.2f}s with a {SETTINGS['deadline']}s deadline")
    if fault.expect == RECOVERED:
        if error is not None:
            found.append(f"expected recovery, got {error!r}")
        elif not result:
            found.append("recovered with an empty result")
        elif requests != fault.times + 1:
            found.append(f"expected {fault.times + 1} requests, the server saw {requests}")
    elif error is None:
        found.append(f"expected {fault.expect}, got the result {result!r}")
    elif not isinstance(error, fault.expect):
        found.append(f"expected {fault.expect}, got {error!r}")
    elif not re.search(fault.says, str(error)):
        found.append(f"the message does not say {fault.says!r}: {error}")
    return found


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_on_every_surface(fault: Fault, record_outcome: Any) -> None:
    surfaces = [s for s in SURFACES if fault.applies_to(s)]
    gzip_bomb()  # built once, before any clock runs
    with ThreadPoolExecutor(max_workers=1 if fault.serial else len(surfaces)) as pool:
        outcomes = list(pool.map(lambda s: _try(fault, s), surfaces))
    failures = []
    for surface, (result, error, seconds, requests) in zip(surfaces, outcomes):
        record_outcome(fault.name, surface.name, _short(error), seconds)
        failures += [f"{surface.name}: {problem}" for problem in _problems(fault, result, error, seconds, requests)]
    assert not failures, "\n".join(failures)
