"""A dependency-free horizontal bar chart as SVG (benchmarks must not need matplotlib)."""

from __future__ import annotations

from pathlib import Path


def bar_chart(path: Path, title: str, unit: str, rows: list[tuple[str, float]]) -> None:
    width, label_w, bar_w, row_h = 760, 300, 380, 26
    top = 40
    height = top + row_h * len(rows) + 20
    peak = max(v for _, v in rows) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{title}</text>',
    ]
    for i, (label, value) in enumerate(rows):
        y = top + i * row_h
        w = bar_w * value / peak
        parts.append(f'<text x="10" y="{y + 17}">{label}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="#4c72b0"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 17}">{value:,.1f} {unit}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")
