"""Record and replay HTTP with vcrpy, the hfbridge way: for this project's tests and for users'.

* :func:`vcr_config` - the one configuration: tokens scrubbed from headers, query strings and
  bodies (the actual values: every token the recorded requests sent or the environment holds,
  whatever its shape, plus anything shaped like a Hugging Face token); requests matched on
  method, URI and body; compressed bodies decoded; binary bodies kept byte for byte.
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
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlsplit

from .determinism import ChatIds, FreshPersister, body_matcher, normalise_response

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
_ENV_TOKENS = ("HF_TOKEN", "HUGGINGFACEHUB_API_TOKEN")
#: shorter secrets are still dropped from headers and query strings, but not searched for in
#: bodies, where so short a string would match by chance and corrupt the recording
MIN_SCRUBBED_LENGTH = 8


def looks_like_token(data: bytes | str) -> bool:
    raw = data.encode() if isinstance(data, str) else data
    return bool(_TOKEN_PATTERN.search(raw))


def _replace(data: Any, secrets: Iterable[str]) -> Any:
    if isinstance(data, str):
        return _replace(data.encode(), secrets).decode()
    if not isinstance(data, bytes):
        return data
    data = _TOKEN_PATTERN.sub(TOKEN_PLACEHOLDER.encode(), data)
    for secret in secrets:
        data = data.replace(secret.encode(), TOKEN_PLACEHOLDER.encode())
    return data


def scrub(data: Any) -> Any:
    """``data`` with anything shaped like a Hugging Face token, and the tokens of the
    environment, replaced by the placeholder."""
    return _replace(data, _environment_secrets())


def _environment_secrets() -> list[str]:
    values = [os.environ.get(name, "").strip() for name in _ENV_TOKENS]
    return [v for v in values if len(v) >= MIN_SCRUBBED_LENGTH]


def _credential(value: str) -> str:
    """The secret part of a header value: ``Bearer X`` / ``Basic X`` -> ``X``."""
    scheme, _, rest = value.strip().partition(" ")
    return rest.strip() if rest and scheme.isalpha() else value.strip()


class _Scrubber:
    """vcrpy hooks sharing what they learn: every credential a recorded request carried is
    remembered and scrubbed from everything recorded after it (a server may echo it back)."""

    def __init__(self) -> None:
        self.secrets: set[str] = set(_environment_secrets())

    def _learn(self, value: str) -> None:
        secret = _credential(value)
        if len(secret) >= MIN_SCRUBBED_LENGTH and TOKEN_PLACEHOLDER not in secret:
            self.secrets.add(secret)

    def _ordered(self) -> list[str]:
        return sorted(self.secrets, key=len, reverse=True)  # a token containing another goes first

    def request(self, request: Any) -> Any:
        from vcr.filters import replace_headers, replace_query_parameters

        for name, value in list(request.headers.items()):
            if name.lower() in _SECRET_HEADERS and name.lower() not in ("cookie", "set-cookie"):
                self._learn(str(value))
        for name, value in parse_qsl(urlsplit(request.uri).query):
            if name.lower() in _SECRET_QUERY:
                self._learn(value)
        request = replace_headers(request, [(name, TOKEN_PLACEHOLDER) for name in _SECRET_HEADERS])
        request = replace_query_parameters(request, [(name, TOKEN_PLACEHOLDER) for name in _SECRET_QUERY])
        secrets = self._ordered()
        if request.body:
            request.body = _replace(request.body, secrets)
        request.uri = _replace(request.uri, secrets)
        return request

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        secrets = self._ordered()
        body = response.get("body", {})
        if "string" in body and body["string"]:
            body["string"] = _replace(body["string"], secrets)
        headers = response.get("headers", {})
        for name in list(headers):
            if name.lower() in _SECRET_HEADERS:
                headers[name] = [TOKEN_PLACEHOLDER]
            else:
                headers[name] = [_replace(v, secrets) for v in headers[name]]
        return response


def record_mode() -> str:
    explicit = os.environ.get("HFBRIDGE_RECORD_MODE")
    if explicit:
        return explicit
    return "none" if os.environ.get("CI") else "once"


def vcr_config(mode: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``vcr.VCR(...)`` (also a valid pytest-recording ``vcr_config``)."""
    scrubber = _Scrubber()  # the header and query filters run inside it, after it learns the values
    chat_ids = ChatIds()
    return {
        "record_mode": mode or record_mode(),
        "match_on": ["method", "uri", "body"],
        "before_record_request": scrubber.request,
        "before_record_response": lambda response: normalise_response(scrubber.response(response), chat_ids),
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

    config = vcr_config(mode)
    config["match_on"] = ["method", "uri", "hf_body"]
    recorder = vcr.VCR(cassette_library_dir=str(cassette_dir), path_transformer=vcr.VCR.ensure_suffix(".yaml"), **config)
    # chat bodies compare with their tool-call ids numbered (frameworks make some up at random)
    recorder.register_matcher("hf_body", body_matcher)
    if (mode or record_mode()) == "all":  # a re-recording holds exactly what this run sent
        recorder.register_persister(FreshPersister)
    return recorder
