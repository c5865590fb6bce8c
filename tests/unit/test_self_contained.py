"""A fresh clone has everything it needs: no file of the repository reads a folder beside it.

The spec and the hosted API's recorded answers used to be read from a ``shared`` folder next to
the checkout, which a user cloning the repository does not have; they now live in ``spec/`` and
``tests/compat/real-api-responses/``. This test keeps it that way.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: a path to the folder beside the checkout, or a climb out of tests/ past the repository root
OUTSIDE = re.compile(r"\.\./shared|/work/shared|parents\[[3-9]\]|['\"]shared['\"]")
TEXT_SUFFIXES = {".py", ".sh", ".toml", ".cfg", ".ini", ".ipynb", ".md", ".yaml", ".yml", ".txt", ""}


def tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [REPO / name for name in listed.splitlines()]
    return [f for f in files if f.is_file() and f.suffix in TEXT_SUFFIXES and f != Path(__file__).resolve()
            and "cassettes" not in f.parts and "real-api-responses" not in f.parts]


def test_no_tracked_file_reads_a_folder_beside_the_repository() -> None:
    offenders = []
    for path in tracked_text_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "reads outside the repository:\n" + "\n".join(offenders)


def test_the_spec_and_the_recorded_answers_are_in_the_repository() -> None:
    assert (REPO / "spec" / "inference-api.openapi.yaml").is_file()
    assert len(list((REPO / "tests" / "compat" / "real-api-responses").glob("*.yaml"))) == 28
