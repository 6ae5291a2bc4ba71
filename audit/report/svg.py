"""Inline SVG charts (no JavaScript, no network): per-group estimates with CI error bars."""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from audit.report.format import esc, num

WIDTH = 640
LABEL_W = 150
ROW_H = 24
PAD = 16


def _finite(v: Any) -> TypeGuard[float]:
    return isinstance(v, int | float) and math.isfinite(v)


def interval_chart(
    rows: list[tuple[str, dict[str, Any]]], reference: float | None = None, title: str = ""
) -> str:
    """A horizontal dot-and-whisker chart: one row per (label, {estimate, ci_low, ci_high}), with an
    optional dashed reference line (the overall value). Labels are escaped."""
    vals = [float(v) for _, d in rows for v in (d.get("estimate"), d.get("ci_low"), d.get("ci_high")) if _finite(v)]
    if reference is not None and _finite(reference):
        vals.append(float(reference))
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    lo, hi = lo - 0.05 * span, hi + 0.05 * span
    plot_w = WIDTH - LABEL_W - 2 * PAD
    height = ROW_H * len(rows) + 2 * PAD + 18

    def x(v: float) -> float:
        return LABEL_W + PAD + (v - lo) / (hi - lo) * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>',
    ]
    axis_y = PAD + ROW_H * len(rows)
    parts.append(f'<line x1="{x(lo):.1f}" y1="{axis_y}" x2="{x(hi):.1f}" y2="{axis_y}" stroke="#999"/>')
    for t in range(5):
        v = lo + (hi - lo) * t / 4
        parts.append(
            f'<text x="{x(v):.1f}" y="{axis_y + 14}" font-size="10" text-anchor="middle" fill="#555">{num(v)}</text>'
        )
    if reference is not None and _finite(reference):
        parts.append(
            f'<line x1="{x(reference):.1f}" y1="{PAD - 4}" x2="{x(reference):.1f}" y2="{axis_y}" '
            'stroke="#888" stroke-dasharray="4 3"><title>overall</title></line>'
        )
    for i, (label, d) in enumerate(rows):
        y = PAD + ROW_H * i + ROW_H / 2
        parts.append(
            f'<text x="{LABEL_W}" y="{y + 4:.1f}" font-size="12" text-anchor="end" fill="#222">{esc(label)}</text>'
        )
        est, cl, ch = d.get("estimate"), d.get("ci_low"), d.get("ci_high")  # drawn only when finite
        tip = esc(f"{label}: {num(est)} [{num(cl)}, {num(ch)}] n={d.get('n', '?')}")
        if _finite(cl) and _finite(ch):
            parts.append(
                f'<line x1="{x(float(cl)):.1f}" y1="{y:.1f}" x2="{x(float(ch)):.1f}" y2="{y:.1f}" stroke="#3465a4" stroke-width="2"/>'
            )
            for v in (cl, ch):
                parts.append(
                    f'<line x1="{x(float(v)):.1f}" y1="{y - 5:.1f}" x2="{x(float(v)):.1f}" y2="{y + 5:.1f}" stroke="#3465a4"/>'
                )
        if _finite(est):
            parts.append(
                f'<circle cx="{x(float(est)):.1f}" cy="{y:.1f}" r="4" fill="#204a87"><title>{tip}</title></circle>'
            )
    parts.append("</svg>")
    return "".join(parts)
