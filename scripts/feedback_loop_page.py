"""The feedback-loop study's page: one inline-SVG chart per figure, a line per arm over the
simulated days, and the summary table (scripts/feedback_loop.py writes it)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

COLOURS = {"popular": "#d62728", "model": "#1f77b4", "explore": "#2ca02c"}
CHARTS = (
    ("recommended_gini", "Gini of what was recommended"),
    ("recommended_top1_share", "Top-1% share of what was recommended"),
    ("coverage", "Catalogue coverage of recommendations"),
    ("watched_gini", "Gini of what was watched"),
    ("watched_top1_share", "Top-1% share of what was watched"),
    ("conversion", "Conversion within 30 minutes"),
)
WIDTH, HEIGHT, PAD = 460, 220, 40


def chart(arms: dict[str, Any], key: str, title: str) -> str:
    """One SVG line chart of `key` per day, an arm a line (None values leave gaps)."""
    series = {arm: [d[key] for d in data["days"]] for arm, data in arms.items()}
    values = [v for line in series.values() for v in line if v is not None]
    if not values:
        return f"<p>{html.escape(title)}: no values</p>"
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    days = max(len(line) for line in series.values())

    def x(i: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * (i / max(1, days - 1))

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * ((v - low) / (high - low))

    parts = [
        f'<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">',
        f'<text x="{PAD}" y="16" font-size="13">{html.escape(title)}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
        f'<text x="2" y="{y(high) + 4:.1f}">{high:.3g}</text>',
        f'<text x="2" y="{y(low) + 4:.1f}">{low:.3g}</text>',
        f'<text x="{PAD}" y="{HEIGHT - PAD + 14}">day 0</text>',
        f'<text x="{WIDTH - PAD - 30}" y="{HEIGHT - PAD + 14}">day {days - 1}</text>',
    ]
    for n, (arm, line) in enumerate(series.items()):
        segments, current = [], []
        for i, v in enumerate(line):
            if v is None:
                if current:
                    segments.append(current)
                current = []
            else:
                current.append(f"{x(i):.1f},{y(v):.1f}")
        if current:
            segments.append(current)
        colour = COLOURS.get(arm, "#555")
        for points in segments:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                f'points="{" ".join(points)}"/>'
            )
        parts.append(
            f'<text x="{WIDTH - PAD + 2}" y="{PAD + 14 * n}" fill="{colour}">'
            f"{html.escape(arm)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def table(summary: dict[str, Any]) -> str:
    """Each arm's before, start and end means of every figure."""
    keys = [k for k, _ in CHARTS]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = []
    for arm in (a for a in summary if a != "explore_vs_model"):
        for when in ("before", "start", "end"):
            figures = summary[arm].get(when) or {}
            cells = "".join(f"<td>{_cell(figures.get(k))}</td>" for k in keys)
            span = html.escape(str(figures.get("days", "day 0")))
            rows.append(f"<tr><td>{html.escape(arm)}</td><td>{when} ({span})</td>{cells}</tr>")
    return f"<table><tr><th>arm</th><th>days</th>{head}</tr>{''.join(rows)}</table>"


def _cell(value: Any) -> str:
    return (
        ""
        if value is None
        else html.escape(f"{value:.4f}" if isinstance(value, float) else str(value))
    )


def write_page(result: dict[str, Any], path: Path) -> None:
    charts = "".join(chart(result["arms"], key, title) for key, title in CHARTS)
    versus = result["summary"]["explore_vs_model"]
    settings = html.escape(", ".join(f"{k}={v}" for k, v in result["settings"].items()))
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>Feedback loop</title>"
        "<style>body{font-family:sans-serif;margin:2em}svg{margin:6px}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd;font-size:12px}</style>"
        "<h1>The feedback loop, per arm</h1>"
        f"<p>{settings}. Day 0 ran before any model (every call failed): each arm's before."
        " Arms: popular (popularity model), model (the day's trained winner), explore (the same"
        " version with exploration slots). Every model retrained daily on all data so far.</p>"
        f"<div>{charts}</div><h2>Before, first and last days (means)</h2>{table(result['summary'])}"
        "<h2>Exploration's cost to conversion (all days pooled)</h2>"
        f"<pre>{html.escape(_json(versus))}</pre>"
        f"<p>Seconds: {html.escape(_json(result['seconds']))}</p>"
    )


def _json(value: Any) -> str:
    return json.dumps(value, indent=1)
