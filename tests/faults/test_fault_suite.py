"""Every fault through every surface, over real sockets: the outcome is the expected one (the
call recovered, or raised the typed error), and no call outlives its deadline by more than
``MARGIN`` seconds. The table of outcomes is printed at the end of the run (see conftest)."""

from __future__ import annotations

import socket
import time

import pytest

from tests.scripted_server import ScriptedServer

from .faults import FAULTS, MARGIN, RECOVERED, SETTINGS, SURFACES, Fault, Surface, script

pytestmark = [pytest.mark.filterwarnings("error::ResourceWarning"),
              pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")]

CASES = [pytest.param(f, s, id=f"{f.name} | {s.name}") for f in FAULTS for s in SURFACES if f.applies_to(s)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _short(outcome: BaseException) -> str:
    return type(outcome).__name__.replace("Error", "").replace("API", "")


@pytest.mark.parametrize(("fault", "surface"), CASES)
def test_fault(fault: Fault, surface: Surface, record_outcome) -> None:
    with ScriptedServer() as server:
        server.on("*", script(fault))
        url = f"http://127.0.0.1:{_closed_port()}" if fault.no_server else server.url
        started = time.monotonic()
        try:
            result = surface.run(url)
            outcome: BaseException | None = None
        except Exception as exc:  # noqa: BLE001 - what the surface raised is the outcome under test
            outcome = exc
        elapsed = time.monotonic() - started
    record_outcome(fault.name, surface.name, "ok" if outcome is None else _short(outcome), elapsed)
    assert elapsed <= SETTINGS["deadline"] + MARGIN, f"took {elapsed:.2f}s, deadline {SETTINGS['deadline']}s"
    if fault.expect == RECOVERED:
        assert outcome is None, f"expected recovery, got {outcome!r}"
        assert result, "recovered with an empty result"
        assert len(server.requests) == fault.times + 1, [r.path for r in server.requests]
    else:
        assert outcome is not None, f"expected {fault.expect}, got the result {result!r}"
        assert isinstance(outcome, fault.expect), f"expected {fault.expect}, got {outcome!r}"
        assert fault.says in str(outcome), str(outcome)
