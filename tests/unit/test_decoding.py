"""Who joins a continuous batch: :func:`hfbridge.server.decoding.admit` as a table."""

from __future__ import annotations

import pytest

from hfbridge.server.decoding import Decoding, admit

SMALL = Decoding(max_batch_size=3, max_batch_tokens=100, max_prefill_tokens=50)


@pytest.mark.parametrize(("waiting", "running", "reserved", "joins"), [
    ([], 0, 0, 0),
    ([(10, 20)] * 5, 0, 0, 3),                    # slots: at most max_batch_size in all
    ([(10, 20)] * 5, 2, 40, 1),                   # one slot left
    ([(10, 20)] * 5, 3, 60, 0),                   # full
    ([(10, 50), (10, 50), (10, 50)], 0, 0, 2),    # reserved positions: 50 + 50 fit in 100, not a third
    ([(10, 30)], 1, 80, 0),                       # over max_batch_tokens with a request running: wait
    ([(10, 500)], 0, 0, 1),                       # an oversized request joins an empty batch, alone
    ([(10, 500), (10, 10)], 0, 0, 1),             # ... and nothing joins next to it
    ([(40, 45), (40, 45)], 0, 0, 1),              # prompts: 80 > max_prefill_tokens in one round
    ([(60, 70)], 1, 10, 1),                       # the first in line always passes the prefill bound
    ([(10, 90), (10, 5)], 1, 20, 0),              # no overtaking: the short one waits behind the long
])
def test_admit(waiting: list[tuple[int, int]], running: int, reserved: int, joins: int) -> None:
    assert admit(waiting, running, reserved, SMALL) == joins


def test_one_at_a_time() -> None:
    assert admit([(5, 5)] * 4, 0, 0, Decoding(max_batch_size=1)) == 1
    assert admit([(5, 5)] * 4, 1, 5, Decoding(max_batch_size=1)) == 0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_knobs_are_positive_integers(bad: object) -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        Decoding(max_batch_size=bad)  # type: ignore[arg-type]


def test_option_names() -> None:
    assert Decoding.option("max_batch_tokens") == "--decode-max-batch-tokens"
