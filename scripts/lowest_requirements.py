"""The requirements of the adapters' test run at the lowest supported versions.

The frameworks' extras (``langchain``, ``llama-index``) and the cassette kit's (``testing``) are
pinned to their lower bounds (``>=X`` becomes ``==X``); everything else resolves as usual, newest
first. Read from pyproject.toml, so a bound is written in one place. Used by
``bash scripts/run.sh lowest``; prints one requirement per line.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

PINNED_EXTRAS = ("langchain", "llama-index", "testing")
#: test-only packages the adapter tests import, taken from the dev extra with their ranges
FROM_DEV = ("pytest-asyncio", "langchain-tests", "langchain", "langgraph")
#: what the lowest langchain-core resolves to otherwise and does not work: langchain 1.2.7 allows
#: langgraph <1.1, whose newest prebuilt agents (1.0.9 to 1.0.13) import
#: ``langgraph.runtime.ExecutionInfo``, which only langgraph 1.1 has (measured: create_agent fails
#: to import with prebuilt 1.0.9 and 1.0.10, imports with 1.0.8)
KNOWN_BROKEN = ("langgraph-prebuilt<1.0.9",)


def lowest(requirement: str) -> str:
    parsed = Requirement(requirement)
    floors = [spec.version for spec in parsed.specifier if spec.operator in (">=", "==", "~=")]
    if not floors:
        sys.exit(f"{requirement!r} has no lower bound to test")
    return f"{parsed.name}=={floors[0]}"


def main() -> None:
    extras = tomllib.loads(Path(__file__).resolve().parents[1].joinpath("pyproject.toml").read_text())["project"]["optional-dependencies"]
    lines = [lowest(r) for extra in PINNED_EXTRAS for r in extras[extra] if not r.startswith("hfbridge")]
    lines += [r for r in extras["dev"] if Requirement(r).name in FROM_DEV]
    lines += KNOWN_BROKEN
    print("\n".join(lines))


if __name__ == "__main__":
    main()
