"""The code examples of the documentation, found where they are written.

* Every fenced ```` ```python ```` block of ``README.md`` and of the docstrings under
  ``src/hfbridge`` (module, class and function docstrings, read with :mod:`ast`, nothing imported).
* Every ``>>>`` example of those docstrings (run as a doctest: printed output is compared).

A block may carry a marker, an HTML comment on the line right above its fence (invisible on
GitHub, and the block stays clean to copy):

* ``<!-- snippet: pytest -->`` - the block is a test module: it is run by pytest in a project of
  its own, recorded against the embedded server, then replayed from its cassette.
* ``<!-- snippet: needs-token -->`` - it calls the hosted API and needs ``HF_TOKEN``: skipped.
* ``<!-- snippet: skip REASON -->`` - not runnable here for REASON (which must be given).

Any other marker is an error, so that a typo cannot quietly skip a block. Unmarked blocks run as
written, each on its own (imports included), with ``http://127.0.0.1:8000`` - what
``hfbridge serve --port 8000`` listens on - pointed at the embedded server.
"""

from __future__ import annotations

import ast
import doctest
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PACKAGE = REPO / "src" / "hfbridge"
#: the local server the examples talk to
DOCS_BASE_URL = "http://127.0.0.1:8000"
KINDS = ("run", "pytest", "needs-token", "skip")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*$")
_MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(?P<kind>[\w-]+)\s*(?P<reason>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    source: str
    where: str  # "README.md:28" / "src/hfbridge/samples.py:17"
    kind: str = "run"
    reason: str = ""

    @property
    def id(self) -> str:
        return self.where

    def code(self, base_url: str) -> str:
        return self.source.replace(DOCS_BASE_URL, base_url)


class MarkerError(ValueError):
    pass


def fenced_blocks(text: str, where: str, first_line: int = 1) -> list[Snippet]:
    """The ```python blocks of ``text`` (Markdown or a docstring) with their markers."""
    lines = text.splitlines()
    out: list[Snippet] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent = fence.group("indent")
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        kind, reason = _marker(lines[start - 1] if start else "", f"{where}:{first_line + start}")
        out.append(Snippet("\n".join(body) + "\n", f"{where}:{first_line + start}", kind, reason))
        i += 1
    return out


def _marker(line: str, where: str) -> tuple[str, str]:
    if "snippet" not in line or "<!--" not in line:
        return "run", ""
    match = _MARKER.match(line)
    if not match or match.group("kind") not in KINDS[1:]:
        raise MarkerError(f"{where}: unknown snippet marker {line.strip()!r}; known: " + ", ".join(KINDS[1:]))
    kind, reason = match.group("kind"), match.group("reason")
    if kind == "skip" and not reason:
        raise MarkerError(f"{where}: '<!-- snippet: skip -->' needs a reason")
    if kind == "needs-token":
        reason = reason or "calls the hosted API: needs HF_TOKEN"
    return kind, reason


def readme_snippets() -> list[Snippet]:
    return fenced_blocks(README.read_text(), "README.md")


@dataclass(frozen=True)
class Docstring:
    text: str
    where: str  # "src/hfbridge/client.py:48"
    name: str  # "hfbridge.client.InferenceClient"
    line: int


def docstrings() -> list[Docstring]:
    """Every module, class and function docstring of the package, without importing it."""
    found: list[Docstring] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(), str(path))
        rel = path.relative_to(REPO).as_posix()
        nodes: list[tuple[str, ast.AST]] = [(module, tree)]
        for node in ast.walk(tree):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                nodes.append((f"{module}.{node.name}", node))
        for name, node in nodes:
            text = ast.get_docstring(node, clean=True)
            if not text:
                continue
            body = getattr(node, "body", [])
            line = body[0].lineno if body else 1  # the docstring's first line
            found.append(Docstring(text, f"{rel}:{line}", name, line))
    return found


def docstring_snippets() -> list[Snippet]:
    out: list[Snippet] = []
    for doc in docstrings():
        rel = doc.where.rsplit(":", 1)[0]
        out.extend(fenced_blocks(doc.text, rel, first_line=doc.line))
    return out


def docstring_doctests(base_url: str | None = None) -> list[tuple[str, doctest.DocTest]]:
    """The ``>>>`` examples of each docstring as a doctest, ``DOCS_BASE_URL`` replaced."""
    parser = doctest.DocTestParser()
    tests = []
    for doc in docstrings():
        if ">>>" not in doc.text:
            continue
        text = doc.text if base_url is None else doc.text.replace(DOCS_BASE_URL, base_url)
        test = parser.get_doctest(text, {"__name__": "__doctest__"}, doc.name, doc.where.rsplit(":", 1)[0], doc.line)
        tests.append((doc.where, test))
    return tests
