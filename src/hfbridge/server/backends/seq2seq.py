"""Encoder-decoder generation: summarization, translation and text2text-generation.

One loaded checkpoint answers all three tasks (a T5 summarises, translates and follows
instructions), so every task's loader gives the same backend. ``AutoModelForSeq2SeqLM.generate``
is called directly, as transformers 5 has no pipelines for these tasks.

Decoding is greedy (``num_beams=1``, no sampling) whatever the checkpoint's generation config
says, so that an answer is reproducible; the checkpoint's other generation settings (forced
tokens, n-gram blocking) still apply. Inputs longer than the model takes (its
``model_max_length`` or position table) are truncated by the tokenizer, keeping the start; output
lengths are capped at the decoder's position table, since decoding past it would crash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    M2M100Config,
    M2M100ForConditionalGeneration,
    NllbTokenizer,
    T5Config,
    T5ForConditionalGeneration,
)

from ...tasks import Task
from . import Backend, BackendInputError, LoadContext
from ._common import MEANINGLESS, TINY_MAX_POSITIONS, cancellable_generate, input_limit, is_tiny, location_loader, write_tiny_marker
from ._tokenizers import train_bpe, training_corpus

__all__ = ["LOADERS", "TINY_BUILDERS", "Seq2SeqBackend"]

_SEED = 0
#: summaries default to a short paragraph
_SUMMARY_MIN_LENGTH = 0
_SUMMARY_MAX_LENGTH = 40
#: a translation may be as long as a long paragraph
_TRANSLATION_MAX_LENGTH = 256
_TEXT2TEXT_MAX_NEW_TOKENS = 50


class Seq2SeqBackend(Backend):
    """An encoder-decoder checkpoint answering summarization, translation and text2text.

    Translation follows what the checkpoint offers:

    * multilingual tokenizers (NLLB, mBART-50, M2M100) have language codes: ``src_lang`` sets
      the source code the tokenizer adds, ``tgt_lang`` the code the decoder is forced to start
      with (defaulting to the tokenizer's saved ``tgt_lang``);
    * T5-style checkpoints list ``translation_XX_to_YY`` prefixes in their config:
      ``src_lang``/``tgt_lang`` pick one (the first when neither is given, as transformers does);
    * single-pair models (Marian) have neither, so a given language cannot be honoured and is
      an error rather than silently ignored.
    """

    tasks = frozenset({Task.SUMMARIZATION, Task.TRANSLATION, Task.TEXT2TEXT_GENERATION})

    def __init__(self, location: Any) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(str(location))
        self.model = AutoModelForSeq2SeqLM.from_pretrained(str(location)).eval()
        self.max_input = input_limit(self.tokenizer, self.model.config)
        self.meaningless = is_tiny(location)
        self.task_params: dict[str, dict[str, Any]] = getattr(self.model.config, "task_specific_params", None) or {}
        self.has_lang_codes = hasattr(self.tokenizer, "src_lang")
        # Requests set src_lang on the shared tokenizer; each one starts again from the saved one.
        self.default_src_lang = getattr(self.tokenizer, "src_lang", None)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        if task is Task.SUMMARIZATION:
            return [{"summary_text": self._summarize(inputs, parameters)}]
        if task is Task.TRANSLATION:
            return [{"translation_text": self._translate(inputs, parameters)}]
        return [{"generated_text": self._text2text(inputs, parameters)}]

    def _summarize(self, text: str, parameters: dict[str, Any]) -> str:
        min_length = parameters.get("min_length", _SUMMARY_MIN_LENGTH)
        max_length = parameters.get("max_length", _SUMMARY_MAX_LENGTH)
        if min_length > max_length:
            raise BackendInputError("parameters.min_length", f"{min_length} is more than max_length ({max_length})")
        prefix = self.task_params.get("summarization", {}).get("prefix", "")
        return self._generate(prefix + text, min_length=min_length, max_length=max_length)

    def _translate(self, text: str, parameters: dict[str, Any]) -> str:
        src, tgt = parameters.get("src_lang"), parameters.get("tgt_lang")
        max_length = parameters.get("max_length", _TRANSLATION_MAX_LENGTH)
        if self.has_lang_codes:
            target = tgt or getattr(self.tokenizer, "tgt_lang", None)
            if not target:
                raise BackendInputError("parameters.tgt_lang", "this multilingual model needs the target language code")
            forced = self._lang_id(target, "parameters.tgt_lang")
            source = src or self.default_src_lang
            if not source:
                raise BackendInputError("parameters.src_lang", "this multilingual model needs the source language code")
            self._lang_id(source, "parameters.src_lang")
            self.tokenizer.src_lang = source
            return self._generate(text, max_length=max_length, forced_bos_token_id=forced)
        return self._generate(self._translation_prefix(src, tgt) + text, max_length=max_length)

    def _lang_id(self, code: str, field: str) -> int:
        """The vocabulary id of a language code; M2M100 spells codes as ``__en__`` tokens."""
        spelled = getattr(self.tokenizer, "lang_code_to_token", None)
        token = spelled.get(code) if isinstance(spelled, dict) else code
        token_id = self.tokenizer.convert_tokens_to_ids(token) if token is not None else None
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise BackendInputError(field, f"{code!r} is not a language code of this model")
        return token_id

    def _translation_prefix(self, src: str | None, tgt: str | None) -> str:
        """The task prefix (T5's "translate English to German: ") for the requested pair; the
        config's ``translation_XX_to_YY`` entries are the only languages such a model knows."""
        pairs = {}
        for key, settings in self.task_params.items():
            if key.startswith("translation_") and "_to_" in key:
                source, target = key[len("translation_"):].split("_to_", 1)
                pairs[(source, target)] = settings.get("prefix", "")
        if not pairs:
            if src is None and tgt is None:
                return ""
            raise BackendInputError(
                "parameters.tgt_lang" if tgt is not None else "parameters.src_lang",
                "this model translates one fixed language pair and has no language codes; leave src_lang and tgt_lang unset",
            )
        matches = [pair for pair in pairs if src in (None, pair[0]) and tgt in (None, pair[1])]
        if not matches:
            known = ", ".join(f"{source}->{target}" for source, target in pairs)
            wrong_target = tgt is not None and all(pair[1] != tgt for pair in pairs)
            raise BackendInputError(
                "parameters.tgt_lang" if wrong_target else "parameters.src_lang",
                f"this model translates only {known}",
            )
        return pairs[matches[0]]

    def _text2text(self, text: str, parameters: dict[str, Any]) -> str:
        # max_new_tokens wins over max_length, as in transformers.
        if parameters.get("max_new_tokens"):
            limit = {"max_new_tokens": parameters["max_new_tokens"]}
        elif parameters.get("max_length"):
            limit = {"max_length": parameters["max_length"]}
        else:
            limit = {"max_new_tokens": _TEXT2TEXT_MAX_NEW_TOKENS}
        return self._generate(text, **limit)

    def _generate(self, text: str, **settings: Any) -> str:
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if positions:  # the decoder's start token takes a position too
            for name, cap in (("max_length", positions), ("min_length", positions), ("max_new_tokens", positions - 1)):
                if name in settings:
                    settings[name] = min(settings[name], cap)
        encoding = self.tokenizer(text, truncation=True, max_length=self.max_input, return_tensors="pt")
        with torch.inference_mode():
            output = cancellable_generate(self.model, **encoding, num_beams=1, do_sample=False, **settings)
        return self.tokenizer.decode(output[0], skip_special_tokens=True)


# --------------------------------------------------------------------------------------------
# Tiny random-weight models
# --------------------------------------------------------------------------------------------
#: the language codes of the tiny multilingual model
TINY_LANGUAGES = ("eng_Latn", "fra_Latn", "deu_Latn")
#: T5's own translation prefixes, so the tiny T5 exercises prefix selection
_T5_TASK_PARAMS = {
    "summarization": {"prefix": "summarize: "},
    "translation_en_to_de": {"prefix": "translate English to German: "},
    "translation_en_to_fr": {"prefix": "translate English to French: "},
}
#: random weights this large make the output depend on the input (at the usual 0.02 every input
#: decodes to the same tokens), so tests can see a language code or a prefix change the output
_INIT_STD = 0.5
_SMALL = {"init_std": _INIT_STD, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,
          "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64}


def train_nllb_tokenizer(languages: tuple[str, ...] = TINY_LANGUAGES, vocab_size: int = 800) -> Any:
    """An NLLB-style tokenizer (SentencePiece-like BPE plus language-code tokens), trained
    locally, so that a tiny model runs the language-code path of real multilingual models."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    bpe.train_from_iterator(training_corpus(), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials))
    trained = json.loads(bpe.to_str())["model"]
    return NllbTokenizer(
        vocab=trained["vocab"], merges=[tuple(merge) for merge in trained["merges"]],
        extra_special_tokens=list(languages), src_lang=languages[0], tgt_lang=languages[1],
    )


def _save(target: Path, model: Any, tokenizer: Any, description: str) -> None:
    # Random weights readily pick <mask> or <pad>, which decode to nothing; a tiny model is
    # there to give visible text, so it never generates them (saved in generation_config.json).
    unwanted = (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.mask_token_id)
    model.generation_config.suppress_tokens = sorted({token for token in unwanted if token is not None})
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    write_tiny_marker(target, description)


def _build_bart(target: Path) -> None:
    tokenizer = train_bpe()
    tokenizer.model_max_length = TINY_MAX_POSITIONS
    config = BartConfig(
        vocab_size=len(tokenizer), max_position_embeddings=TINY_MAX_POSITIONS, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=tokenizer.eos_token_id, **_SMALL,
    )
    torch.manual_seed(_SEED)
    _save(Path(target), BartForConditionalGeneration(config), tokenizer, f"tiny BART for summarization; {MEANINGLESS}")


def _build_t5(target: Path) -> None:
    tokenizer = train_bpe()
    tokenizer.model_max_length = TINY_MAX_POSITIONS
    config = T5Config(
        vocab_size=len(tokenizer), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id, task_specific_params=_T5_TASK_PARAMS,
        initializer_factor=10 * _INIT_STD,  # T5 scales its own 1/sqrt(d) initialisation by this
    )
    torch.manual_seed(_SEED)
    _save(
        Path(target), T5ForConditionalGeneration(config), tokenizer,
        f"tiny T5 for text2text-generation (with T5's summarization and en->de/fr prefixes); {MEANINGLESS}",
    )


def _build_nllb(target: Path) -> None:
    tokenizer = train_nllb_tokenizer()
    tokenizer.model_max_length = TINY_MAX_POSITIONS
    config = M2M100Config(
        vocab_size=len(tokenizer), max_position_embeddings=TINY_MAX_POSITIONS, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id, **_SMALL,
    )
    torch.manual_seed(_SEED)
    languages = ", ".join(TINY_LANGUAGES)
    _save(
        Path(target), M2M100ForConditionalGeneration(config), tokenizer,
        f"tiny NLLB-style (M2M100) model for translation with language codes {languages}; {MEANINGLESS}",
    )


TINY_BUILDERS: dict[Task, Callable[[Path], None]] = {
    Task.SUMMARIZATION: _build_bart,
    Task.TRANSLATION: _build_nllb,
    Task.TEXT2TEXT_GENERATION: _build_t5,
}


LOADERS: dict[Task, Callable[[Any, LoadContext], Backend]] = dict.fromkeys(TINY_BUILDERS, location_loader(Seq2SeqBackend))
