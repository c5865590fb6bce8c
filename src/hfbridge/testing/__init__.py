"""Record and replay HTTP with vcrpy, the hfbridge way: for this project's tests and for users'.

* :func:`vcr_config` - the one configuration: tokens scrubbed from headers, query strings and
  bodies; requests matched on method, URI and body; compressed bodies decoded; binary bodies
  kept byte for byte.
* :func:`record_mode` - ``HFBRIDGE_RECORD_MODE`` if set, else ``none`` under CI (a missing
  cassette fails instead of reaching the network) and ``once`` elsewhere; ``all`` re-records from
  an empty cassette.
* Recordings are reproducible: what a server makes up per answer (``Date``, ``X-Compute-Time``,
  chat completion ids and times) is normalised (:mod:`hfbridge.testing.determinism`).
* The pytest plugin (:mod:`hfbridge.testing.plugin`) adds the ``hf_cassette`` marker and the
  ``hf_base_url`` fixture on top.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .determinism import FreshPersister, normalise_response

__all__ = [
    "TOKEN_PLACEHOLDER",
    "DEFAULT_REPLAY_BASE_URL",
    "vcr_config",
    "record_mode",
    "scrub",
    "looks_like_token",
    "make_vcr",
    "TESTING_EXTRA_HINT",
    "SERVER_EXTRA_HINT",
]

TOKEN_PLACEHOLDER = "<HF_TOKEN>"
#: where cassettes say the server was; a recording run starts the embedded server here
DEFAULT_REPLAY_BASE_URL = "http://127.0.0.1:8765"

_TOKEN_PATTERN = re.compile(rb"hf_[A-Za-z0-9]{20,}")
_SECRET_HEADERS = ("authorization", "x-api-key", "api-key", "proxy-authorization", "cookie", "set-cookie")
_SECRET_QUERY = ("token", "api_key", "access_token", "key")


def looks_like_token(data: bytes | str) -> bool:
    raw = data.encode() if isinstance(data, str) else data
    return bool(_TOKEN_PATTERN.search(raw))


def scrub(data: Any) -> Any:
    """``data`` with anything shaped like a Hugging Face token replaced by the placeholder."""
    if isinstance(data, bytes):
        return _TOKEN_PATTERN.sub(TOKEN_PLACEHOLDER.encode(), data)
    if isinstance(data, str):
        return _TOKEN_PATTERN.sub(TOKEN_PLACEHOLDER.encode(), data.encode()).decode()
    return data


def _scrub_request(request: Any) -> Any:
    if request.body:
        request.body = scrub(request.body)
    request.uri = scrub(request.uri)
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    body = response.get("body", {})
    if "string" in body and body["string"]:
        body["string"] = scrub(body["string"])
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in _SECRET_HEADERS:
            headers[name] = [TOKEN_PLACEHOLDER]
        else:
            headers[name] = [scrub(v) for v in headers[name]]
    return response


def record_mode() -> str:
    explicit = os.environ.get("HFBRIDGE_RECORD_MODE")
    if explicit:
        return explicit
    return "none" if os.environ.get("CI") else "once"


def vcr_config(mode: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``vcr.VCR(...)`` (also a valid pytest-recording ``vcr_config``)."""
    return {
        "record_mode": mode or record_mode(),
        "match_on": ["method", "uri", "body"],
        "filter_headers": [(name, TOKEN_PLACEHOLDER) for name in _SECRET_HEADERS],
        "filter_query_parameters": [(name, TOKEN_PLACEHOLDER) for name in _SECRET_QUERY],
        "before_record_request": _scrub_request,
        "before_record_response": lambda response: normalise_response(_scrub_response(response)),
        "decode_compressed_response": True,
    }


#: what to install for the cassette kit, and for recording against the embedded server
TESTING_EXTRA_HINT = "pip install 'hfbridge[testing]'"
SERVER_EXTRA_HINT = "pip install 'hfbridge[testing,server]'"


def make_vcr(cassette_dir: str | os.PathLike[str], mode: str | None = None) -> Any:
    try:
        import vcr
    except ImportError as exc:
        raise ImportError(f"hfbridge's cassettes need vcrpy ({exc}): {TESTING_EXTRA_HINT}") from exc

    recorder = vcr.VCR(cassette_library_dir=str(cassette_dir), path_transformer=vcr.VCR.ensure_suffix(".yaml"), **vcr_config(mode))
    if (mode or record_mode()) == "all":  # a re-recording holds exactly what this run sent
        recorder.register_persister(FreshPersister)
    return recorder
