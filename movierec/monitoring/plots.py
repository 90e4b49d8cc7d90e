"""Line plots as inline SVG, drawn on the server: no script, no library, nothing fetched.

Every plot is a <figure class="plot"> whose data attributes say what it holds
(`data-plot` its name, `data-series` how many series, `data-points` how many points in
all), and every series a <polyline> (a <circle> for a lone point) carrying its own
`data-series` name and `data-points` count, so a test, or a person with the inspector,
can tell a plot with data from an empty frame.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape

Points = list[tuple[float, float]]
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip
WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 10, 28


def _time_label(x: float, span: float) -> str:
    moment = datetime.fromtimestamp(x, UTC)
    return moment.strftime("%m-%d" if span > 2 * 86_400 else "%m-%d %H:%M")


def _number(y: float) -> str:
    if y == 0:
        return "0"
    magnitude = abs(y)
    if magnitude >= 1000:
        return f"{y:.0f}"
    if magnitude >= 1:
        return f"{y:.3g}"
    return f"{y:.2g}"


def line_plot(
    name: str,
    title: str,
    series: dict[str, Points],
    unit: str = "",
    markers: list[tuple[float, str]] | None = None,
    thresholds: dict[str, float] | None = None,
    y_labels: list[str] | None = None,
    step: bool = False,
) -> str:
    """A figure with one polyline per series against time (Unix seconds) on x.

    `markers` are vertical lines at moments (releases), `thresholds` horizontal dashed
    lines, `y_labels` names the integer y values (versions), `step` draws steps."""
    series = {k: sorted(v) for k, v in series.items() if v}
    markers = markers or []
    total = sum(len(v) for v in series.values())
    head = (
        f'<figure class="plot" data-plot="{escape(name)}" data-series="{len(series)}" '
        f'data-points="{total}"><figcaption>{escape(title)}'
        f"{' (' + escape(unit) + ')' if unit else ''}</figcaption>"
    )
    if not total:
        return head + '<p class="empty">no data yet</p></figure>'
    xs = [x for v in series.values() for x, _ in v] + [x for x, _ in markers]
    ys = [y for v in series.values() for _, y in v] + list((thresholds or {}).values())
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, *ys), max(ys)
    if y_labels is not None:
        y0, y1 = -0.5, len(y_labels) - 0.5
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y1 = y0 + 1
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * inner_w

    def py(y: float) -> float:
        return TOP + (1 - (y - y0) / (y1 - y0)) * inner_h

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg" role="img">',
        f'<rect x="{LEFT}" y="{TOP}" width="{inner_w}" height="{inner_h}" class="frame"/>',
    ]
    ticks = (
        [(float(i), label) for i, label in enumerate(y_labels)]
        if y_labels is not None
        else [(y0 + (y1 - y0) * k / 4, _number(y0 + (y1 - y0) * k / 4)) for k in range(5)]
    )
    for y, label in ticks:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
            f'class="grid"/><text x="{LEFT - 4}" y="{py(y) + 4:.1f}" class="tick" '
            f'text-anchor="end">{escape(label[:8])}</text>'
        )
    span = x1 - x0
    for x, anchor in ((x0, "start"), (x1, "end")):
        parts.append(
            f'<text x="{px(x):.1f}" y="{HEIGHT - 8}" class="tick" text-anchor="{anchor}">'
            f"{_time_label(x, span)}</text>"
        )
    for label, y in (thresholds or {}).items():
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
            f'class="threshold" data-threshold="{escape(label)}"><title>{escape(label)} '
            f"{_number(y)}</title></line>"
        )
    for x, label in markers:
        parts.append(
            f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{TOP}" y2="{TOP + inner_h}" '
            f'class="marker" data-marker="{escape(label)}"><title>{escape(label)}</title></line>'
        )
    legend = []
    for i, (label, points) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        attrs = f'data-series="{escape(label)}" data-points="{len(points)}" stroke="{color}"'
        if len(points) == 1:
            x, y = points[0]
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}" {attrs}/>'
            )
        else:
            coords = []
            for k, (x, y) in enumerate(points):
                if step and k:
                    coords.append(f"{px(x):.1f},{py(points[k - 1][1]):.1f}")
                coords.append(f"{px(x):.1f},{py(y):.1f}")
            parts.append(f'<polyline fill="none" {attrs} points="{" ".join(coords)}"/>')
        last = points[-1][1]
        shown = y_labels[int(last)] if y_labels is not None else _number(last)
        legend.append(
            f'<li><span class="swatch" style="background:{color}"></span>{escape(label)}: '
            f"<b>{escape(shown)}</b></li>"
        )
    parts.append("</svg>")
    return head + "".join(parts) + f'<ul class="legend">{"".join(legend)}</ul></figure>'


def finite(points: Points) -> Points:
    return [(x, y) for x, y in points if not (math.isnan(y) or math.isinf(y))]
