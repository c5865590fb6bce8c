"""The fault suite's report: every (fault, surface) outcome, printed as a table at the end of the
run and written to ``fault-report.md`` in pytest's temporary folder (the path is printed too)."""

from __future__ import annotations

from typing import Any

import pytest

from .faults import FAULTS, SURFACES

_OUTCOMES: dict[tuple[str, str], tuple[str, float]] = {}


@pytest.fixture
def record_outcome() -> Any:
    def record(fault: str, surface: str, outcome: str, seconds: float) -> None:
        _OUTCOMES[(fault, surface)] = (outcome, seconds)

    return record


def fault_table() -> str:
    names = [s.name for s in SURFACES]
    lines = ["| fault | " + " | ".join(names) + " | slowest |", "|---" * (len(names) + 2) + "|"]
    for fault in FAULTS:
        cells, slowest = [], 0.0
        for name in names:
            outcome, seconds = _OUTCOMES.get((fault.name, name), ("-", 0.0))
            cells.append(outcome)
            slowest = max(slowest, seconds)
        lines.append(f"| {fault.name} | " + " | ".join(cells) + f" | {slowest:.2f}s |")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not _OUTCOMES:
        return
    table = fault_table()
    path = config._tmp_path_factory.getbasetemp() / "fault-report.md"  # noqa: SLF001
    path.write_text("# Fault suite: outcome of every fault on every surface\n\n" + table + "\n")
    terminalreporter.section("fault -> outcome (tests/faults)")
    terminalreporter.write_line(table)
    terminalreporter.write_line(f"(also written to {path})")
