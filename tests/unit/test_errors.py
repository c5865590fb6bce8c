"""One function maps an HTTP answer to the error tree; errors pickle and never hold the token."""

from __future__ import annotations

import pickle

import pytest

from hfbridge import errors as e
from hfbridge.config import ClientConfig
from hfbridge.protocol import decode_error_message, error_from_response

CONFIG = ClientConfig.resolve(base_url="http://127.0.0.1:1", token="hf_supersecrettoken1234567890")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, e.BadRequestError),
        (422, e.BadRequestError),
        (401, e.AuthenticationError),
        (403, e.PermissionDeniedError),
        (404, e.ModelNotFoundError),
        (410, e.EndpointGoneError),
        (413, e.PayloadTooLargeError),
        (429, e.RateLimitError),
        (500, e.ServerError),
        (502, e.ServerError),
        (503, e.ServerError),
        (504, e.ServerError),
        (418, e.APIStatusError),
    ],
)
def test_status_maps_to_class(status: int, cls: type) -> None:
    error = error_from_response(CONFIG, status, {}, b'{"error": "nope"}', model="org/m")
    assert type(error) is cls
    assert error.status_code == status and error.model == "org/m"
    assert "nope" in str(error) and "org/m" in str(error) and str(status) in str(error)


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, b'{"error": "Input is too long"}', "Input is too long"),
        ({}, b'{"error": ["Error in `inputs.context`: field required"]}', "Error in `inputs.context`: field required"),
        ({}, b'{"errors": [{"message": "first"}, {"message": "second"}]}', "first; second"),
        ({"x-error-message": "from header"}, b"", "from header"),
        ({}, b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        ({}, b'{"detail": "Not Found"}', "Not Found"),
    ],
)
def test_every_known_error_body_shape(headers: dict, body: bytes, message: str) -> None:
    assert decode_error_message(headers, body)[0] == message


def test_loading_503_carries_estimated_time() -> None:
    error = error_from_response(CONFIG, 503, {}, b'{"error": "Model org/m is currently loading", "estimated_time": 20.0}', model="org/m")
    assert isinstance(error, e.ModelLoadingError) and error.estimated_time == 20.0


def test_rate_limit_carries_retry_after_and_request_id() -> None:
    error = error_from_response(CONFIG, 429, {"retry-after": "12", "x-request-id": "abc"}, b'{"error": "slow"}', model=None)
    assert isinstance(error, e.RateLimitError) and error.retry_after == 12.0 and error.request_id == "abc"


def test_old_host_answer_names_the_new_base_url() -> None:
    legacy = ClientConfig.resolve(base_url="https://api-inference.huggingface.co", token=False)
    body = b'{"error": "https://api-inference.huggingface.co is no longer supported. Please use https://router.huggingface.co/hf-inference instead."}'
    for status in (404, 410):
        error = error_from_response(legacy, status, {}, body, model="gpt2")
        assert isinstance(error, e.EndpointGoneError)
        assert "https://router.huggingface.co/hf-inference" in str(error)


def test_token_echoed_by_a_server_is_redacted() -> None:
    body = b'{"error": "bad token hf_supersecrettoken1234567890 given"}'
    error = error_from_response(CONFIG, 401, {}, body, model="m")
    assert "hf_supersecrettoken1234567890" not in str(error)
    assert "hf_supersecrettoken1234567890" not in repr(error)
    assert e.REDACTED in str(error)


@pytest.mark.parametrize(
    "error",
    [
        e.APIConnectionError("reset", url="http://h/x"),
        e.APITimeoutError("slow", url="http://h/x"),
        e.BadRequestError("bad", status_code=400, model="m", request_id="r", body={"error": "bad"}),
        e.RateLimitError("slow", status_code=429, retry_after=3.0, model="m"),
        e.ModelLoadingError("loading", status_code=503, estimated_time=9.0),
        e.ResponseFormatError("odd", task="fill-mask", model="m"),
        e.InvalidInputError("text", "must not be empty"),
    ],
    ids=lambda x: type(x).__name__,
)
def test_every_error_pickles_with_its_context(error: Exception) -> None:
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error) and str(clone) == str(error)
    assert vars(clone) == vars(error)


def test_the_tree() -> None:
    assert issubclass(e.APITimeoutError, e.APIConnectionError)
    assert issubclass(e.APIConnectionError, e.InferenceError)
    for cls in (e.BadRequestError, e.AuthenticationError, e.RateLimitError, e.ModelLoadingError, e.ServerError, e.EndpointGoneError):
        assert issubclass(cls, e.APIStatusError) and issubclass(cls, e.InferenceError)
    assert issubclass(e.ResponseFormatError, e.InferenceError)
    assert issubclass(e.InvalidInputError, ValueError)
