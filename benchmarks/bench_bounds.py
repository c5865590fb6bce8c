"""Event-stream decoding of one long line fed in small pieces: linear now, where the decoder
before looked at every pending byte again for each piece (its line search is reproduced here
as the baseline).

    .venv/bin/python benchmarks/bench_bounds.py   # writes results/bounds.md
"""

from __future__ import annotations

import time
from pathlib import Path

from hfbridge.streaming import SSEDecoder

RESULTS = Path(__file__).parent / "results"
PIECE = 16


def rescanning_split(stream: bytes) -> int:
    """The baseline: after every piece, walk the whole pending buffer for a line end again."""
    buffer, lines = b"", 0
    for i in range(0, len(stream), PIECE):
        buffer += stream[i : i + PIECE]
        while True:
            cut = next((j for j, byte in enumerate(buffer) if byte == 0x0A), None)
            if cut is None:
                break
            buffer, lines = buffer[cut + 1 :], lines + 1
    return lines


def sse_rows() -> list[str]:
    rows = []
    for size in (16 << 10, 64 << 10, 256 << 10, 1000 << 10):
        stream = b"data: " + b"x" * size + b"\n\n"
        started = time.perf_counter()
        decoder = SSEDecoder()
        events = [e for i in range(0, len(stream), PIECE) for e in decoder.feed(stream[i : i + PIECE])]
        linear = time.perf_counter() - started
        assert len(events) == 1
        if size <= 64 << 10:  # quadratic: a 256 KiB line takes about 16 times the 64 KiB one
            started = time.perf_counter()
            rescanning_split(stream)
            baseline = f"{time.perf_counter() - started:.3f}"
        else:
            baseline = "(skipped: minutes)"
        rows.append(f"| {size >> 10} KiB | {linear:.3f} | {baseline} |")
    return rows


def main() -> None:
    lines = [
        "# Event-stream decoding: one long line", "",
        f"One `data:` line fed in {PIECE}-byte pieces, seconds (the decoder bounds a line at 1 MiB):", "",
        "| line | SSEDecoder | re-scanning baseline |", "|---|---|---|", *sse_rows(), "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bounds.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
