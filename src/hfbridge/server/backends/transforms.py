"""Media-to-media backends: image-to-image (a diffusers img2img pipeline) and audio-to-audio
(a neural audio codec).

* image-to-image answers the image's bytes (PNG), as the hosted API answers image tasks;
* audio-to-audio answers ``[{"label", "blob", "content-type"}]``, one element per output clip
  with the clip as base64 FLAC, as the hosted API's recorded answer shows.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...tasks import Task
from . import Backend, BackendInputError, BinaryResult, LoadContext
from ._common import MEANINGLESS, is_tiny, parse_parameters, write_tiny_marker
from .audio import _flac_bytes, decode_audio
from .vision import _png_bytes, build_tiny_text_to_image, decode_image

__all__ = ["LOADERS", "TINY_BUILDERS"]


# --------------------------------------------------------------------------------------------
# image-to-image
# --------------------------------------------------------------------------------------------
class ImageToImageBackend(Backend):
    """A diffusers image-to-image pipeline (Stable Diffusion img2img and the others
    ``AutoPipelineForImage2Image`` knows; a text-to-image folder loads as one too).

    The input is resized to ``target_size``, else kept at its own size scaled down to at most the
    model's native resolution (a 2048-pixel photo would otherwise cost a real model minutes and
    gigabytes), both rounded to the multiple of 8 the VAE needs. Every image is seeded (``seed``,
    else 0) through a private generator, so the same request gives the same picture."""

    tasks = frozenset({Task.IMAGE_TO_IMAGE})
    SIZE_MULTIPLE = 8

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        try:
            from diffusers import AutoPipelineForImage2Image
        except ImportError as exc:
            raise ImportError("image-to-image models need diffusers: pip install diffusers") from exc

        self.pipeline = AutoPipelineForImage2Image.from_pretrained(str(location))
        self.pipeline.set_progress_bar_config(disable=True)
        unet = getattr(self.pipeline, "unet", None)
        scale = getattr(self.pipeline, "vae_scale_factor", 8)
        self.native = int(unet.config.sample_size * scale) if unet is not None else 512
        self.meaningless = is_tiny(location)
        self.default_steps = 2 if self.meaningless else 25

    def _size(self, image: Any, target: Any) -> tuple[int, int]:
        if target is not None:
            for field in ("width", "height"):
                value = getattr(target, field)
                if value % self.SIZE_MULTIPLE:
                    raise BackendInputError(f"parameters.target_size.{field}", f"must be a multiple of {self.SIZE_MULTIPLE} (got {value})")
            return target.width, target.height
        width, height = image.size
        shrink = min(1.0, self.native / max(width, height))

        def fit(value: int) -> int:
            return max(self.SIZE_MULTIPLE, int(value * shrink) // self.SIZE_MULTIPLE * self.SIZE_MULTIPLE)

        return fit(width), fit(height)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        params = parse_parameters(task, parameters)
        image = decode_image(inputs)
        size = self._size(image, params.target_size)
        if size != image.size:
            image = image.resize(size)
        options = {
            name: value
            for name, value in (("negative_prompt", params.negative_prompt), ("guidance_scale", params.guidance_scale),
                                ("strength", params.strength))
            if value is not None
        }
        generator = torch.Generator().manual_seed(params.seed if params.seed is not None else 0)
        with torch.inference_mode():
            result = self.pipeline(
                params.prompt or "", image=image, num_inference_steps=params.num_inference_steps or self.default_steps,
                generator=generator, **options,
            ).images[0]
        return BinaryResult(_png_bytes(result), "image/png")


def build_tiny_image_to_image(target_dir: Path) -> None:
    """The tiny text-to-image Stable Diffusion: img2img runs on the very same parts."""
    build_tiny_text_to_image(target_dir)
    write_tiny_marker(target_dir, f"tiny random Stable Diffusion for image-to-image (img2img); {MEANINGLESS}, images are noise")


# --------------------------------------------------------------------------------------------
# audio-to-audio
# --------------------------------------------------------------------------------------------
class AudioCodecBackend(Backend):
    """A neural audio codec (EnCodec, DAC...) run as audio-to-audio: the clip is encoded to the
    codec's discrete codes and decoded back, which is what such a model does to audio (at a
    low bandwidth the round trip is audibly compressed). One output clip, ``label_0``, as the
    hosted API labels its outputs; its sample rate is the codec's."""

    tasks = frozenset({Task.AUDIO_TO_AUDIO})
    MAX_SECONDS = 60

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        from transformers import AutoFeatureExtractor, AutoModel

        self.features = AutoFeatureExtractor.from_pretrained(str(location))
        self.model = AutoModel.from_pretrained(str(location)).eval()
        if not hasattr(self.model, "encode") or not hasattr(self.model, "decode"):
            raise ValueError(f"{location}: audio-to-audio needs a codec model with encode() and decode() (EnCodec, DAC)")
        self.rate = self.features.sampling_rate
        self.meaningless = is_tiny(location)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        parse_parameters(task, parameters)
        audio = decode_audio(inputs, self.rate)
        if len(audio) > self.MAX_SECONDS * self.rate:
            raise BackendInputError("inputs", f"the clip is {len(audio) / self.rate:.0f} s long; this server transforms at most {self.MAX_SECONDS} s")
        encoded = self.features(raw_audio=audio, sampling_rate=self.rate, return_tensors="pt")
        mask = encoded.get("padding_mask")
        with torch.inference_mode():
            codes = self.model.encode(encoded["input_values"], mask)
            output = self.model.decode(codes.audio_codes, codes.audio_scales, mask)[0]
        waveform = np.clip(output[0, 0, : len(audio)].float().numpy(), -1.0, 1.0)
        blob = base64.b64encode(_flac_bytes(waveform, self.rate)).decode("ascii")
        return [{"label": "label_0", "blob": blob, "content-type": "audio/flac"}]


def build_tiny_codec(target_dir: Path) -> None:
    from transformers import EncodecConfig, EncodecFeatureExtractor, EncodecModel

    torch.manual_seed(0)
    config = EncodecConfig(
        sampling_rate=16_000, audio_channels=1, hidden_size=32, num_filters=8, num_residual_layers=1,
        upsampling_ratios=[8, 5, 4, 2], codebook_size=64, codebook_dim=32, num_lstm_layers=1,
        target_bandwidths=[1.5, 3.0], normalize=False,
    )
    EncodecModel(config).save_pretrained(str(target_dir))
    EncodecFeatureExtractor(feature_size=1, sampling_rate=16_000).save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, f"tiny EnCodec codec for audio-to-audio; {MEANINGLESS}, the audio is noise")


LOADERS = {Task.IMAGE_TO_IMAGE: ImageToImageBackend, Task.AUDIO_TO_AUDIO: AudioCodecBackend}
TINY_BUILDERS = {Task.IMAGE_TO_IMAGE: build_tiny_image_to_image, Task.AUDIO_TO_AUDIO: build_tiny_codec}
