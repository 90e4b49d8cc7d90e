"""The offline evaluation report as one self-contained HTML page (plots embedded), for
people who never saw the code."""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

ACCURACY = ("ndcg@20", "recall@20", "map@20", "hit_rate@20")
EXPLAIN = {
    "ndcg@20": "How high the movies the user went on to watch sit in the list (1 = all at the "
    "top, 0 = none in the list). Ranking quality: early positions count most.",
    "recall@20": "Share of the movies the user went on to watch that were in the list (out of "
    "at most 20).",
    "map@20": "Mean average precision: rewards lists whose hits come early and often.",
    "hit_rate@20": "Share of users for whom at least one movie in the list was watched.",
    "coverage": "Share of the catalogue recommended to at least one user. Low coverage means "
    "everyone is shown the same few movies.",
    "gini": "Inequality of how often movies are recommended: 0 = every movie equally often, "
    "1 = one movie for everyone. Popularity-driven lists score high.",
    "mean_popularity": "Average number of training interactions of a recommended movie: how "
    "much a model leans on what is already popular.",
}


def _figure_png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _bars(models: dict[str, dict], metrics: tuple[str, ...], title: str) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    names = list(models)
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        values = [models[name].get(m, 0.0) or 0.0 for m in metrics]
        ax.bar([x + i * width for x in range(len(metrics))], values, width, label=name)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(metrics))], metrics)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _figure_png(fig)


def _slices(models: dict[str, dict], slicing: str, metric: str) -> str:
    labels: list[str] = []
    for result in models.values():
        for label in result["subpopulations"].get(slicing, {}):
            if label not in labels:
                labels.append(label)
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(labels) * max(len(models), 1)), 3.4))
    width = 0.8 / max(len(models), 1)
    for i, (name, result) in enumerate(models.items()):
        groups = result["subpopulations"].get(slicing, {})
        values = [groups.get(label, {}).get(metric) or 0.0 for label in labels]
        ax.bar([x + i * width for x in range(len(labels))], values, width, label=name)
    ax.set_xticks(
        [x + width * (len(models) - 1) / 2 for x in range(len(labels))],
        labels,
        rotation=30,
        ha="right",
        fontsize=8,
    )
    ax.set_title(f"{metric} by {slicing.replace('_', ' ')}")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _figure_png(fig)


def _table(models: dict[str, dict], columns: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ("model", *columns))
    rows = []
    for name, result in models.items():
        cells = "".join(f"<td>{_fmt(result.get(c))}</td>" for c in columns)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4f}"
    return html.escape(str(value))


def _split_summary(split: dict[str, Any]) -> str:
    users = f"<b>{split['test_users']}</b>"
    if split.get("kind") == "per_user":
        return (
            f"Each of the {users} test users had their latest interactions held out "
            f"({html.escape(split.get('why', ''))}); each model learned from everything "
            "else and was asked for 20 movies per user. A list is good when the held-out "
            "movies the user liked are in it, near the top."
        )
    cut = html.escape(split.get("test_cut", split.get("cut", "")))
    return (
        f"Each model learned from everything that happened before <b>{cut}</b> and was "
        f"asked for 20 movies for each of the {users} users who went on to watch or rate "
        f"well movies new to them after that moment (until {html.escape(split['end'])}). "
        "A list is good when those movies are in it, near the top. Nothing after the cut "
        "was visible to any model."
    )


def render(report: dict[str, Any]) -> str:
    models: dict[str, dict] = report["models"]
    split = report["split"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>movierec offline evaluation</title><style>",
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}",
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;",
        "padding:4px 8px;text-align:right}th{background:#f4f4f4}",
        "img{max-width:100%}dt{font-weight:bold}</style></head><body>",
        "<h1>Offline evaluation</h1>",
        f"<p id='summary'>{_split_summary(split)}</p>",
        f"<p>Best model by {html.escape(report['metric'])}: "
        f"<b id='best'>{html.escape(str(report['best']))}</b>. "
        f"In production: <b>{html.escape(str(report.get('production')))}</b>.</p>",
        "<h2>Accuracy</h2>",
        _table(models, ACCURACY),
        f"<img alt='accuracy by model' src='data:image/png;base64,"
        f"{_bars(models, ACCURACY, 'Accuracy of the top 20')}'>",
        "<h2>Diversity and popularity</h2>",
        _table(models, ("coverage", "gini", "mean_popularity")),
        f"<img alt='coverage and gini by model' src='data:image/png;base64,"
        f"{_bars(models, ('coverage', 'gini'), 'Catalogue coverage and concentration')}'>",
        "<h2>For whom</h2><p>The same accuracy for slices of the test users: new users had no "
        "history before the cut; activity quartiles split returning users by how much they "
        "had watched.</p>",
    ]
    slicings: list[str] = []
    for result in models.values():
        slicings += [s for s in result["subpopulations"] if s not in slicings]
    for slicing in slicings:
        parts.append(f"<h3>{html.escape(slicing.replace('_', ' '))}</h3>")
        parts.append(
            f"<img alt='ndcg by {html.escape(slicing)}' src='data:image/png;base64,"
            f"{_slices(models, slicing, 'ndcg@20')}'>"
        )
    parts.append("<h2>What the numbers mean</h2><dl>")
    parts += [f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in EXPLAIN.items()]
    parts.append("</dl></body></html>")
    return "\n".join(parts)
