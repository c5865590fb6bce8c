"""Every code example of the documentation runs as written, against the embedded server.

The README's ```python blocks, the ```python blocks of the package's docstrings and their
``>>>`` examples are found afresh on every run (see :mod:`tests.docs.snippets` for the marker
convention), so a block someone adds is tested without anyone listing it here.
"""

from __future__ import annotations

import doctest
import io
from pathlib import Path
from typing import Any

import pytest

from .snippets import (
    DOCS_BASE_URL,
    MarkerError,
    Snippet,
    docstring_doctests,
    docstring_snippets,
    fenced_blocks,
    readme_snippets,
)

pytest_plugins = ["pytester"]

README_SNIPPETS = readme_snippets()
DOCSTRING_SNIPPETS = docstring_snippets()
DOCTESTS = {where: test for where, test in docstring_doctests()}


def run_snippet(snippet: Snippet, base_url: str, pytester: pytest.Pytester | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if snippet.kind in ("needs-token", "skip"):
        pytest.skip(f"{snippet.where}: {snippet.reason}")
    code = snippet.code(base_url)
    if snippet.kind == "pytest":
        assert pytester is not None
        run_as_test_module(code, base_url, pytester, monkeypatch)
        return
    namespace: dict[str, Any] = {"__name__": "__snippet__"}
    exec(compile(code, snippet.where, "exec"), namespace)


def run_as_test_module(code: str, base_url: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record the module's cassettes against the server, then replay them with CI set."""
    pytester.makepyfile(test_snippet=code)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    monkeypatch.setenv("HFBRIDGE_BASE_URL", base_url)
    monkeypatch.delenv("CI", raising=False)
    recorded = pytester.runpytest("-p", "no:cacheprovider", "--hf-record-mode=once")
    assert recorded.ret == 0 and recorded.parseoutcomes().get("passed", 0) >= 1, recorded.stdout.str()
    assert list((pytester.path / "cassettes").rglob("*.yaml")), "the block recorded no cassette"
    monkeypatch.setenv("CI", "true")
    replayed = pytester.runpytest("-p", "no:cacheprovider")
    assert replayed.ret == 0, replayed.stdout.str()


def test_the_readme_has_its_examples() -> None:
    kinds = [s.kind for s in README_SNIPPETS]
    assert len(README_SNIPPETS) >= 4 and "pytest" in kinds


@pytest.mark.parametrize("snippet", README_SNIPPETS, ids=lambda s: s.id)
def test_readme_block_runs(snippet: Snippet, live_server: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                           tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # a reader runs the examples in a folder of their own (some write files)
    pytester = request.getfixturevalue("pytester") if snippet.kind == "pytest" else None
    run_snippet(snippet, live_server.url, pytester, monkeypatch)


@pytest.mark.parametrize("snippet", DOCSTRING_SNIPPETS, ids=lambda s: s.id)
def test_docstring_block_runs(snippet: Snippet, live_server: Any, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                              tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    pytester = request.getfixturevalue("pytester") if snippet.kind == "pytest" else None
    run_snippet(snippet, live_server.url, pytester, monkeypatch)


@pytest.mark.parametrize("where", sorted(DOCTESTS))
def test_docstring_doctest_runs(where: str, live_server: Any) -> None:
    test = {w: t for w, t in docstring_doctests(live_server.url)}[where]
    assert not any(doctest.SKIP in ex.options for ex in test.examples), (
        f"{where}: doctest examples run; for one that cannot, use a ```python block with a snippet marker")
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=out.write)
    assert result.failed == 0, out.getvalue()
    assert result.attempted > 0


# ---- the extraction itself ---------------------------------------------------------------------

MARKDOWN = f"""# Title

```python
print("plain")
```

<!-- snippet: needs-token -->
```python
InferenceClient().fill_mask("a [MASK]")
```

<!-- snippet: skip needs a GPU -->
```python
pass
```

```bash
echo not python
```

    ```python
    x = "{DOCS_BASE_URL}"
    ```
"""


def test_blocks_markers_and_indentation_are_read() -> None:
    blocks = fenced_blocks(MARKDOWN, "doc.md")
    assert [(b.kind, b.reason) for b in blocks] == [
        ("run", ""), ("needs-token", "calls the hosted API: needs HF_TOKEN"), ("skip", "needs a GPU"), ("run", "")]
    assert blocks[0].source == 'print("plain")\n' and blocks[0].where == "doc.md:3"
    assert blocks[3].code("http://127.0.0.1:1234") == 'x = "http://127.0.0.1:1234"\n'


@pytest.mark.parametrize("marker", ["<!-- snippet: need-token -->", "<!-- snippet: skip -->"])
def test_a_mistyped_or_reasonless_marker_is_an_error(marker: str) -> None:
    with pytest.raises(MarkerError):
        fenced_blocks(f"{marker}\n```python\npass\n```\n", "doc.md")


def test_a_block_added_to_the_readme_is_picked_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test reads the README on every run: no list of blocks to keep up to date."""
    from . import snippets

    readme = tmp_path / "README.md"
    readme.write_text(snippets.README.read_text() + "\n## New section\n\n```python\nprint('new')\n```\n")
    monkeypatch.setattr(snippets, "README", readme)
    assert len(snippets.readme_snippets()) == len(README_SNIPPETS) + 1
