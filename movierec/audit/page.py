"""The audit as one self-contained HTML page (plots embedded), for people who would rather
look than read: each section's headline figures, its plot, and what failed, in words."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

_STYLE = (
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
    "padding:4px 8px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}"
    "img{max-width:100%}.problem{color:#a00}.ok{color:#070}"
)
TITLES = {
    "fairness": "Fairness: how each user group is served",
    "exposure": "Exposure: the long tail and new releases",
    "feedback_loop": "Feedback loop: concentration over time",
    "attacks": "Attacks on the model",
    "safety": "Safety: adult movies and minors",
}


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode()
    return f"<img alt='plot' src='data:image/png;base64,{data}'>"


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def table(rows: list[dict[str, Any]], columns: list[str], cls: str = "") -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(row.get(c))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table class='{cls}'><tr>{head}</tr>{body}</table>"


def scalars(section: dict[str, Any]) -> str:
    """The section's top-level numbers and words, as a two-column table."""
    rows = [
        {"figure": key, "value": value}
        for key, value in section.items()
        if isinstance(value, int | float | str | bool) or value is None
    ]
    return table(rows, ["figure", "value"], "scalars")


def loop_plot(loop: dict[str, Any]) -> str:
    days = loop.get("days") or []
    if not days:
        return "<p class='problem'>No day with answers or watches yet.</p>"
    fig, ax = plt.subplots(figsize=(8, 3.2))
    x = list(range(len(days)))
    for part, style in (("recommended", "-"), ("watched", "--")):
        ax.plot(x, [d[part]["gini"] for d in days], style, label=f"{part}: Gini")
        ax.plot(x, [d[part]["top1_share"] for d in days], style, label=f"{part}: top-1% share")
    ax.set_xticks(x[:: max(1, len(x) // 10)], [d["day"] for d in days][:: max(1, len(x) // 10)])
    ax.set_ylim(0, 1)
    ax.set_title("Concentration per day (higher: fewer movies get everything)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def bars(labels: list[str], series: dict[str, list[float | None]], title: str) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [j + i * width for j in range(len(labels))]
        ax.bar(xs, [v or 0.0 for v in values], width, label=name)
    ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(labels))], labels)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def render(report: dict[str, Any], parts: dict[str, Any] | None = None) -> str:
    """The page; `parts` maps a section to a function giving its body (default: figures)."""
    draw = {"feedback_loop": lambda s: scalars(s.get("trend") or {}) + loop_plot(s)}
    draw.update(parts or {})
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>movierec audit</title><style>{_STYLE}</style></head><body>",
        "<h1>Responsible operation: the audit</h1>",
        f"<p>Generated {_fmt(report.get('generated_at'))} from the store "
        f"<code>{_fmt(report.get('store'))}</code> and the registry "
        f"<code>{_fmt(report.get('models'))}</code>.</p>",
    ]
    problems = report.get("problems") or []
    if problems:
        out.append("<h2 class='problem' id='problems'>Problems</h2><ul>")
        out += [
            f"<li class='problem'>{_fmt(p.get('section'))}: "
            f"{_fmt(p.get('error') or p.get('warning'))}</li>"
            for p in problems
        ]
        out.append("</ul>")
    alerts = report.get("alerts") or {}
    out.append("<h2>What the alerts read</h2>")
    out.append(table([{"figure": k, "value": v} for k, v in alerts.items()], ["figure", "value"]))
    for name, title in TITLES.items():
        section = report.get(name)
        out.append(f"<section id='{name}'><h2>{html.escape(title)}</h2>")
        if not isinstance(section, dict):
            out.append("<p class='problem'>Not computed.</p></section>")
            continue
        if "error" in section:
            out.append(f"<p class='problem'>Could not be computed: {_fmt(section['error'])}</p>")
        else:
            out.append(draw.get(name, scalars)(section))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)
