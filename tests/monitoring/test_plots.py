"""Inline SVG line plots: what the data attributes say, where points land, escaping."""

from __future__ import annotations

import re

from movierec.monitoring.plots import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, line_plot


def coordinates(figure: str, series: str) -> list[tuple[float, float]]:
    match = re.search(rf'data-series="{series}"[^>]*points="([^"]+)"', figure)
    assert match, figure
    return [tuple(map(float, p.split(","))) for p in match.group(1).split()]


def test_points_span_the_frame_from_corner_to_corner() -> None:
    figure = line_plot("p", "title", {"a": [(10.0, 0.0), (20.0, 5.0), (30.0, 10.0)]}, "ms")
    assert 'data-plot="p" data-series="1" data-points="3"' in figure
    first, middle, last = coordinates(figure, "a")
    # y starts at 0; x from the first moment to the last.
    assert first == (LEFT, HEIGHT - BOTTOM)
    assert last == (WIDTH - RIGHT, TOP)
    assert middle == ((LEFT + WIDTH - RIGHT) / 2, (TOP + HEIGHT - BOTTOM) / 2)


def test_steps_hold_each_value_until_the_next_point() -> None:
    figure = line_plot("v", "versions", {"prod": [(0.0, 0.0), (10.0, 1.0)]},
                       y_labels=["v1", "v2"], step=True)  # fmt: skip
    (x0, y0), (x1, y_held), (x2, y1) = coordinates(figure, "prod")
    assert x0 < x1 == x2  # the riser sits at the second point's moment
    assert y_held == y0 and y1 < y0
    assert ">v1</text>" in figure and ">v2</text>" in figure


def test_markers_thresholds_and_an_empty_plot() -> None:
    figure = line_plot("m", "t", {"a": [(0.0, 1.0), (5.0, 2.0)]},
                       markers=[(2.0, "release")], thresholds={"limit": 3.0})  # fmt: skip
    assert 'data-marker="release"' in figure and 'data-threshold="limit"' in figure
    empty = line_plot("e", "nothing", {"a": []})
    assert 'data-series="0" data-points="0"' in empty and "no data yet" in empty


def test_labels_are_escaped() -> None:
    figure = line_plot("x", "<b>title</b>", {'<script>"': [(0.0, 1.0), (1.0, 2.0)]})
    assert "<script>" not in figure and "&lt;script&gt;&quot;" in figure
    lone = line_plot("y", "one point", {"a": [(5.0, 1.0)]})
    assert "<circle" in lone and 'data-points="1"' in lone
