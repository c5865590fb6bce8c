"""Bad input is the caller's error (4xx naming the field), never the server's (5xx); a real
internal error is a 500 that tells the client an incident id, not the exception."""

from __future__ import annotations

import io
import json
import logging
import random
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

WAIT = {"X-Wait-For-Model": "true"}
IMAGE_TASKS = ("image-classification", "object-detection", "image-segmentation", "image-to-text")
#: magic numbers that send Pillow down each decoder's path before the garbage begins
MAGIC = (b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff", b"BM", b"RIFF\0\0\0\0WEBP", b"II*\x00", b"MM\x00*", b"\x00\x00\x01\x00", b"P6\n")


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    pixels = (np.random.default_rng(0).random((height, width, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _post_image(server: Any, task: str, data: bytes) -> requests.Response:
    return requests.post(f"{server.url}/models/hfbridge/tiny-{task}", data=data, headers={"Content-Type": "application/octet-stream", **WAIT}, timeout=120)


@pytest.mark.parametrize("task", IMAGE_TASKS)
def test_garbage_image_bytes_of_odd_sizes_are_400(default_server: Any, task: str, sample_image: bytes) -> None:
    rng = random.Random(task)
    bodies = [magic + rng.randbytes(size) for size in (1, 2, 3, 7, 16, 17, 63, 255, 4097) for magic in MAGIC]
    bodies += [sample_image[:size] for size in (8, 33, 100, 1000, len(sample_image) // 2)]  # a real PNG cut short
    for body in bodies:
        response = _post_image(default_server, task, body)
        assert response.status_code == 400, (task, body[:16], len(body), response.status_code, response.text)
        assert "Error in `inputs`" in response.json()["error"]


@pytest.mark.parametrize("size", [(3000, 1), (1, 3000), (1, 1), (10_000, 2)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_images_of_odd_dimensions_are_answered_or_400(default_server: Any, size: tuple[int, int]) -> None:
    """A 3000x1 strip used to crash YOLOS's resize (a side of 0 pixels) with a 500."""
    data = _png(*size)
    for task in IMAGE_TASKS:
        response = _post_image(default_server, task, data)
        assert response.status_code in (200, 400), (task, size, response.status_code, response.text)
        if response.status_code == 400:
            assert "Error in `inputs`" in response.json()["error"] and f"{size[0]}x{size[1]}" in response.json()["error"]


def test_generation_lengths_past_the_models_positions_are_not_500(default_server: Any, sample_image: bytes) -> None:
    url = default_server.url
    # The tiny captioner's GPT-2 decoder has 128 positions: 200 new tokens cannot fit.
    import base64

    caption = requests.post(f"{url}/models/hfbridge/tiny-image-to-text", headers=WAIT, timeout=120,
                            json={"inputs": base64.b64encode(sample_image).decode(), "parameters": {"max_new_tokens": 200}})
    assert caption.status_code == 400, caption.text
    assert "Error in `parameters.max_new_tokens`" in caption.json()["error"] and "127" in caption.json()["error"]
    # The others stop at the position table: the answer says so with finish_reason "length".
    text = requests.post(f"{url}/models/hfbridge/tiny-text-generation", headers=WAIT, timeout=120,
                         json={"inputs": "Once", "parameters": {"max_new_tokens": 500, "details": True}})
    assert text.status_code == 200 and text.json()[0]["details"]["generated_tokens"] < 256
    for model, parameters in (("tiny-summarization", {"max_length": 500, "min_length": 300}), ("tiny-translation", {"max_length": 500}),
                              ("tiny-text2text-generation", {"max_length": 500})):
        response = requests.post(f"{url}/models/hfbridge/{model}", json={"inputs": "a short text", "parameters": parameters}, headers=WAIT, timeout=120)
        assert response.status_code == 200, (model, response.text)


EXTREME_SAMPLING = [
    ("/models/hfbridge/tiny-text-generation", {"inputs": "hi", "parameters": {"temperature": 1e-300}}, "parameters.temperature"),
    ("/models/hfbridge/tiny-text-generation", {"inputs": "hi", "parameters": {"temperature": 1e-300, "do_sample": True}, "stream": True}, "parameters.temperature"),
    ("/models/hfbridge/tiny-text-generation", {"inputs": "hi", "parameters": {"repetition_penalty": 1e-300}}, "parameters"),
    ("/models/hfbridge/tiny-text-generation/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "temperature": 1e-300}, "temperature"),
    ("/models/hfbridge/tiny-text-generation/conversational", {"inputs": "hi", "parameters": {"temperature": 1e-40}}, "parameters.temperature"),
]


@pytest.mark.parametrize(("path", "body", "field"), EXTREME_SAMPLING, ids=[f"{b.get('parameters', b)}"[:60] for _, b, _ in EXTREME_SAMPLING])
def test_extreme_sampling_parameters_are_400_naming_the_field(default_server: Any, path: str, body: dict, field: str) -> None:
    response = requests.post(default_server.url + path, json=body, headers=WAIT, timeout=120)
    assert response.status_code == 400, response.text
    assert f"Error in `{field}`" in response.json()["error"]


def test_small_but_computable_temperatures_still_sample(default_server: Any) -> None:
    body = {"inputs": "hi", "parameters": {"temperature": 1e-5, "do_sample": True, "max_new_tokens": 4}}
    response = requests.post(f"{default_server.url}/models/hfbridge/tiny-text-generation", json=body, headers=WAIT, timeout=120)
    assert response.status_code == 200 and response.json()[0]["generated_text"].startswith("hi")


# ---- real internal errors --------------------------------------------------------------------
SECRET = "/home/operator/.ssh/id_ed25519 password=hunter2"


def _loaded_backend(server: Any, model: str) -> Any:
    server.wait_until_loaded([model])
    return server.models.backend(model)


def test_an_internal_error_is_500_without_its_text_and_logged(default_server: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    backend = _loaded_backend(default_server, "hfbridge/tiny-fill-mask")

    def broken(*_: Any) -> Any:
        raise RuntimeError(f"could not open {SECRET}")

    monkeypatch.setattr(backend, "plan", broken)  # fill-mask is batched: the server plans it, then runs the plan
    with caplog.at_level(logging.ERROR, logger="hfbridge.server"):
        response = requests.post(f"{default_server.url}/models/hfbridge/tiny-fill-mask", json={"inputs": "a [MASK]", "options": {"use_cache": False}}, timeout=30)
    assert response.status_code == 500
    error = response.json()["error"]
    assert "hunter2" not in response.text and "RuntimeError" not in response.text and "id_ed25519" not in response.text
    incident = error.split("incident ")[1].split(";")[0]
    logged = [r for r in caplog.records if incident in r.getMessage()]
    assert logged and logged[0].exc_info and SECRET in str(logged[0].exc_info[1])


def test_an_internal_error_mid_stream_is_an_event_without_its_text(default_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _loaded_backend(default_server, "hfbridge/tiny-text-generation")

    def broken(*_: Any) -> Any:
        yield {"token": {"id": 1, "text": "a", "logprob": 0.0, "special": False}, "generated_text": None, "details": None}
        raise RuntimeError(f"could not open {SECRET}")

    monkeypatch.setattr(backend, "stream", broken)
    body = {"inputs": "hi", "parameters": {"max_new_tokens": 4}, "stream": True}
    with requests.post(f"{default_server.url}/models/hfbridge/tiny-text-generation", json=body, stream=True, timeout=30) as response:
        events = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith(b"data:")]
    assert events[0]["token"]["text"] == "a"
    assert "incident" in events[-1]["error"] and "hunter2" not in json.dumps(events) and "RuntimeError" not in json.dumps(events)
