"""Continuous batching: concurrent generations of one model share its forward passes.

One scheduler thread per model runs the batch; each request's own thread only waits for its
tokens. Between two decoding steps the scheduler

1. drops the requests that left (their reader stopped: a stop sequence, a closed stream) or were
   cancelled (their client went away), freeing their slots at once;
2. admits waiting requests (:func:`..decoding.admit`: bounded in requests, reserved cache
   positions and prompt tokens per round): the prompts that join together are prefilled in one
   forward pass of their own (left-padded, the running requests wait for it; measured: 15
   prompts of 20 tokens in one pass took half the time of 15 passes), and their key/value
   caches merged into the batch's;
3. runs one forward pass over every running request and lets each choose its next tokens;
   a request that is done (end of sequence, its token budget) leaves in the same step.

What a request decides (penalties, its constraint's mask, sampling with its own seeded
generator, log-probabilities) is the :class:`Sequence`'s business, written in the generation
backend; this module only knows tensors. Sampling rows one by one from their own logits keeps
every per-request parameter intact, and a seeded request draws from its own generator, so it
gives the same text alone as in a batch.

The batch cache is the model's own ``DynamicCache`` holding one row per request, **left-padded**
to a common length: a row that joins with a shorter history is padded on the left, a longer one
pads the others. The attention mask marks the padding and every row gets its own position ids
(the count of its real tokens), so each row's attention and rotary positions are exactly those
of the request alone: padded keys get zero weight (measured: greedy SmolLM2 answers are
token-for-token identical alone and in batches of 4, and ``tests/server/test_continuous.py``
checks it). A step feeds every row the same number of new tokens; a row with fewer (a constraint
forces several tokens at once into one row) is padded inside the step, which the mask also
hides. Columns that are padding for every row (left behind by a request that left) are cut off.

Why not one cache per request, concatenated for each step: that copies every row's whole cache
on every step; merging into one padded cache copies only when a request joins or leaves.

Caches other than plain per-layer key/value tensors (sliding windows, hybrid models) are not
merged: such a model decodes its requests one at a time through the same scheduler.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from ..cancellation import Cancelled, current_event
from ..decoding import Decoding, admit

__all__ = ["ContinuousBatcher", "Sequence", "BatchStats"]

logger = logging.getLogger("hfbridge.server")

#: what a padded position holds; masked out, so any valid id does
_PAD_ID = 0
_ONE_AT_A_TIME = Decoding(max_batch_size=1)


class Sequence:
    """One request as the scheduler drives it; the generation backend subclasses it.

    :meth:`start` and :meth:`advance` run on the scheduler's thread and hand their results to
    the request's thread with :meth:`emit`; whatever they raise fails that request alone.
    """

    def __init__(self, prompt_length: int, reservation: int) -> None:
        #: prompt tokens to prefill (what admission counts per round)
        self.prompt_length = prompt_length
        #: cache positions the request may need in all (prompt + budget)
        self.reservation = reservation
        #: set (on the scheduler's thread) by the request's cancellation: its client went away
        self.cancel_event: threading.Event | None = None
        #: set by the request's thread when it stops reading: the scheduler drops the row
        self.left = False
        self._outbox: "queue.SimpleQueue[tuple[str, Any]]" = queue.SimpleQueue()

    # -- decisions (scheduler thread) -------------------------------------------------------------
    def start(self) -> list[int] | None:
        """The tokens to prefill, or None when the answer is complete without the model."""
        raise NotImplementedError

    def advance(self, logits: torch.Tensor, prompt_logits: torch.Tensor | None) -> list[int] | None:
        """Given the ``[1, vocab]`` logits after the last fed token (and, after the prefill when
        :attr:`wants_prompt_logits`, every prefilled position's), emit what was chosen and
        return the tokens to feed next, or None when the answer is complete."""
        raise NotImplementedError

    #: whether :meth:`advance` needs the prompt's logits after the prefill (not just the last)
    wants_prompt_logits = False

    def emit(self, item: Any) -> None:
        self._outbox.put(("item", item))

    # -- scheduler -> request ------------------------------------------------------------------
    @property
    def gone(self) -> bool:
        return self.left or (self.cancel_event is not None and self.cancel_event.is_set())

    def _end(self, kind: str = "end", detail: Any = None) -> None:
        self._outbox.put((kind, detail))


@dataclass
class BatchStats:
    """What the scheduler has done (observable by operators and tests; never reset)."""

    #: requests admitted into the batch
    admitted: int = 0
    #: of those, the ones that joined while other requests were decoding
    joined_running: int = 0
    #: batched decoding steps (one forward pass over the running requests each)
    steps: int = 0
    #: steps that decoded more than one request
    shared_steps: int = 0
    #: the sum of the batch sizes over all steps (``row_steps / steps`` is the mean batch)
    row_steps: int = 0
    #: the most requests decoded in one step
    max_batch: int = 0
    #: forward passes that prefilled joining requests (those joining together share one)
    prefills: int = 0
    #: requests dropped before their end: cancelled, or their reader stopped (stop sequences)
    left_early: int = 0


class _KV:
    """Row and column surgery on a cache of per-layer ``[batch, heads, length, dim]`` tensors
    (``DynamicCache``: ``.layers[i].keys/.values`` in transformers 5, ``key_cache/value_cache``
    lists in 4.x)."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache

    @staticmethod
    def supports(cache: Any) -> bool:
        layers = getattr(cache, "layers", None)
        if layers is not None:
            return all(type(layer).__name__ == "DynamicLayer" for layer in layers)
        return isinstance(getattr(cache, "key_cache", None), list)

    def _pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if getattr(self.cache, "layers", None) is not None:
            return [(layer.keys, layer.values) for layer in self.cache.layers]
        return list(zip(self.cache.key_cache, self.cache.value_cache))

    def _set(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        if getattr(self.cache, "layers", None) is not None:
            for layer, (k, v) in zip(self.cache.layers, pairs):
                layer.keys, layer.values = k, v
        else:
            self.cache.key_cache[:] = [k for k, _ in pairs]
            self.cache.value_cache[:] = [v for _, v in pairs]

    def pad_left(self, columns: int) -> None:
        if columns:
            self._set([(F.pad(k, (0, 0, columns, 0)), F.pad(v, (0, 0, columns, 0))) for k, v in self._pairs()])

    def append_rows(self, other: "_KV") -> None:
        """``other``'s rows below these (same length: pad one of them first)."""
        self._set([(torch.cat([k, ok]), torch.cat([v, ov])) for (k, v), (ok, ov) in zip(self._pairs(), other._pairs())])

    def keep_rows(self, rows: torch.Tensor) -> None:
        self._set([(k.index_select(0, rows), v.index_select(0, rows)) for k, v in self._pairs()])

    def drop_columns(self, columns: int) -> None:
        if columns:
            self._set([(k[:, :, columns:], v[:, :, columns:]) for k, v in self._pairs()])


def _leading_padding(mask: torch.Tensor) -> int:
    """How many first columns of ``mask`` are padding in every row."""
    real = mask.any(dim=0).nonzero()
    return int(real[0]) if real.numel() else 0


class ContinuousBatcher:
    """The scheduler of one model's generations (see the module docstring).

    :meth:`generate` is what a request's thread calls: it queues the sequence and yields what
    the sequence emits, as the scheduler produces it. The scheduler thread runs only while there
    is work; the first request after an idle spell starts it again.
    """

    def __init__(self, model: Any, settings: Decoding | None = None, *, cache_name: str = "past_key_values") -> None:
        self.model = model
        self.settings = settings or Decoding()
        self._cache_name = cache_name
        self._logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters
        self.stats = BatchStats()
        self._lock = threading.Lock()
        self._waiting: deque[Sequence] = deque()
        self._thread: threading.Thread | None = None
        # the batch (scheduler thread only)
        self._rows: list[Sequence] = []
        self._joining: list[Sequence] = []  # admitted, being prefilled
        self._fresh: list[list[int]] = []  # per row: the tokens its next step feeds
        self._positions: list[int] = []  # per row: the position of its next token
        self._kv: _KV | None = None
        self._mask: torch.Tensor | None = None  # [rows, cache length], 1 for real tokens
        #: whether the model's cache can be merged (known from the first prefill; until then,
        #: and for good when it cannot, requests decode one at a time)
        self._mergeable: bool | None = None

    # -- the request's side --------------------------------------------------------------------
    def generate(self, sequence: Sequence) -> Iterator[Any]:
        """Yields the items ``sequence`` emits; raises what failed it, or :class:`Cancelled`
        when its job was cancelled. Closing the iterator takes the sequence out of the batch."""
        sequence.cancel_event = current_event()
        with self._lock:
            self._waiting.append(sequence)
            if self._thread is None:
                # not a daemon: it ends as soon as the batch is empty, and an interpreter exiting
                # while it is inside torch aborts the process
                self._thread = threading.Thread(target=self._run, name="hfbridge-decode")
                self._thread.start()
        try:
            while True:
                kind, item = sequence._outbox.get()
                if kind == "item":
                    yield item
                elif kind == "end":
                    return
                elif kind == "cancelled":
                    raise Cancelled()
                else:
                    raise item
        finally:
            sequence.left = True

    # -- the scheduler ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while self._cycle():
                pass
        except BaseException as exc:  # a failed forward pass: every request in flight fails with it
            logger.exception("batched decoding failed")
            with self._lock:
                everyone = [*self._rows, *self._joining, *self._waiting]
                self._waiting.clear()
                self._thread = None
            self._reset()
            for sequence in everyone:
                sequence._end("error", RuntimeError(f"batched decoding failed: {exc!r}"))

    def _cycle(self) -> bool:
        """Leave, join, step; False (having marked the thread gone) when there is no work."""
        self._remove([i for i, row in enumerate(self._rows) if row.gone], early=True)
        with self._lock:
            for sequence in [s for s in self._waiting if s.gone]:
                self._waiting.remove(sequence)
                self._finish(sequence, early=True)
            capacity = self.settings if self._mergeable else _ONE_AT_A_TIME
            reserved = sum(row.reservation for row in self._rows)
            count = admit([(s.prompt_length, s.reservation) for s in self._waiting], len(self._rows), reserved, capacity)
            self._joining = [self._waiting.popleft() for _ in range(count)]
            if not self._joining and not self._rows:
                self._thread = None
                return False
        if self._joining:
            self._join(self._joining)
            self._joining = []
        if self._rows:
            self._step()
        return True

    def _finish(self, sequence: Sequence, *, early: bool = False, error: BaseException | None = None) -> None:
        if error is not None:
            sequence._end("error", error)
        elif sequence.cancel_event is not None and sequence.cancel_event.is_set():
            sequence._end("cancelled")
        else:
            sequence._end()
        if early:
            self.stats.left_early += 1

    def _join(self, joining: list[Sequence]) -> None:
        """Prefill the joining sequences and merge the ones that go on into the batch."""
        ready: list[tuple[Sequence, list[int]]] = []
        for sequence in joining:
            self.stats.admitted += 1
            self.stats.joined_running += bool(self._rows)
            try:
                tokens = sequence.start()
            except Exception as exc:  # this request's own failure (a constraint)
                self._finish(sequence, error=exc)
                continue
            if tokens is None:
                self._finish(sequence)
            else:
                ready.append((sequence, tokens))
        for group in self._prefill_groups(ready):
            self._prefill(group)

    def _prefill_groups(self, ready: list[tuple[Sequence, list[int]]]) -> list[list[tuple[Sequence, list[int]]]]:
        """Consecutive runs of prompts prefilled in one forward pass, left-padded to the longest,
        the padded block within ``max_prefill_tokens``. A sequence that wants its prompt's
        logits goes alone (all positions' logits of a whole block would be large), as does every
        one while the cache is not known to be mergeable."""
        groups: list[list[tuple[Sequence, list[int]]]] = []
        open_group = False  # whether the last group may take more
        for item in ready:
            solo = item[0].wants_prompt_logits or not self._mergeable or not self._logits_to_keep
            if (open_group and not solo
                    and (len(groups[-1]) + 1) * max(len(t) for _, t in [*groups[-1], item]) <= self.settings.max_prefill_tokens):
                groups[-1].append(item)
            else:
                groups.append([item])
                open_group = not solo
        return groups

    def _prefill(self, group: list[tuple[Sequence, list[int]]]) -> None:
        width = max(len(tokens) for _, tokens in group)
        mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for _, t in group], dtype=torch.long)
        inputs: dict[str, Any] = {"input_ids": torch.tensor([[_PAD_ID] * (width - len(t)) + t for _, t in group]), "use_cache": True}
        if len(group) > 1:  # left-padded: the mask hides the padding, positions count real tokens
            inputs["attention_mask"] = mask
            inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        if self._logits_to_keep and not group[0][0].wants_prompt_logits:
            inputs["logits_to_keep"] = 1
        self.stats.prefills += 1
        survivors: list[int] = []
        following: list[list[int]] = []
        with torch.inference_mode():
            out = self.model(**inputs)
            logits = out.logits.float()
            for index, (sequence, _) in enumerate(group):
                try:
                    tokens = sequence.advance(logits[index, -1:], logits[index] if sequence.wants_prompt_logits else None)
                except Exception as exc:  # this request's own failure (a constraint, its parameters)
                    self._finish(sequence, error=exc)
                    continue
                if tokens is None:
                    self._finish(sequence)
                else:
                    survivors.append(index)
                    following.append(tokens)
        cache = getattr(out, self._cache_name)
        self._mergeable = _KV.supports(cache)
        if not survivors:
            return
        if self._rows and not self._mergeable:  # admission waits for the first cache to know
            raise RuntimeError("a cache that cannot be merged joined a running batch")
        kv = _KV(cache)
        if len(survivors) < len(group):
            rows = torch.tensor(survivors)
            kv.keep_rows(rows)
            mask = mask.index_select(0, rows)
        lead = _leading_padding(mask)
        kv.drop_columns(lead)
        self._merge(kv, mask[:, lead:])
        for index, tokens in zip(survivors, following):
            self._rows.append(group[index][0])
            self._fresh.append(tokens)
            self._positions.append(len(group[index][1]))

    def _merge(self, kv: _KV, mask: torch.Tensor) -> None:
        """Appends ``kv``'s rows (with their ``mask``) to the batch, left-padding whichever is shorter."""
        if self._kv is None or self._mask is None:
            self._kv, self._mask = kv, mask
            return
        common = max(self._mask.shape[1], mask.shape[1])
        self._kv.pad_left(common - self._mask.shape[1])
        kv.pad_left(common - mask.shape[1])
        self._kv.append_rows(kv)
        self._mask = torch.cat([F.pad(self._mask, (common - self._mask.shape[1], 0)), F.pad(mask, (common - mask.shape[1], 0))])

    def _step(self) -> None:
        """One forward pass over every row; each row chooses, finished rows leave."""
        assert self._kv is not None and self._mask is not None
        width = max(len(fresh) for fresh in self._fresh)
        ids, mask, positions = [], [], []
        for fresh, start in zip(self._fresh, self._positions):
            pad = width - len(fresh)
            ids.append([_PAD_ID] * pad + fresh)
            mask.append([0] * pad + [1] * len(fresh))
            positions.append([start] * pad + list(range(start, start + len(fresh))))
        self._mask = torch.cat([self._mask, torch.tensor(mask, dtype=torch.long)], dim=1)
        keep = {"logits_to_keep": 1} if self._logits_to_keep else {}
        done: list[int] = []
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor(ids), attention_mask=self._mask, position_ids=torch.tensor(positions),
                             use_cache=True, **{self._cache_name: self._kv.cache}, **keep)
            self._kv = _KV(getattr(out, self._cache_name))
            logits = out.logits[:, -1, :].float()
            size = len(self._rows)
            self.stats.steps += 1
            self.stats.row_steps += size
            self.stats.shared_steps += size > 1
            self.stats.max_batch = max(self.stats.max_batch, size)
            for index, row in enumerate(self._rows):
                self._positions[index] += len(self._fresh[index])
                try:
                    following = row.advance(logits[index:index + 1], None)
                except Exception as exc:  # this request's own failure
                    self._finish(row, error=exc)
                    done.append(index)
                    continue
                if following is None:
                    self._finish(row)
                    done.append(index)
                else:
                    self._fresh[index] = following
        self._remove(done)

    def _remove(self, indices: list[int], *, early: bool = False) -> None:
        if not indices:
            return
        gone = set(indices)
        if early:
            for index in indices:
                self._finish(self._rows[index], early=True)
        keep = [i for i in range(len(self._rows)) if i not in gone]
        self._rows = [self._rows[i] for i in keep]
        self._fresh = [self._fresh[i] for i in keep]
        self._positions = [self._positions[i] for i in keep]
        if not keep:
            return self._reset()
        assert self._kv is not None and self._mask is not None
        rows = torch.tensor(keep)
        self._kv.keep_rows(rows)
        self._mask = self._mask.index_select(0, rows)
        # columns that are padding in every remaining row (a longer request left)
        lead = _leading_padding(self._mask)
        self._kv.drop_columns(lead)
        self._mask = self._mask[:, lead:]

    def _reset(self) -> None:
        self._rows, self._joining, self._fresh, self._positions = [], [], [], []
        self._kv = self._mask = None
