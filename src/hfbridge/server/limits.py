"""What one request may cost the server: generated tokens, inputs, text, audio, pixels, steps.

Every cap is a :class:`Limits` field (``ServerSettings.limits``, and an ``hfbridge serve``
option of the same name). Requests over a cap are refused with a 400 naming the field, the cap
and the option that raises it, before any model runs: one caller asking for a million tokens
would otherwise hold a model's lock for everyone else.

The checks are pure functions of a parsed job (media headers are read from the bytes already
in memory, nothing is decoded in full), so they run on the event loop before the job is queued.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, fields
from typing import Any

from ..tasks import InputKind, Task, get_task
from .parsing import HTTPProblem, Job

__all__ = ["Limits", "MIN_TEMPERATURE", "check_job", "check_media"]

#: below this a temperature divides logits into infinities (a NaN distribution); 0 means greedy
MIN_TEMPERATURE = 1e-6
#: decoded audio is bounded in samples as ``max_audio_seconds`` of 48 kHz stereo, so that a
#: 384 kHz eight-channel file of the allowed length cannot decode to gigabytes
_AUDIO_SAMPLES_PER_SECOND = 48_000 * 2


def _cap(default: float, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Limits:
    """Per-request bounds of ``hfbridge serve``; every field is also a CLI option
    (``max_new_tokens`` is ``--max-new-tokens``)."""

    max_new_tokens: int = _cap(512, "most tokens one request may generate (max_new_tokens, max_tokens, max_length, min_length)")
    max_inputs: int = _cap(1024, "most texts, sentences, candidate labels or mask targets in one request")
    max_stop_sequences: int = _cap(16, "most stop sequences in one generation request")
    max_speech_chars: int = _cap(500, "longest text-to-speech input, in characters")
    max_audio_seconds: float = _cap(300.0, "longest audio input, in seconds")
    max_image_pixels: int = _cap(4096 * 4096, "largest input image, in pixels (checked from its header, before decoding)")
    max_image_side: int = _cap(1024, "largest text-to-image width or height, in pixels")
    max_inference_steps: int = _cap(50, "most text-to-image denoising steps")
    max_body_bytes: int = _cap(64 * 1024 * 1024, "largest request body, in bytes (chunked bodies are cut off as soon as they pass it)")
    header_timeout: float = _cap(10.0, "seconds a client has to send a request's headers")
    body_timeout: float = _cap(60.0, "seconds a client has to send a request's body")
    shutdown_timeout: float = _cap(10.0, "seconds in-flight requests get to finish after SIGTERM before they are cancelled")

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{spec.name} must be a number > 0, got {value!r}")

    @staticmethod
    def option(name: str) -> str:
        """The ``hfbridge serve`` option that sets the field ``name``."""
        return "--" + name.replace("_", "-")


def _over(where: str, value: Any, limit: Any, name: str, what: str = "") -> HTTPProblem:
    return HTTPProblem(
        400,
        f"Error in `{where}`: {value}{what} is more than this server allows ({limit}); "
        f"the operator can raise it with hfbridge serve {Limits.option(name)}",
    )


def _check_at_most(where: str, value: Any, limit: float, name: str, what: str = "") -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit:
        raise _over(where, value, limit, name, what)


def _count(where: str, items: Any, limit: int) -> None:
    if isinstance(items, (list, tuple)) and len(items) > limit:
        raise _over(where, len(items), limit, "max_inputs", " items")


#: the parameters that ask a task for a number of generated tokens
_LENGTH_FIELDS: dict[Task, tuple[str, ...]] = {
    Task.TEXT_GENERATION: ("max_new_tokens",),
    Task.CONVERSATIONAL: ("max_tokens", "max_completion_tokens"),
    Task.SUMMARIZATION: ("max_length", "min_length"),
    Task.TRANSLATION: ("max_length",),
    Task.TEXT2TEXT_GENERATION: ("max_new_tokens", "max_length"),
    Task.IMAGE_TO_TEXT: ("max_new_tokens",),
}


def check_job(job: Job, limits: Limits, *, prefix: str = "parameters.") -> None:
    """Refuse a job over any cap. ``prefix`` is where the parameters sit in the body:
    ``parameters.`` on task routes, nothing on ``/v1/chat/completions``."""
    params = job.parameters
    for name in _LENGTH_FIELDS.get(job.task, ()):
        _check_at_most(prefix + name, params.get(name), limits.max_new_tokens, "max_new_tokens", " tokens")
    if job.task in (Task.TEXT_GENERATION, Task.CONVERSATIONAL):
        _check_sampling(params, prefix, limits)
    if job.task is Task.FEATURE_EXTRACTION:
        _count("inputs", job.inputs, limits.max_inputs)
    elif job.task is Task.SENTENCE_SIMILARITY:
        _count("inputs.sentences", job.inputs.get("sentences"), limits.max_inputs)
    elif job.task is Task.ZERO_SHOT_CLASSIFICATION:
        _count(prefix + "candidate_labels", params.get("candidate_labels"), limits.max_inputs)
    elif job.task is Task.FILL_MASK:
        _count(prefix + "targets", params.get("targets"), limits.max_inputs)
    elif job.task is Task.TEXT_TO_SPEECH and isinstance(job.inputs, str):
        _check_at_most("inputs", len(job.inputs), limits.max_speech_chars, "max_speech_chars", " characters")
    elif job.task is Task.TEXT_TO_IMAGE:
        for name in ("width", "height"):
            _check_at_most(prefix + name, params.get(name), limits.max_image_side, "max_image_side", " pixels")
        _check_at_most(prefix + "num_inference_steps", params.get("num_inference_steps"), limits.max_inference_steps, "max_inference_steps", " steps")


def _check_sampling(params: dict[str, Any], prefix: str, limits: Limits) -> None:
    temperature = params.get("temperature")
    if isinstance(temperature, (int, float)) and 0 < temperature < MIN_TEMPERATURE:
        raise HTTPProblem(
            400,
            f"Error in `{prefix}temperature`: {temperature} is too small to compute with; "
            f"use 0 for greedy decoding or at least {MIN_TEMPERATURE}",
        )
    stop = params.get("stop")
    if isinstance(stop, (list, tuple)) and len(stop) > limits.max_stop_sequences:
        raise _over(prefix + "stop", len(stop), limits.max_stop_sequences, "max_stop_sequences", " stop sequences")


# --------------------------------------------------------------------------------------------
# Binary inputs: bounded from their headers, before anything is decoded
# --------------------------------------------------------------------------------------------
def check_media(job: Job, limits: Limits) -> None:
    """Refuse an image larger than ``max_image_pixels`` or audio longer than
    ``max_audio_seconds``, reading only the file's header."""
    if not isinstance(job.inputs, (bytes, bytearray)):
        return
    kind = get_task(job.task).input_kind
    if kind is InputKind.IMAGE:
        _check_image(bytes(job.inputs), limits)
    elif kind is InputKind.AUDIO:
        _check_audio(bytes(job.inputs), limits)


def _check_image(data: bytes, limits: Limits) -> None:
    from PIL import Image

    try:
        # Image.open reads the header only; the pixels are decoded later, by the backend.
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        # OSError covers UnidentifiedImageError; DecompressionBombError is Pillow's own cap.
        raise HTTPProblem(400, f"Error in `inputs`: could not read the image: {_short(exc)}") from None
    if width * height > limits.max_image_pixels:
        raise _over("inputs", f"the image is {width}x{height} = {width * height:,} pixels, which", f"{limits.max_image_pixels:,}", "max_image_pixels")


def _check_audio(data: bytes, limits: Limits) -> None:
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(data))
    except (RuntimeError, ValueError, TypeError):  # soundfile's errors for unreadable audio
        return  # the backend's decoder refuses it with its own 400
    if not info.samplerate or info.frames <= 0:
        return
    seconds = info.frames / info.samplerate
    if seconds > limits.max_audio_seconds:
        raise _over("inputs", f"the audio lasts {seconds:.1f} s, which", f"{limits.max_audio_seconds:g} s", "max_audio_seconds")
    if info.frames * info.channels > limits.max_audio_seconds * _AUDIO_SAMPLES_PER_SECOND:
        raise HTTPProblem(
            400,
            f"Error in `inputs`: the audio has {info.channels} channels at {info.samplerate} Hz, more samples than "
            f"{limits.max_audio_seconds:g} s of 48 kHz stereo; send it mixed down or resampled",
        )


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."

