"""Every request is bounded by the server's limits: over a cap the answer is a 400 naming the
field, the cap and the option that raises it, before any model runs; at the cap it is served.

The server here runs with :data:`~tests.server.conftest.SMALL_LIMITS`, so each bound is reached by
a cheap request."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

import numpy as np
import pytest
import requests
import soundfile

from hfbridge.server.limits import Limits

from .conftest import SMALL_LIMITS

WAIT = {"X-Wait-For-Model": "true"}
CAP = SMALL_LIMITS["max_new_tokens"]
TOO_MANY = ["a", "b", "c", "d", "e"]  # max_inputs + 1


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and which holds no pixels at all: only a
    check that reads the header (and nothing more) can say how large it is."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def flac_seconds(seconds: float, rate: int = 16_000, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros((int(seconds * rate), channels), dtype="float32"), rate, format="FLAC")
    return buffer.getvalue()


#: (path, JSON body, the field the 400 must name, the option it must name)
OVER_CAP: list[tuple[str, dict[str, Any], str, str]] = [
    ("/models/hfbridge/tiny-text-generation", {"inputs": "x", "parameters": {"max_new_tokens": CAP + 1}}, "parameters.max_new_tokens", "max_new_tokens"),
    ("/models/hfbridge/tiny-text-generation", {"inputs": "x", "parameters": {"max_new_tokens": 1_000_000}}, "parameters.max_new_tokens", "max_new_tokens"),
    ("/models/hfbridge/tiny-text-generation", {"inputs": "x", "parameters": {"stop": ["a", "b", "c"]}}, "parameters.stop", "max_stop_sequences"),
    ("/models/hfbridge/tiny-text-generation/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": CAP + 1}, "max_tokens", "max_new_tokens"),
    ("/v1/chat/completions", {"model": "hfbridge/tiny-text-generation", "messages": [{"role": "user", "content": "hi"}], "stop": ["a", "b", "c"]}, "stop", "max_stop_sequences"),
    ("/models/hfbridge/tiny-text-generation/conversational", {"inputs": "hi", "parameters": {"max_tokens": CAP + 1}}, "parameters.max_tokens", "max_new_tokens"),
    ("/models/hfbridge/tiny-summarization", {"inputs": "x", "parameters": {"max_length": CAP + 1}}, "parameters.max_length", "max_new_tokens"),
    ("/models/hfbridge/tiny-summarization", {"inputs": "x", "parameters": {"min_length": CAP + 1, "max_length": CAP}}, "parameters.min_length", "max_new_tokens"),
    ("/models/hfbridge/tiny-translation", {"inputs": "x", "parameters": {"max_length": CAP + 1}}, "parameters.max_length", "max_new_tokens"),
    # the report's stall: a million new tokens on a seq2seq model
    ("/models/hfbridge/tiny-text2text-generation", {"inputs": "x", "parameters": {"max_new_tokens": 1_000_000}}, "parameters.max_new_tokens", "max_new_tokens"),
    ("/models/hfbridge/tiny-text2text-generation", {"inputs": "x", "parameters": {"max_length": CAP + 1}}, "parameters.max_length", "max_new_tokens"),
    ("/models/hfbridge/tiny-image-to-text", {"inputs": "aGVsbG8=", "parameters": {"max_new_tokens": CAP + 1}}, "parameters.max_new_tokens", "max_new_tokens"),
    ("/pipeline/feature-extraction", {"inputs": TOO_MANY}, "inputs", "max_inputs"),
    ("/pipeline/sentence-similarity", {"inputs": {"source_sentence": "a", "sentences": TOO_MANY}}, "inputs.sentences", "max_inputs"),
    ("/models/hfbridge/tiny-zero-shot-classification", {"inputs": "x", "parameters": {"candidate_labels": TOO_MANY}}, "parameters.candidate_labels", "max_inputs"),
    ("/models/hfbridge/tiny-fill-mask", {"inputs": "a [MASK]", "parameters": {"targets": TOO_MANY}}, "parameters.targets", "max_inputs"),
    ("/models/hfbridge/tiny-text-to-speech", {"inputs": "a" * (SMALL_LIMITS["max_speech_chars"] + 1)}, "inputs", "max_speech_chars"),
    ("/models/hfbridge/tiny-text-to-image", {"inputs": "a cat", "parameters": {"width": 72}}, "parameters.width", "max_image_side"),
    ("/models/hfbridge/tiny-text-to-image", {"inputs": "a cat", "parameters": {"height": 128}}, "parameters.height", "max_image_side"),
    ("/models/hfbridge/tiny-text-to-image", {"inputs": "a cat", "parameters": {"num_inference_steps": 4}}, "parameters.num_inference_steps", "max_inference_steps"),
]


@pytest.mark.parametrize(("path", "body", "field", "option"), OVER_CAP, ids=[f"{c[3]}:{c[2]}" for c in OVER_CAP])
def test_over_a_cap_is_400_naming_the_field_and_the_option(limited_server: Any, path: str, body: dict, field: str, option: str) -> None:
    response = requests.post(limited_server.url + path, json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert f"Error in `{field}`" in error and Limits.option(option) in error, error
    assert str(SMALL_LIMITS[option]) in error  # the cap itself


def test_the_caps_are_checked_before_any_model_loads(limited_server: Any) -> None:
    """A refused request must not start a load (and so cost nothing): the model stays unloaded."""
    model = "hfbridge/tiny-text2text-generation"
    state = limited_server.models.state(model).value
    body = {"inputs": "x", "parameters": {"max_new_tokens": 1_000_000}}
    assert requests.post(f"{limited_server.url}/models/{model}", json=body, headers=WAIT, timeout=30).status_code == 400
    assert limited_server.models.state(model).value == state


def test_images_are_bounded_in_pixels_from_their_header(limited_server: Any, sample_image: bytes) -> None:
    url = f"{limited_server.url}/models/hfbridge/tiny-image-classification"
    huge = png_header(9400, 9400)
    assert len(huge) < 100  # the report's 251 KiB PNG, without even its pixels
    for send in ({"data": huge, "headers": {"Content-Type": "image/png", **WAIT}},
                 {"json": {"inputs": base64.b64encode(huge).decode()}, "headers": WAIT}):
        response = requests.post(url, timeout=30, **send)
        assert response.status_code == 400
        error = response.json()["error"]
        assert "Error in `inputs`" in error and "9400x9400" in error and "--max-image-pixels" in error
    fits = requests.post(url, data=sample_image, headers={"Content-Type": "image/png", **WAIT}, timeout=120)
    assert fits.status_code == 200 and fits.json()[0]["label"]


def test_audio_is_bounded_in_seconds(limited_server: Any, sample_speech: bytes) -> None:
    for task in ("automatic-speech-recognition", "audio-classification"):
        url = f"{limited_server.url}/pipeline/{task}"
        long = requests.post(url, data=flac_seconds(SMALL_LIMITS["max_audio_seconds"] + 1), headers={"Content-Type": "audio/flac"}, timeout=30)
        assert long.status_code == 400
        assert "Error in `inputs`" in long.json()["error"] and "--max-audio-seconds" in long.json()["error"]
    fits = requests.post(f"{limited_server.url}/pipeline/automatic-speech-recognition", data=sample_speech,
                         headers={"Content-Type": "audio/flac", **WAIT}, timeout=120)
    assert fits.status_code == 200 and "universe" in fits.json()["text"].lower()


def test_many_channels_at_a_high_rate_are_bounded_in_samples(limited_server: Any) -> None:
    """4 s (under the 5 s cap) of 8 channels at 192 kHz would decode to 6 million samples."""
    data = flac_seconds(4.0, rate=192_000, channels=8)
    response = requests.post(f"{limited_server.url}/pipeline/audio-classification", data=data, headers={"Content-Type": "audio/flac"}, timeout=30)
    assert response.status_code == 400 and "48 kHz stereo" in response.json()["error"]


def test_requests_at_the_caps_are_served(limited_server: Any) -> None:
    url = limited_server.url
    speech = requests.post(f"{url}/models/hfbridge/tiny-text-to-speech", json={"inputs": "a" * SMALL_LIMITS["max_speech_chars"]}, headers=WAIT, timeout=120)
    assert speech.status_code == 200 and speech.headers["content-type"] == "audio/flac"
    vectors = requests.post(f"{url}/pipeline/feature-extraction", json={"inputs": TOO_MANY[:-1]}, headers=WAIT, timeout=120)
    assert vectors.status_code == 200 and len(vectors.json()) == SMALL_LIMITS["max_inputs"]
    body = {"inputs": "Once upon a time", "parameters": {"max_new_tokens": CAP, "details": True, "stop": ["x", "y"]}}
    text = requests.post(f"{url}/models/hfbridge/tiny-text-generation", json=body, headers=WAIT, timeout=120)
    assert text.status_code == 200 and text.json()[0]["details"]["generated_tokens"] <= CAP
    image = requests.post(f"{url}/models/hfbridge/tiny-text-to-image", json={"inputs": "a cat", "parameters": {"width": 64, "height": 64, "num_inference_steps": 3}},
                          headers=WAIT, timeout=300)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


def test_limits_refuse_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="max_new_tokens"):
        Limits(max_new_tokens=0)
    with pytest.raises(ValueError, match="body_timeout"):
        Limits(body_timeout=-1.0)
    assert Limits.option("max_image_pixels") == "--max-image-pixels"
