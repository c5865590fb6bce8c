"""Vision backends on tiny random-weight models: real preprocessing, inference and
post-processing, checked against the response schemas and for every parameter's effect."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import TypeAdapter

from hfbridge.schemas import ClassificationResult, GeneratedText, ImageSegmentationResult, ObjectDetectionResult
from hfbridge.server.backends import BackendInputError, BinaryResult, LoadContext
from hfbridge.server.backends._common import TINY_MARKER
from hfbridge.server.backends.vision import LOADERS, TINY_BUILDERS
from hfbridge.tasks import Task

NOT_AN_IMAGE = b"this is not an image at all"


def _load(model_cache: Path, task: Task):
    target = model_cache / "tiny" / task.value
    if not (target / TINY_MARKER).is_file():
        target.mkdir(parents=True, exist_ok=True)
        TINY_BUILDERS[task](target)
    return LOADERS[task](target, LoadContext(model_id=f"tiny/{task.value}", cache_dir=model_cache))


def _encode(sample_image: bytes, fmt: str, size: tuple[int, int] | None = None) -> bytes:
    image = Image.open(io.BytesIO(sample_image)).convert("RGB")
    if size:
        image = image.resize(size)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _decode_mask(mask: str) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(mask)))
    assert image.mode == "L"
    return np.asarray(image)


# --------------------------------------------------------------------------------------------
# image-classification
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def classifier(model_cache):
    return _load(model_cache, Task.IMAGE_CLASSIFICATION)


def test_image_classification_shape_and_order(classifier, sample_image):
    assert classifier.meaningless and Task.IMAGE_CLASSIFICATION in classifier.tasks
    out = classifier.predict(Task.IMAGE_CLASSIFICATION, sample_image, {})
    results = TypeAdapter(list[ClassificationResult]).validate_python(out)
    assert len(results) == 5  # default top_k
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    assert classifier.predict(Task.IMAGE_CLASSIFICATION, sample_image, {}) == out  # deterministic


def test_image_classification_top_k(classifier, sample_image):
    assert len(classifier.predict(Task.IMAGE_CLASSIFICATION, sample_image, {"top_k": 2})) == 2
    everything = classifier.predict(Task.IMAGE_CLASSIFICATION, sample_image, {"top_k": 100})
    assert len(everything) == 8  # capped at the number of labels
    assert sum(r["score"] for r in everything) == pytest.approx(1.0, abs=1e-5)  # softmax by default


def test_image_classification_function_to_apply(classifier, sample_image):
    def scores(function):
        out = classifier.predict(Task.IMAGE_CLASSIFICATION, sample_image, {"top_k": 8, "function_to_apply": function})
        return {r["label"]: r["score"] for r in out}

    raw, sigmoid = scores("none"), scores("sigmoid")
    assert sigmoid == pytest.approx({label: 1 / (1 + np.exp(-value)) for label, value in raw.items()}, abs=1e-6)
    assert sum(scores("softmax").values()) == pytest.approx(1.0, abs=1e-5)
    assert sum(sigmoid.values()) > 1.5  # eight independent sigmoids near 0.5


@pytest.mark.parametrize("fmt", ["JPEG", "GIF", "WEBP"])
def test_image_formats(classifier, sample_image, fmt):
    out = classifier.predict(Task.IMAGE_CLASSIFICATION, _encode(sample_image, fmt), {"top_k": 1})
    TypeAdapter(list[ClassificationResult]).validate_python(out)


def test_image_classification_bad_input(classifier, sample_image):
    with pytest.raises(BackendInputError) as info:
        classifier.predict(Task.IMAGE_CLASSIFICATION, NOT_AN_IMAGE, {})
    assert info.value.field == "inputs" and "could not decode the image" in info.value.message
    with pytest.raises(BackendInputError) as info:  # a PNG cut short
        classifier.predict(Task.IMAGE_CLASSIFICATION, sample_image[:2000], {})
    assert info.value.field == "inputs"
    with pytest.raises(BackendInputError) as info:
        classifier.predict(Task.IMAGE_CLASSIFICATION, sample_image, {"top_k": 0})
    assert info.value.field == "top_k"
    with pytest.raises(BackendInputError) as info:
        classifier.predict(Task.IMAGE_CLASSIFICATION, sample_image, {"function_to_apply": "tanh"})
    assert info.value.field == "function_to_apply"


# --------------------------------------------------------------------------------------------
# object-detection
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def detector(model_cache):
    return _load(model_cache, Task.OBJECT_DETECTION)


def test_object_detection_boxes(detector, sample_image):
    assert detector.meaningless
    out = detector.predict(Task.OBJECT_DETECTION, sample_image, {"threshold": 0.0})
    results = TypeAdapter(list[ObjectDetectionResult]).validate_python(out)
    assert len(results) == 6  # every detection token passes threshold 0
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    for r in results:
        assert all(isinstance(v, int) for v in r.box.model_dump().values())
        assert 0 <= r.box.xmin <= r.box.xmax <= 512 and 0 <= r.box.ymin <= r.box.ymax <= 512


def test_object_detection_threshold(detector, sample_image):
    everything = detector.predict(Task.OBJECT_DETECTION, sample_image, {"threshold": 0.0})
    cut = sorted(r["score"] for r in everything)[len(everything) // 2]
    kept = detector.predict(Task.OBJECT_DETECTION, sample_image, {"threshold": cut})
    assert 0 < len(kept) < len(everything) and all(r["score"] >= cut for r in kept)
    default = detector.predict(Task.OBJECT_DETECTION, sample_image, {})
    assert all(r["score"] > 0.5 for r in default) and len(default) < len(everything)
    assert detector.predict(Task.OBJECT_DETECTION, sample_image, {"threshold": 1.0}) == []


def test_object_detection_boxes_in_original_pixels(detector, sample_image):
    wide = _encode(sample_image, "PNG", size=(300, 120))
    for r in detector.predict(Task.OBJECT_DETECTION, wide, {"threshold": 0.0}):
        box = r["box"]
        assert 0 <= box["xmin"] <= box["xmax"] <= 300 and 0 <= box["ymin"] <= box["ymax"] <= 120


def test_object_detection_bad_input(detector):
    with pytest.raises(BackendInputError) as info:
        detector.predict(Task.OBJECT_DETECTION, NOT_AN_IMAGE, {})
    assert info.value.field == "inputs"


# --------------------------------------------------------------------------------------------
# image-segmentation
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def segmenter(model_cache):
    return _load(model_cache, Task.IMAGE_SEGMENTATION)


def test_image_segmentation_masks(segmenter, sample_image):
    assert segmenter.meaningless
    out = segmenter.predict(Task.IMAGE_SEGMENTATION, sample_image, {})
    results = TypeAdapter(list[ImageSegmentationResult]).validate_python(out)
    assert len(results) >= 2
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    masks = [_decode_mask(r.mask) for r in results]
    assert all(m.shape == (512, 512) and set(np.unique(m)) <= {0, 255} for m in masks)
    # semantic segments tile the image: every pixel in exactly one mask
    assert (sum((m > 0).astype(int) for m in masks) == 1).all()
    explicit = segmenter.predict(Task.IMAGE_SEGMENTATION, sample_image, {"subtask": "semantic"})
    assert explicit == out


def test_image_segmentation_thresholds(segmenter, sample_image):
    everything = segmenter.predict(Task.IMAGE_SEGMENTATION, sample_image, {})
    scores = sorted(r["score"] for r in everything)
    kept = segmenter.predict(Task.IMAGE_SEGMENTATION, sample_image, {"threshold": scores[-2]})
    assert [r["score"] for r in kept] == scores[-2:][::-1]

    def pixels(results):
        return sum(int((_decode_mask(r["mask"]) > 0).sum()) for r in results)

    strict = segmenter.predict(Task.IMAGE_SEGMENTATION, sample_image, {"mask_threshold": scores[-1]})
    assert 0 < pixels(strict) < pixels(everything) == 512 * 512


def test_image_segmentation_rejects(segmenter, sample_image):
    with pytest.raises(BackendInputError) as info:
        segmenter.predict(Task.IMAGE_SEGMENTATION, sample_image, {"subtask": "instance"})
    assert info.value.field == "subtask" and "semantic" in info.value.message
    with pytest.raises(BackendInputError) as info:
        segmenter.predict(Task.IMAGE_SEGMENTATION, sample_image, {"mask_threshold": 2})
    assert info.value.field == "mask_threshold"
    with pytest.raises(BackendInputError) as info:
        segmenter.predict(Task.IMAGE_SEGMENTATION, NOT_AN_IMAGE, {})
    assert info.value.field == "inputs"


# --------------------------------------------------------------------------------------------
# image-to-text
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def captioner(model_cache):
    return _load(model_cache, Task.IMAGE_TO_TEXT)


def test_image_to_text(captioner, sample_image):
    assert captioner.meaningless
    out = captioner.predict(Task.IMAGE_TO_TEXT, sample_image, {})
    [result] = TypeAdapter(list[GeneratedText]).validate_python(out)
    assert result.generated_text
    assert captioner.predict(Task.IMAGE_TO_TEXT, sample_image, {}) == out  # greedy: reproducible


def test_image_to_text_max_new_tokens(captioner, sample_image):
    short = captioner.predict(Task.IMAGE_TO_TEXT, sample_image, {"max_new_tokens": 3})[0]["generated_text"]
    default = captioner.predict(Task.IMAGE_TO_TEXT, sample_image, {})[0]["generated_text"]
    longer = captioner.predict(Task.IMAGE_TO_TEXT, sample_image, {"max_new_tokens": 40})[0]["generated_text"]
    assert len(short) < len(default) < len(longer)
    assert default.startswith(short) and longer.startswith(default)


def test_image_to_text_bad_input(captioner):
    with pytest.raises(BackendInputError) as info:
        captioner.predict(Task.IMAGE_TO_TEXT, NOT_AN_IMAGE, {})
    assert info.value.field == "inputs"


# --------------------------------------------------------------------------------------------
# text-to-image
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def painter(model_cache):
    pytest.importorskip("diffusers")
    return _load(model_cache, Task.TEXT_TO_IMAGE)


def _picture(painter, parameters=None, prompt="an astronaut riding a horse"):
    result = painter.predict(Task.TEXT_TO_IMAGE, prompt, parameters or {})
    assert isinstance(result, BinaryResult) and result.content_type == "image/png"
    image = Image.open(io.BytesIO(result.data))
    assert image.format == "PNG"
    return image.size, np.asarray(image.convert("RGB"), dtype=np.int16)


def test_text_to_image_default(painter):
    assert painter.meaningless
    size, pixels = _picture(painter)
    assert size == (64, 64)
    assert pixels.std() > 0  # a real decoded image, not a blank
    assert np.array_equal(_picture(painter)[1], pixels)  # seeded by default: reproducible


def test_text_to_image_size(painter):
    size, _ = _picture(painter, {"width": 48, "height": 32})
    assert size == (48, 32)
    with pytest.raises(BackendInputError) as info:
        painter.predict(Task.TEXT_TO_IMAGE, "a cat", {"height": 50})
    assert info.value.field == "height" and "multiple of 8" in info.value.message and "48" in info.value.message


def test_text_to_image_parameters_change_the_image(painter):
    _, base = _picture(painter, {"seed": 1})
    for changed in ({"seed": 2}, {"negative_prompt": "blurry"}, {"guidance_scale": 1.0}, {"num_inference_steps": 1}):
        _, pixels = _picture(painter, {"seed": 1, **changed})
        assert not np.array_equal(pixels, base), changed
    _, other_prompt = _picture(painter, {"seed": 1}, prompt="a red bicycle")
    assert not np.array_equal(other_prompt, base)


def test_text_to_image_bad_parameters(painter):
    with pytest.raises(BackendInputError) as info:
        painter.predict(Task.TEXT_TO_IMAGE, "a cat", {"num_inference_steps": 0})
    assert info.value.field == "num_inference_steps"
    with pytest.raises(BackendInputError) as info:
        painter.predict(Task.TEXT_TO_IMAGE, "a cat", {"steps": 3})
    assert info.value.field == "steps"
