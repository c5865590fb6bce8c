"""Vision backends: image classification, object detection, semantic segmentation, captioning
and text-to-image.

Every image arrives as raw bytes (PNG, JPEG, GIF, WebP...) and is decoded once with Pillow into
RGB, which is what every image processor expects (a grey-alpha PNG would otherwise reach a
3-channel model with 2 channels). Models are called directly rather than through transformers'
``pipeline`` so the code runs unchanged on transformers 4.44+ and 5.x.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...media import open_image
from ...tasks import Task
from . import Backend, BackendInputError, BinaryResult, LoadContext
from ._common import cancellable_generate, is_tiny, label_config, parse_parameters, rank_labels, write_tiny_marker

__all__ = ["LOADERS", "TINY_BUILDERS"]


# --------------------------------------------------------------------------------------------
# Images in and out
# --------------------------------------------------------------------------------------------
def decode_image(data: bytes) -> Any:
    """Decode image bytes to an RGB ``PIL.Image``; anything Pillow cannot read is the caller's
    error, never a 500."""
    from PIL import Image

    try:
        return open_image(data).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # OSError covers UnidentifiedImageError and truncated files; SyntaxError is what some
        # of Pillow's decoders raise for a corrupt header.
        raise BackendInputError("inputs", f"could not decode the image: {exc}") from None


def _model_inputs(processor: Any, image: Any) -> Any:
    """The processor's tensors for ``image``. Processors raise ValueError for images they
    cannot resize (a 3000x1 strip shrinks to a side of 0 pixels): the caller's error, a 400."""
    try:
        return processor(images=image, return_tensors="pt")
    except ValueError:
        width, height = image.size
        raise BackendInputError("inputs", f"this model cannot take a {width}x{height} image (too narrow or too flat to resize)") from None


def _png_bytes(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _mask_png_base64(mask: torch.Tensor) -> str:
    """A boolean mask as the hosted API sends it: a base64 single-channel (L) PNG, 255 = in."""
    from PIL import Image

    pixels = mask.numpy().astype(np.uint8) * 255
    return base64.b64encode(_png_bytes(Image.fromarray(pixels))).decode("ascii")


# --------------------------------------------------------------------------------------------
# image-classification
# --------------------------------------------------------------------------------------------
class ImageClassificationBackend(Backend):
    """Any ``AutoModelForImageClassification`` (ViT, ConvNeXt, ResNet...)."""

    tasks = frozenset({Task.IMAGE_CLASSIFICATION})

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        self.processor = AutoImageProcessor.from_pretrained(str(location))
        self.model = AutoModelForImageClassification.from_pretrained(str(location)).eval()
        self.meaningless = is_tiny(location)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        params = parse_parameters(task, parameters)
        image = decode_image(inputs)
        with torch.inference_mode():
            logits = self.model(**_model_inputs(self.processor, image)).logits[0]
        return rank_labels(logits, self.model.config, params.top_k, params.function_to_apply)


def build_tiny_image_classifier(target_dir: Path) -> None:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    labels = ["cat", "dog", "bird", "car", "person", "tree", "house", "boat"]
    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, **label_config(labels),
    )
    ViTForImageClassification(config).save_pretrained(str(target_dir))
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, "tiny random ViT for image-classification; outputs are meaningless")


# --------------------------------------------------------------------------------------------
# object-detection
# --------------------------------------------------------------------------------------------
class ObjectDetectionBackend(Backend):
    """Any ``AutoModelForObjectDetection`` whose image processor has
    ``post_process_object_detection`` (DETR, YOLOS, Conditional/Deformable DETR...)."""

    tasks = frozenset({Task.OBJECT_DETECTION})

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        from transformers import AutoImageProcessor, AutoModelForObjectDetection

        self.processor = AutoImageProcessor.from_pretrained(str(location))
        self.model = AutoModelForObjectDetection.from_pretrained(str(location)).eval()
        self.meaningless = is_tiny(location)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        params = parse_parameters(task, parameters)
        threshold = 0.5 if params.threshold is None else params.threshold
        image = decode_image(inputs)
        width, height = image.size
        with torch.inference_mode():
            outputs = self.model(**_model_inputs(self.processor, image))
        found = self.processor.post_process_object_detection(
            outputs, threshold=threshold, target_sizes=[(height, width)]
        )[0]
        detections = [
            {
                "label": self.model.config.id2label[int(label)],
                "score": float(score),
                "box": _pixel_box(box.tolist(), width, height),
            }
            for score, label, box in zip(found["scores"], found["labels"], found["boxes"])
        ]
        return sorted(detections, key=lambda item: item["score"], reverse=True)


def _pixel_box(box: list[float], width: int, height: int) -> dict[str, int]:
    """Whole pixels inside the image: predicted boxes may overhang the borders slightly."""
    xmin, ymin, xmax, ymax = box

    def clamp(value: float, limit: int) -> int:
        return int(min(max(round(value), 0), limit))

    return {"xmin": clamp(xmin, width), "ymin": clamp(ymin, height), "xmax": clamp(xmax, width), "ymax": clamp(ymax, height)}


def build_tiny_object_detector(target_dir: Path) -> None:
    from transformers import YolosConfig, YolosForObjectDetection, YolosImageProcessor

    torch.manual_seed(0)
    config = YolosConfig(
        image_size=[64, 64], patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_detection_tokens=6, **label_config(["person", "car", "dog", "umbrella"]),
    )
    model = YolosForObjectDetection(config)
    # With YOLOS's initialisation (zero detection tokens, near-zero heads) every random
    # "detection" is the same centred box at the same score. Spread-out tokens and heads give
    # varied boxes (some past the image's edges) and scores, so post-processing is exercised.
    with torch.no_grad():
        model.vit.embeddings.detection_tokens.normal_(std=1.0)
        for weight in [*model.bbox_predictor.parameters(), *model.class_labels_classifier.parameters()]:
            weight.normal_(std=0.3)
    model.save_pretrained(str(target_dir))
    YolosImageProcessor(size={"shortest_edge": 64, "longest_edge": 64}).save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, "tiny random YOLOS for object-detection; outputs are meaningless")


# --------------------------------------------------------------------------------------------
# image-segmentation
# --------------------------------------------------------------------------------------------
class SemanticSegmentationBackend(Backend):
    """Any ``AutoModelForSemanticSegmentation`` (SegFormer, BEiT, DPT, UperNet, MobileViT...).

    transformers' pipeline gives semantic segments no score and ignores both thresholds. Here a
    segment's score is the mean probability of its label over its pixels, ``threshold`` drops
    segments scoring below it, and ``mask_threshold`` leaves out of a mask the pixels whose
    winning probability is below it; left unset, the answer is the plain per-pixel argmax, as
    from the pipeline. Such models cannot separate instances, so ``instance`` and ``panoptic``
    are refused rather than silently answered with semantic masks.
    """

    tasks = frozenset({Task.IMAGE_SEGMENTATION})

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

        self.processor = AutoImageProcessor.from_pretrained(str(location))
        self.model = AutoModelForSemanticSegmentation.from_pretrained(str(location)).eval()
        self.meaningless = is_tiny(location)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        params = parse_parameters(task, parameters)
        if params.subtask not in (None, "semantic"):
            raise BackendInputError(
                "subtask",
                f"{self.model.config.model_type} is a semantic segmentation model and cannot do "
                f"{params.subtask!r} segmentation; use 'semantic'",
            )
        image = decode_image(inputs)
        with torch.inference_mode():
            logits = self.model(**_model_inputs(self.processor, image)).logits
            # Upsample logits (not labels) to the original size, as the processor's own
            # post-processing does, so masks follow object borders at full resolution.
            logits = torch.nn.functional.interpolate(logits, size=(image.height, image.width), mode="bilinear", align_corners=False)
            confidence, labels = logits[0].softmax(dim=0).max(dim=0)
        segments = []
        for label_id in labels.unique().tolist():
            region = labels == label_id
            score = float(confidence[region].mean())
            if params.threshold is not None and score < params.threshold:
                continue
            mask = region if params.mask_threshold is None else region & (confidence >= params.mask_threshold)
            if not mask.any():
                continue  # every pixel of the segment fell below mask_threshold
            segments.append({"label": self.model.config.id2label[label_id], "score": score, "mask": _mask_png_base64(mask)})
        return sorted(segments, key=lambda item: item["score"], reverse=True)


def build_tiny_segmenter(target_dir: Path) -> None:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(0)
    config = SegformerConfig(
        num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[16, 32], patch_sizes=[7, 3],
        strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=32,
        **label_config(["sky", "road", "person", "tree", "building"]),
    )
    model = SegformerForSemanticSegmentation(config)
    # At the usual initialisation (std 0.02) every pixel's probabilities are near uniform; a
    # much larger classifier gives confident and unsure regions, so scores differ between
    # segments and both thresholds have something to cut.
    with torch.no_grad():
        model.decode_head.classifier.weight.normal_(std=20.0)
    model.save_pretrained(str(target_dir))
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, "tiny random SegFormer for image-segmentation (semantic); outputs are meaningless")


# --------------------------------------------------------------------------------------------
# image-to-text
# --------------------------------------------------------------------------------------------
class ImageToTextBackend(Backend):
    """Captioning models that ``generate`` from ``pixel_values`` alone: VisionEncoderDecoder
    (ViT-GPT2, TrOCR), BLIP, GIT. Decoding is greedy, so a caption is reproducible."""

    tasks = frozenset({Task.IMAGE_TO_TEXT})

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        import transformers

        # transformers 4.x files these models under Vision2Seq; 5.x removed that class and
        # files them under ImageTextToText.
        auto_model = getattr(transformers, "AutoModelForVision2Seq", None) or transformers.AutoModelForImageTextToText
        self.processor = transformers.AutoImageProcessor.from_pretrained(str(location))
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(location))
        self.model = auto_model.from_pretrained(str(location)).eval()
        self.meaningless = is_tiny(location)
        #: tokens the decoder can generate after its start token; None when its positions are unbounded
        self.max_new_tokens = _decoder_room(self.model.config)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        params = parse_parameters(task, parameters)
        room = self.max_new_tokens
        if params.max_new_tokens is not None and room is not None and params.max_new_tokens > room:
            raise BackendInputError("parameters.max_new_tokens", f"{params.max_new_tokens} is more than this model can generate ({room})")
        max_new_tokens = params.max_new_tokens or min(20, room or 20)
        image = decode_image(inputs)
        pixel_values = _model_inputs(self.processor, image).pixel_values
        with torch.inference_mode():
            ids = cancellable_generate(self.model, pixel_values=pixel_values, max_new_tokens=max_new_tokens, do_sample=False)
        return [{"generated_text": self.tokenizer.decode(ids[0], skip_special_tokens=True).strip()}]


def _decoder_room(config: Any) -> int | None:
    """How many tokens a captioner's decoder can add to its start token: its position table
    (``n_positions`` of GPT-2, ``max_position_embeddings`` of most others) minus one."""
    decoder = getattr(config, "decoder", None) or getattr(config, "text_config", None) or config
    positions = getattr(decoder, "max_position_embeddings", None) or getattr(decoder, "n_positions", None)
    return positions - 1 if positions else None


def build_tiny_captioner(target_dir: Path) -> None:
    from transformers import GPT2Config, ViTConfig, ViTImageProcessor, VisionEncoderDecoderConfig, VisionEncoderDecoderModel

    from ._tokenizers import train_bpe

    tokenizer = train_bpe(bos_eos=False)
    torch.manual_seed(0)
    encoder = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    decoder = GPT2Config(
        vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    special = {"decoder_start_token_id": tokenizer.bos_token_id, "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    for name, value in special.items():
        setattr(config, name, value)
    model = VisionEncoderDecoderModel(config)
    for name, value in special.items():
        setattr(model.generation_config, name, value)
    model.save_pretrained(str(target_dir))
    tokenizer.save_pretrained(str(target_dir))
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, "tiny random ViT-GPT2 VisionEncoderDecoder for image-to-text; outputs are meaningless")


# --------------------------------------------------------------------------------------------
# text-to-image
# --------------------------------------------------------------------------------------------
class TextToImageBackend(Backend):
    """A diffusers text-to-image pipeline (Stable Diffusion and the others
    ``AutoPipelineForText2Image`` knows). Every image is seeded (with ``seed``, else 0) through
    a private generator: the same request gives the same picture, and concurrent models never
    share random state."""

    tasks = frozenset({Task.TEXT_TO_IMAGE})
    #: the pipelines' own check: the VAE and UNet halve sizes several times
    SIZE_MULTIPLE = 8

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        try:
            from diffusers import AutoPipelineForText2Image
        except ImportError as exc:
            raise ImportError("text-to-image models need diffusers: pip install diffusers") from exc

        self.pipeline = AutoPipelineForText2Image.from_pretrained(str(location))
        self.pipeline.set_progress_bar_config(disable=True)
        self.meaningless = is_tiny(location)
        # A tiny model's image is noise after any number of steps; a real one needs ~25.
        self.default_steps = 2 if self.meaningless else 25

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        params = parse_parameters(task, parameters)
        for field in ("height", "width"):
            value = getattr(params, field)
            if value is not None and value % self.SIZE_MULTIPLE:
                nearest = max(self.SIZE_MULTIPLE, round(value / self.SIZE_MULTIPLE) * self.SIZE_MULTIPLE)
                raise BackendInputError(field, f"must be a multiple of {self.SIZE_MULTIPLE} (got {value}; try {nearest})")
        # Unset height/width/guidance_scale fall to the pipeline's defaults (the model's native
        # size, 7.5), so a real model is used the way it was trained.
        options = {
            name: value
            for name, value in (
                ("negative_prompt", params.negative_prompt),
                ("height", params.height),
                ("width", params.width),
                ("guidance_scale", params.guidance_scale),
            )
            if value is not None
        }
        generator = torch.Generator().manual_seed(params.seed if params.seed is not None else 0)
        with torch.inference_mode():
            image = self.pipeline(
                inputs, num_inference_steps=params.num_inference_steps or self.default_steps, generator=generator, **options
            ).images[0]
        return BinaryResult(_png_bytes(image), "image/png")


def build_tiny_text_to_image(target_dir: Path) -> None:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from ._tokenizers import train_bpe

    tokenizer = train_bpe()
    tokenizer.model_max_length = 77  # the pipeline pads every prompt to this length
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32,
    )
    # Two VAE blocks: a scale factor of 2, so the UNet's 32x32 latents decode to 64x64 images.
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(32, 64), latent_channels=4, norm_num_groups=32,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, sample_size=64,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipeline.save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, "tiny random Stable Diffusion (UNet, VAE, CLIP text encoder) for text-to-image; images are noise")


LOADERS = {
    Task.IMAGE_CLASSIFICATION: ImageClassificationBackend,
    Task.OBJECT_DETECTION: ObjectDetectionBackend,
    Task.IMAGE_SEGMENTATION: SemanticSegmentationBackend,
    Task.IMAGE_TO_TEXT: ImageToTextBackend,
    Task.TEXT_TO_IMAGE: TextToImageBackend,
}

TINY_BUILDERS = {
    Task.IMAGE_CLASSIFICATION: build_tiny_image_classifier,
    Task.OBJECT_DETECTION: build_tiny_object_detector,
    Task.IMAGE_SEGMENTATION: build_tiny_segmenter,
    Task.IMAGE_TO_TEXT: build_tiny_captioner,
    Task.TEXT_TO_IMAGE: build_tiny_text_to_image,
}
