"""How many generations decode together: the continuous batch's bounds and who may join it.

Concurrent generation requests for one model share its forward passes (see
:mod:`.backends.continuous`): between two decoding steps, finished requests leave the batch and
waiting ones join it. This module holds the part of that which is policy, not tensors: the
knobs (:class:`Decoding`, ``ServerSettings.decoding`` and the ``hfbridge serve`` options of the
same names) and :func:`admit`, which picks the waiting requests that join now. It is pure (no
torch, no threads), so the rules are a table in the tests.

Each request reserves room for its whole answer when it joins (prompt plus ``max_new_tokens``,
as TGI's ``max_batch_total_tokens`` counts), so a batch admitted within ``max_batch_tokens``
never outgrows it while its requests decode.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

from .options import ServeOptions, knob

__all__ = ["Decoding", "admit"]



@dataclass(frozen=True)
class Decoding(ServeOptions):
    """Bounds of each generation model's continuous batch; every field is also an
    ``hfbridge serve`` option (``max_batch_size`` is ``--decode-max-batch-size``)."""

    PREFIX = "decode-"  # apart from the encoder batch's options of the same names
    max_batch_size: int = knob(16, "most generation requests of one model decoded together (1: one at a time)")
    max_batch_tokens: int = knob(16384, "most key/value cache positions a model's batch reserves: the sum over its "
                                         "requests of prompt + max_new_tokens (a longer request still runs, alone)")
    max_prefill_tokens: int = knob(2048, "most prompt tokens read between two decoding steps, so joining requests "
                                          "delay the running ones by a bounded amount (at least one request joins)")

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{spec.name} must be an integer >= 1, got {value!r}")



def admit(waiting: Sequence[tuple[int, int]], running: int, reserved: int, settings: Decoding) -> int:
    """How many of the ``waiting`` requests (first come, first served: ``(prompt_tokens,
    reserved_tokens)`` each) join a batch of ``running`` requests that reserve ``reserved``
    cache positions.

    Requests join in order while the batch has a free slot, its reservation stays within
    ``max_batch_tokens`` and this round's prompts within ``max_prefill_tokens``. The first one
    in line joins an empty batch whatever it costs, so an oversized request runs alone rather
    than never; a request that does not fit stops the line (no overtaking, so a long request
    is not starved by a stream of short ones).
    """
    count, prefill = 0, 0
    for prompt, reservation in waiting:
        if running + count >= settings.max_batch_size:
            break
        first = running + count == 0
        if not first and (reserved + reservation > settings.max_batch_tokens or
                          (count and prefill + prompt > settings.max_prefill_tokens)):
            break
        count += 1
        reserved += reservation
        prefill += prompt
    return count
