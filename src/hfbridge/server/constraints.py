"""Constrained decoding: JSON schemas, regular expressions and grammars compiled for a tokenizer.

This module owns constraints (DESIGN.md). The request layer describes what an answer must look
like as a :class:`ConstraintSpec` (``response_format``, TGI's ``grammar``, a tool set); a
:class:`ConstraintCompiler` bound to one tokenizer compiles it, caches it per spec, and bounds the
time a compile may take; the compiled :class:`Constraint` hands the generation loop one
:class:`SequenceMatcher` per sequence. The loop only asks a matcher for the allowed-token bitmask
and tells it which token was chosen: it knows nothing of schemas, regexes or tools.

The engine is llguidance, chosen by measurement (``benchmarks/results/constrained.md``): a 20-tool
schema compiles in ~7 ms (xgrammar ~15-30 ms, outlines-core ~2 s), a mask costs well under 1% of
a SmolLM2 forward pass, its parser has resource limits ("fuel") so a hostile schema fails fast
instead of running for seconds (xgrammar took 14 s on a 20,000-value enum), and it is one small
wheel with no dependencies (xgrammar pulls in triton, ~1 GB).

Masks are int32 bitmasks, one row per sequence (``allocate_bitmask(batch, vocab)``), applied to a
``[batch, vocab]`` logits tensor in one call (:func:`apply_bitmask`), so a batching loop can keep
one matcher per sequence and mask the whole batch at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Sequence

import torch

from ..schemas._base import FieldProblem

__all__ = [
    "ConstraintSpec",
    "ConstraintError",
    "Constraint",
    "SequenceMatcher",
    "ConstraintCompiler",
    "JSON_OPTIONS",
    "COMPILE_TIMEOUT_S",
    "allocate_bitmask",
    "apply_bitmask",
    "fill_bitmasks",
]

#: how JSON is written under a constraint: compact-but-readable separators and no free
#: whitespace, so a small model cannot wander off into indentation (and the output is short)
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
#: an answer waits at most this long for its grammar; past it the request gets a 400 (a
#: 20-tool schema takes ~7 ms; 2,000 alternative objects or 50,000 alternative words ~2 s)
COMPILE_TIMEOUT_S = 2.0
#: compiled grammars kept per tokenizer (an LRU; failures are remembered too)
CACHE_ENTRIES = 256
#: sources larger than this are refused before the engine sees them
MAX_SOURCE_BYTES = 1024 * 1024

Kind = Literal["json_schema", "regex", "lark"]


class ConstraintError(FieldProblem):
    """A constraint that cannot be used: a 400 naming ``field`` (the request field it came from)."""

    @property
    def message(self) -> str:
        return self.problem


@dataclass(frozen=True)
class ConstraintSpec:
    """What an answer must match, in a form that is hashable and says where it came from.

    ``source`` is the text the engine compiles (a JSON schema serialised as given: the order of
    its ``properties`` is the order the answer writes them in), so it keys the caches.
    """

    kind: Kind
    source: str
    #: the request field named in errors, e.g. ``response_format`` or ``parameters.grammar``
    field: str

    @classmethod
    def json_schema(cls, schema: Any, field: str) -> "ConstraintSpec":
        # Keys keep their order: the order of ``properties`` is the order they are written in.
        return cls("json_schema", json.dumps(schema, ensure_ascii=False), field)

    @classmethod
    def regex(cls, pattern: str, field: str) -> "ConstraintSpec":
        return cls("regex", pattern, field)

    @classmethod
    def lark(cls, grammar: str, field: str) -> "ConstraintSpec":
        return cls("lark", grammar, field)

    @property
    def key(self) -> str:
        """A digest for caches (the compile cache and the answer cache)."""
        return hashlib.sha256(f"{self.kind}\0{self.source}".encode()).hexdigest()


def embedded_json(schema: Any) -> str:
    """A schema as llguidance's Lark ``%json`` block, written with :data:`JSON_OPTIONS`."""
    return "%json " + json.dumps({**schema, "x-guidance": JSON_OPTIONS}, ensure_ascii=False)


# --------------------------------------------------------------------------------------------
# Bitmasks (shared by a single sequence and a batch)
# --------------------------------------------------------------------------------------------
_BIT_SHIFTS = torch.arange(32, dtype=torch.int32)


def allocate_bitmask(batch: int, vocab_size: int) -> torch.Tensor:
    """One row of ``ceil(vocab/32)`` int32 words per sequence, all tokens allowed."""
    return torch.full((batch, (vocab_size + 31) // 32), -1, dtype=torch.int32)


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor) -> None:
    """Set the logits of disallowed tokens to -inf, in place, for every row at once.

    ``logits`` is ``[batch, vocab]`` and ``bitmask`` ``[batch, words]``; bit ``i % 32`` of word
    ``i // 32`` allows token ``i``. Logits past the tokenizer's vocabulary are never allowed.
    """
    bits = (bitmask.unsqueeze(-1) >> _BIT_SHIFTS) & 1
    allowed = bits.view(bitmask.shape[0], -1)[:, : logits.shape[-1]].bool()
    logits.masked_fill_(~allowed, float("-inf"))


def fill_bitmasks(matchers: Sequence["SequenceMatcher | None"], bitmask: torch.Tensor) -> None:
    """Row ``i`` of ``bitmask`` for ``matchers[i]``; rows of unconstrained sequences (None)
    allow every token. The batching loop's entry point: one call per step for the batch."""
    for row, matcher in enumerate(matchers):
        if matcher is None:
            bitmask[row].fill_(-1)
        else:
            matcher.fill_bitmask(bitmask, row)


# --------------------------------------------------------------------------------------------
# Compiled constraints and their per-sequence matchers
# --------------------------------------------------------------------------------------------
def _first_line(message: str) -> str:
    """An engine error as one line: what went wrong, without the parser state llguidance
    appends after ``<state>`` (it echoes generated text), at most 300 characters."""
    head = message.split("<state>", 1)[0].removeprefix("Parser Error: ")
    text = " ".join(head.split())
    return (text[:297] + "...") if len(text) > 300 else (text or "the grammar rejected the text")


class SequenceMatcher:
    """The state of one sequence under a constraint: which tokens may come next.

    Not thread-safe; one per sequence. ``finished`` means nothing but an end-of-sequence token
    can follow, so the loop can stop without another forward pass.
    """

    def __init__(self, matcher: Any, field: str, vocab_size: int) -> None:
        self._matcher = matcher
        self._field = field
        self.vocab_size = vocab_size
        self._own_mask: torch.Tensor | None = None

    def fill_bitmask(self, bitmask: torch.Tensor, row: int = 0) -> None:
        target = bitmask[row]
        if not target.is_contiguous():
            raise ValueError("bitmask rows must be contiguous")
        self._matcher.unsafe_compute_mask_ptr(target.data_ptr(), target.numel() * target.element_size())
        self._raise_if_failed()

    def mask(self, logits: torch.Tensor) -> None:
        """Mask one sequence's ``[1, vocab]`` logits in place (the unbatched loop's shortcut)."""
        if self._own_mask is None:
            self._own_mask = allocate_bitmask(1, self.vocab_size)
        self.fill_bitmask(self._own_mask, 0)
        apply_bitmask(logits, self._own_mask)

    def accept(self, token_id: int) -> None:
        if not self._matcher.consume_token(token_id):
            self._raise_if_failed()
            raise ConstraintError(self._field, f"token {token_id} does not satisfy the constraint")

    def forced_tokens(self) -> list[int]:
        """The tokens the constraint allows no alternative to from here (``{"name": "`` at the
        start of a tool call), already accepted. The loop feeds them to the model in one forward
        pass instead of one pass each; they are certain, so their log-probability is 0."""
        forced = self._matcher.compute_ff_tokens()
        if forced and not self._matcher.consume_tokens(forced):
            self._raise_if_failed()
        return list(forced)

    @property
    def finished(self) -> bool:
        return bool(self._matcher.is_stopped())

    @property
    def accepting(self) -> bool:
        """The text so far is a complete answer (more may still follow)."""
        return bool(self._matcher.is_accepting())

    def _raise_if_failed(self) -> None:
        if self._matcher.is_error():
            raise ConstraintError(self._field, f"the constraint could not be applied: {_first_line(self._matcher.get_error())}")


class Constraint:
    """A compiled constraint: immutable, cached, shared by every request that asks for it."""

    def __init__(self, spec: ConstraintSpec, template: Any, vocab_size: int) -> None:
        self.spec = spec
        self._template = template
        self._vocab_size = vocab_size

    def matcher(self) -> SequenceMatcher:
        """A fresh matcher at the start of the answer (a copy of the compiled state: ~1 us)."""
        return SequenceMatcher(self._template.deep_copy(), self.spec.field, self._vocab_size)


# --------------------------------------------------------------------------------------------
# Compiling, cached and bounded
# --------------------------------------------------------------------------------------------
_executor_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _compile_pool() -> ThreadPoolExecutor:
    """Compiles run here, never on the event loop nor in the inference pool: llguidance drops
    the GIL while it builds a grammar, so a slow compile delays nobody else."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hfbridge-grammar")
        return _executor


def _limits() -> Any:
    """The engine's own work bounds, at their defaults (lexer construction ~20 ms of fuel, a
    mask step ~15 ms, Earley items per step, grammar size): a grammar that needs more fails
    with an error instead of running on. Verbose errors are off: they would echo parser state."""
    import llguidance

    return llguidance.LLParserLimits(verbose_errors=False)


class ConstraintCompiler:
    """Compiles specs for one tokenizer; one per loaded model.

    Creating the engine's view of the tokenizer takes ~0.5 s, so it happens on first use, once.
    """

    def __init__(self, tokenizer: Any, vocab_size: int, eos_ids: Iterable[int]) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._eos_ids = sorted(set(eos_ids))
        self._engine_tokenizer: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Constraint | ConstraintError] = OrderedDict()
        self._inflight: dict[str, Future] = {}

    # -- public ---------------------------------------------------------------------------------
    def compile(self, spec: ConstraintSpec) -> Constraint:
        """Compile now, on this thread (cached). Raises :class:`ConstraintError`."""
        with self._lock:
            cached = self._cache.get(spec.key)
            if cached is not None:
                self._cache.move_to_end(spec.key)
        if cached is None:
            cached = self._build(spec)
            with self._lock:
                self._cache[spec.key] = cached
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        if isinstance(cached, ConstraintError):
            raise cached
        return cached

    async def compile_async(self, spec: ConstraintSpec, timeout: float | None = None) -> Constraint:
        """Compile off the event loop, waiting at most ``timeout`` seconds (:data:`COMPILE_TIMEOUT_S`).

        Concurrent requests for one spec share one compile. A compile that runs out of time
        still finishes in the background (bounded by the engine's limits) and lands in the
        cache, so the caller gets a clear 400 now and a retry is instant. The engine's view of
        the tokenizer, built once per model, is not part of any request's time bound.
        """
        if self._engine_tokenizer is None:
            await asyncio.wrap_future(_compile_pool().submit(self.engine_tokenizer))
        with self._lock:
            cached = self._cache.get(spec.key)
            future = self._inflight.get(spec.key)
            if cached is None and future is None:
                future = _compile_pool().submit(self.compile, spec)
                self._inflight[spec.key] = future
                future.add_done_callback(lambda _: self._forget(spec.key))
        if isinstance(cached, Constraint):
            return cached
        if isinstance(cached, ConstraintError):
            raise cached
        assert future is not None
        timeout = COMPILE_TIMEOUT_S if timeout is None else timeout
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except asyncio.TimeoutError:
            raise ConstraintError(spec.field, f"took longer than {timeout:g} s to compile; simplify it") from None

    def cached(self, spec: ConstraintSpec) -> bool:
        with self._lock:
            return spec.key in self._cache

    # -- internals --------------------------------------------------------------------------------
    def _forget(self, key: str) -> None:
        with self._lock:
            self._inflight.pop(key, None)

    def engine_tokenizer(self) -> Any:
        with self._lock:
            if self._engine_tokenizer is None:
                import llguidance.hf

                self._engine_tokenizer = llguidance.hf.from_tokenizer(
                    self._tokenizer, n_vocab=self._vocab_size, eos_token=self._eos_ids or None
                )
            return self._engine_tokenizer

    def _build(self, spec: ConstraintSpec) -> Constraint | ConstraintError:
        import llguidance

        if len(spec.source.encode()) > MAX_SOURCE_BYTES:
            return ConstraintError(spec.field, f"is larger than {MAX_SOURCE_BYTES // 1024} KiB")
        try:
            if spec.kind == "json_schema":
                grammar = llguidance.LLMatcher.grammar_from_json_schema(spec.source, defaults=JSON_OPTIONS)
            elif spec.kind == "regex":
                grammar = llguidance.LLMatcher.grammar_from_regex(spec.source)
            else:
                grammar = llguidance.LLMatcher.grammar_from_lark(spec.source)
        except ValueError as exc:
            return ConstraintError(spec.field, f"cannot be compiled: {_first_line(str(exc))}")
        tokenizer = self.engine_tokenizer()
        matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0, limits=_limits())
        if not matcher.is_error():
            # The engine builds parts of its lexer lazily; the first mask pays for them here,
            # inside the bounded compile, and shows errors before any token is generated.
            probe = allocate_bitmask(1, self._vocab_size)
            matcher.unsafe_compute_mask_ptr(probe.data_ptr(), probe.numel() * 4)
        if matcher.is_error():
            return ConstraintError(spec.field, f"cannot be compiled: {_first_line(matcher.get_error())}")
        return Constraint(spec, matcher, self._vocab_size)
