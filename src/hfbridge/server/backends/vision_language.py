"""Image-and-text backends: zero-shot image classification (CLIP), visual question answering
(ViLT) and document question answering (Donut).

Answers are the hosted API's shapes: ``[{label, score}]`` best first, ``[{answer, score}]`` best
first, and ``[{answer}]`` (a generative reader has no span to score, as the hosted API's recorded
Donut answer shows). Models are called directly, as in :mod:`.vision`, so the code runs on
transformers 4.44+ and 5.x alike.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any

import torch

from ...tasks import Task
from . import Backend, BackendInputError, LoadContext
from ._common import MEANINGLESS, is_tiny, label_config, parse_parameters, write_tiny_marker
from .vision import decode_image

__all__ = ["LOADERS", "TINY_BUILDERS", "refuse_unsupported"]

_SEED = 0


def _image_field(inputs: Any) -> Any:
    """The ``inputs.image`` of an image-and-question request, decoded."""
    try:
        data = base64.b64decode(inputs["image"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise BackendInputError("inputs.image", "expected base64-encoded image data") from None
    try:
        return decode_image(data)
    except BackendInputError as exc:
        raise BackendInputError("inputs.image", exc.message) from None


def refuse_unsupported(params: Any, names: dict[str, str]) -> None:
    """A parameter the model cannot honour is an error naming it, never silently ignored;
    ``names`` maps each such parameter to the reason."""
    for name, reason in names.items():
        if getattr(params, name, None) is not None:
            raise BackendInputError(f"parameters.{name}", reason)


def _text_limit(tokenizer: Any, config: Any) -> int:
    positions = getattr(config, "max_position_embeddings", None) or 77
    saved = getattr(tokenizer, "model_max_length", None)
    return min(positions, saved) if saved and saved < 1_000_000 else positions


# --------------------------------------------------------------------------------------------
# zero-shot-image-classification
# --------------------------------------------------------------------------------------------
class ZeroShotImageBackend(Backend):
    """CLIP-style dual encoders (CLIP, SigLIP, ALIGN...): each label becomes the text
    ``hypothesis_template.format(label)`` and is scored by its similarity to the image, a
    softmax over the labels (SigLIP: a sigmoid per label, as transformers' pipeline does)."""

    tasks = frozenset({Task.ZERO_SHOT_IMAGE_CLASSIFICATION})
    DEFAULT_TEMPLATE = "This is a photo of {}."

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        from transformers import AutoImageProcessor, AutoModelForZeroShotImageClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(location))
        self.processor = AutoImageProcessor.from_pretrained(str(location))
        self.model = AutoModelForZeroShotImageClassification.from_pretrained(str(location)).eval()
        self.max_length = _text_limit(self.tokenizer, getattr(self.model.config, "text_config", self.model.config))
        self.sigmoid = self.model.config.model_type == "siglip"
        self.meaningless = is_tiny(location)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        if not parameters.get("candidate_labels"):  # raw image bytes carry no parameters at all
            raise BackendInputError("parameters.candidate_labels", "is required: the labels to choose from")
        params = parse_parameters(task, parameters)
        image = decode_image(inputs)
        template = params.hypothesis_template or self.DEFAULT_TEMPLATE
        texts = [template.format(label) for label in params.candidate_labels]
        encoding = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        pixels = self.processor(images=image, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**encoding, **pixels).logits_per_image[0]
        scores = logits.sigmoid() if self.sigmoid else logits.softmax(dim=-1)
        ranked = sorted(zip(params.candidate_labels, scores.tolist()), key=lambda pair: pair[1], reverse=True)
        return [{"label": label, "score": float(score)} for label, score in ranked]


def build_tiny_clip(target_dir: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    from ._tokenizers import train_bpe

    from tokenizers import processors

    tokenizer = train_bpe()
    tokenizer.model_max_length = 77
    # CLIP pools the text at its end token. transformers reads an end token of id 2 as the
    # original CLIP's convention (the end token has the highest id: take the argmax), which
    # would pool every label at the same word; CLIP's own <|endoftext|>, added last, avoids it.
    tokenizer.add_special_tokens({"eos_token": "<|endoftext|>"})
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A <|endoftext|>", special_tokens=[("<s>", bos), ("<|endoftext|>", eos)]
    )
    torch.manual_seed(_SEED)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2},
        projection_dim=16,
        # At CLIP's usual initialisation every label scores 1/n; larger random weights give
        # labels different scores, so ranking and the template's effect are visible.
        initializer_factor=20.0,
    )
    CLIPModel(config).save_pretrained(str(target_dir))
    tokenizer.save_pretrained(str(target_dir))
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, f"tiny CLIP for zero-shot-image-classification; {MEANINGLESS}")


# --------------------------------------------------------------------------------------------
# visual-question-answering
# --------------------------------------------------------------------------------------------
class VisualQuestionAnsweringBackend(Backend):
    """Answer classifiers over image and question (ViLT): a sigmoid per answer of the model's
    vocabulary, best ``top_k`` (default 5) first, as transformers' pipeline gives them."""

    tasks = frozenset({Task.VISUAL_QUESTION_ANSWERING})

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        from transformers import AutoImageProcessor, AutoModelForVisualQuestionAnswering, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(location))
        self.processor = AutoImageProcessor.from_pretrained(str(location))
        self.model = AutoModelForVisualQuestionAnswering.from_pretrained(str(location)).eval()
        self.max_length = _text_limit(self.tokenizer, self.model.config)
        self.meaningless = is_tiny(location)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        params = parse_parameters(task, parameters)
        image = _image_field(inputs)
        # ViLT's text positions are fixed: the question is padded to them, as its processor does.
        encoding = self.tokenizer(inputs["question"], padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt")
        pixels = self.processor(images=image, return_tensors="pt")
        with torch.inference_mode():
            scores = self.model(**encoding, **pixels).logits[0].sigmoid()
        values, indices = scores.topk(min(params.top_k or 5, scores.shape[-1]))
        labels = self.model.config.id2label
        return [{"score": float(value), "answer": labels[int(index)]} for value, index in zip(values.tolist(), indices.tolist())]


#: the tiny ViLT's answer vocabulary (VQA v2's most frequent answers)
_VQA_ANSWERS = ["yes", "no", "2", "1", "white", "woman", "man", "girl", "cat", "dog", "red", "blue"]


def build_tiny_vilt(target_dir: Path) -> None:
    from transformers import ViltConfig, ViltForQuestionAnswering, ViltImageProcessor

    from ._tokenizers import train_wordpiece

    tokenizer = train_wordpiece(target_dir)
    tokenizer.model_max_length = 40
    torch.manual_seed(_SEED)
    config = ViltConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        image_size=64, patch_size=16, max_position_embeddings=40, **label_config(_VQA_ANSWERS),
    )
    ViltForQuestionAnswering(config).save_pretrained(str(target_dir))
    tokenizer.save_pretrained(str(target_dir))
    ViltImageProcessor(size={"shortest_edge": 64}, size_divisor=16).save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, f"tiny ViLT for visual-question-answering; {MEANINGLESS}")


# --------------------------------------------------------------------------------------------
# document-question-answering
# --------------------------------------------------------------------------------------------
class DocumentQuestionAnsweringBackend(Backend):
    """OCR-free generative document readers (Donut: a Swin encoder over the page, a BART
    decoder): the decoder starts from ``<s_docvqa><s_question>{question}</s_question><s_answer>``
    and the answer is what it writes before ``</s_answer>``. Greedy decoding, so an answer is
    reproducible.

    Such a reader has no OCR step, no word boxes, no spans and one answer, so the parameters
    for extractive readers (``word_boxes``, ``lang``, ``doc_stride``, ``top_k > 1``...) are refused
    by name rather than ignored."""

    tasks = frozenset({Task.DOCUMENT_QUESTION_ANSWERING})
    TASK_PROMPT = "<s_docvqa><s_question>{}</s_question><s_answer>"
    MAX_ANSWER_TOKENS = 32

    def __init__(self, location: Any, ctx: LoadContext) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

        self.tokenizer = AutoTokenizer.from_pretrained(str(location))
        self.processor = AutoImageProcessor.from_pretrained(str(location))
        self.model = VisionEncoderDecoderModel.from_pretrained(str(location)).eval()
        positions = getattr(self.model.config.decoder, "max_position_embeddings", 512)
        self.max_prompt = positions - self.MAX_ANSWER_TOKENS
        self.meaningless = is_tiny(location)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        params = parse_parameters(task, parameters)
        reason = "this model reads the page itself (no OCR, no word spans)"
        refuse_unsupported(params, {
            "word_boxes": f"{reason}; word boxes are for extractive readers such as LayoutLM",
            "lang": f"{reason}, so there is no OCR language to set",
            "doc_stride": f"{reason}, so the page is not read in overlapping chunks",
            "max_seq_len": f"{reason}, so the page is not read in chunks",
            "handle_impossible_answer": "a generative reader always writes an answer; it cannot score 'no answer'",
        })
        if params.top_k is not None and params.top_k > 1:
            raise BackendInputError("parameters.top_k", "a generative reader writes one answer; use top_k=1")
        question = inputs["question"]
        image = _image_field(inputs)
        if params.max_question_len is not None:
            question_ids = self.tokenizer(question, add_special_tokens=False).input_ids[: params.max_question_len]
            question = self.tokenizer.decode(question_ids)
        prompt = self.tokenizer(self.TASK_PROMPT.format(question), add_special_tokens=False, return_tensors="pt").input_ids
        if prompt.shape[1] > self.max_prompt:
            raise BackendInputError("inputs.question", f"is {prompt.shape[1]} tokens with the task prompt; this model reads at most {self.max_prompt}")
        pixels = self.processor(images=image, return_tensors="pt").pixel_values
        with torch.inference_mode():
            output = self.model.generate(
                pixels, decoder_input_ids=prompt, do_sample=False, num_beams=1,
                max_new_tokens=min(params.max_answer_len or self.MAX_ANSWER_TOKENS, self.MAX_ANSWER_TOKENS),
            )
        written = self.tokenizer.decode(output[0, prompt.shape[1]:], skip_special_tokens=False)
        return [{"answer": _answer_text(written, self.tokenizer)}]


def _answer_text(written: str, tokenizer: Any) -> str:
    """The text before ``</s_answer>``, without the tokenizer's special tokens."""
    answer = written.split("</s_answer>", 1)[0]
    for token in tokenizer.all_special_tokens:
        answer = answer.replace(token, "")
    return re.sub(r"<s_[^>]*>|</s_[^>]*>", "", answer).strip()


_DONUT_TOKENS = ["<s_docvqa>", "<s_question>", "</s_question>", "<s_answer>", "</s_answer>"]


def build_tiny_donut(target_dir: Path) -> None:
    from transformers import DonutImageProcessor, DonutSwinConfig, MBartConfig, VisionEncoderDecoderConfig, VisionEncoderDecoderModel

    from ._tokenizers import train_bpe

    tokenizer = train_bpe(bos_eos=False)
    tokenizer.add_special_tokens({"additional_special_tokens": _DONUT_TOKENS})
    torch.manual_seed(_SEED)
    encoder = DonutSwinConfig(image_size=[64, 64], patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=4)
    decoder = MBartConfig(
        vocab_size=len(tokenizer), d_model=32, decoder_layers=2, encoder_layers=2, decoder_attention_heads=2,
        encoder_attention_heads=2, decoder_ffn_dim=64, encoder_ffn_dim=64, max_position_embeddings=128,
        is_decoder=True, add_cross_attention=True, scale_embedding=True, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    special = {"decoder_start_token_id": tokenizer.convert_tokens_to_ids("<s_docvqa>"),
               "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    for name, value in special.items():
        setattr(config, name, value)
    model = VisionEncoderDecoderModel(config)
    for name, value in special.items():
        setattr(model.generation_config, name, value)
    # Random weights readily write the prompt's own tags, which would leave an empty answer; a
    # tiny model is there to give visible text (the real Donut writes </s_answer> itself).
    prompt_tags = [tokenizer.convert_tokens_to_ids(tag) for tag in _DONUT_TOKENS if tag != "</s_answer>"]
    model.generation_config.suppress_tokens = sorted({*prompt_tags, tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.mask_token_id})
    model.save_pretrained(str(target_dir))
    tokenizer.save_pretrained(str(target_dir))
    DonutImageProcessor(size={"height": 64, "width": 64}, do_align_long_axis=False).save_pretrained(str(target_dir))
    write_tiny_marker(target_dir, f"tiny Donut (Swin encoder, BART decoder) for document-question-answering; {MEANINGLESS}")


LOADERS = {
    Task.ZERO_SHOT_IMAGE_CLASSIFICATION: ZeroShotImageBackend,
    Task.VISUAL_QUESTION_ANSWERING: VisualQuestionAnsweringBackend,
    Task.DOCUMENT_QUESTION_ANSWERING: DocumentQuestionAnsweringBackend,
}

TINY_BUILDERS = {
    Task.ZERO_SHOT_IMAGE_CLASSIFICATION: build_tiny_clip,
    Task.VISUAL_QUESTION_ANSWERING: build_tiny_vilt,
    Task.DOCUMENT_QUESTION_ANSWERING: build_tiny_donut,
}
