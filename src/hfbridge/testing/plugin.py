"""pytest plugin (entry point ``pytest11``): record and replay your own chains' HTTP.

<!-- snippet: pytest -->
```python
import pytest
from hfbridge.langchain import HFInferenceLLM

@pytest.mark.hf_cassette
def test_my_chain(hf_base_url):
    llm = HFInferenceLLM(base_url=hf_base_url, max_new_tokens=8)
    assert llm.invoke("The capital of France is")
```

* ``@pytest.mark.hf_cassette`` (optionally ``hf_cassette("name")``) wraps the test in a vcrpy
  cassette at ``<rootdir>/cassettes/<test module path, without tests/>/<test name>.yaml`` (ini option
  ``hf_cassette_dir`` moves the root), with :func:`hfbridge.testing.vcr_config`.
* ``--hf-record-mode`` (or ``HFBRIDGE_RECORD_MODE``): ``none`` replays only (the default under
  CI: a missing cassette fails), ``once`` records what is missing (the default elsewhere),
  ``all`` re-records.
* ``hf_base_url``: ``HFBRIDGE_BASE_URL`` if set (record against that server, e.g. the hosted API
  with ``HF_TOKEN``), else ``http://127.0.0.1:8765``; when a test records there, the fixture
  starts ``hfbridge serve`` in-process on that port.
* Install: ``hfbridge[testing]`` (vcrpy) to replay and to record against a running server;
  ``hfbridge[testing,server]`` to record against the embedded one. A missing piece fails the
  test with the command that installs it.

Nothing is imported from vcrpy or the server until a test uses them, so installing hfbridge
never slows down or breaks an unrelated test suite.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from .._concurrency import RECORDING_SERIALLY
from . import DEFAULT_REPLAY_BASE_URL, SERVER_EXTRA_HINT, make_vcr, record_mode


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hfbridge")
    group.addoption("--hf-record-mode", default=None, choices=["none", "once", "new_episodes", "all"],
                    help="hfbridge cassettes: none (replay only), once, new_episodes, all (re-record)")
    parser.addini("hf_cassette_dir", "root folder of hfbridge cassettes (default: <rootdir>/cassettes)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hf_cassette(name=None): record/replay this test's HTTP with hfbridge's vcr configuration")


def _mode(config: pytest.Config) -> str:
    return config.getoption("--hf-record-mode") or record_mode()


def _cassette_root(config: pytest.Config) -> Path:
    configured = config.getini("hf_cassette_dir")
    return Path(configured) if configured else Path(config.rootpath) / "cassettes"


class _RecordingServer:
    """Starts the embedded server only when some test actually records against the default URL."""

    def __init__(self) -> None:
        self.server: Any = None

    def ensure(self, base_url: str) -> None:
        if self.server is not None or os.environ.get("HFBRIDGE_BASE_URL"):
            return
        from urllib.parse import urlsplit

        try:
            from ..server.runner import EmbeddedServer
        except ImportError as exc:
            missing = str(exc)
        else:
            missing = ""
        if missing:
            pytest.fail(f"recording against the embedded server needs hfbridge's server extra ({missing}): "
                        f"{SERVER_EXTRA_HINT}; or record against a running server with HFBRIDGE_BASE_URL", pytrace=False)

        parts = urlsplit(base_url)
        self.server = EmbeddedServer(host=parts.hostname or "127.0.0.1", port=parts.port or 8765).start()
        # Load every model first, so recordings hold answers rather than "currently loading" 503s.
        self.server.wait_until_loaded([entry.model_id for entry in self.server.settings.registry])

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.fixture(scope="session")
def _hf_recording_server() -> Iterator[_RecordingServer]:
    holder = _RecordingServer()
    yield holder
    holder.stop()


@pytest.fixture(scope="session")
def hf_base_url() -> str:
    """The server cassettes were (or will be) recorded against."""
    return os.environ.get("HFBRIDGE_BASE_URL", DEFAULT_REPLAY_BASE_URL)


@pytest.fixture
def hf_recording(request: pytest.FixtureRequest) -> bool:
    """Whether this test's cassette is being recorded now (a test that needs a special server to
    record against, e.g. one that rate-limits, starts it only then)."""
    mode = _mode(request.config)
    path: Path = request.getfixturevalue("hf_cassette_path")
    return mode in ("all", "new_episodes") or (mode == "once" and not path.exists())


@pytest.fixture
def hf_cassette_path(request: pytest.FixtureRequest) -> Path:
    marker = request.node.get_closest_marker("hf_cassette")
    name = marker.args[0] if marker and marker.args else None
    if name is None:
        name = request.node.name if request.cls is None else f"{request.cls.__name__}.{request.node.name}"
    safe = re.sub(r"[^A-Za-z0-9_.\-]+", "-", name).strip("-")
    module = Path(str(request.node.fspath)).with_suffix("")
    try:
        parts = list(module.relative_to(request.config.rootpath).parts)
    except ValueError:  # a test file outside the rootdir
        parts = [module.name]
    if len(parts) > 1 and parts[0] in ("tests", "test"):
        parts = parts[1:]
    return _cassette_root(request.config).joinpath(*parts) / f"{safe}.yaml"


@pytest.fixture(autouse=True)
def hf_cassette(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The active vcrpy cassette of an ``hf_cassette``-marked test (None for other tests)."""
    marker = request.node.get_closest_marker("hf_cassette")
    if marker is None:
        yield None
        return
    mode = _mode(request.config)
    path: Path = request.getfixturevalue("hf_cassette_path")
    records = request.getfixturevalue("hf_recording")
    try:
        recorder = make_vcr(path.parent, mode)
    except ImportError as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:
        pytest.fail(missing, pytrace=False)
    if records:
        request.getfixturevalue("_hf_recording_server").ensure(request.getfixturevalue("hf_base_url"))
    # one exchange at a time under a cassette, replaying too: vcrpy's bookkeeping of what was
    # played is not thread-safe either (a CI run counted 2 plays for the 4 concurrent batches
    # of one LlamaIndex call, and the test that checks every recording was played failed)
    RECORDING_SERIALLY.set()
    try:
        with recorder.use_cassette(path.name) as cassette:
            yield cassette
    finally:
        RECORDING_SERIALLY.clear()
