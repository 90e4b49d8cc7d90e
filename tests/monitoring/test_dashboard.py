"""The dashboard page rendered from a hand-made state: every plot holds the points the
state gives it, the alerts and steps show their states, and the page needs nothing from
outside."""

from __future__ import annotations

from html.parser import HTMLParser

from movierec.monitoring.dashboard import render
from tests.monitoring.handmade import state


class Elements(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def with_attr(self, name: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.tags if name in a]


def plots(page: str) -> dict[str, dict[str, str | None]]:
    return {str(a["data-plot"]): a for a in Elements(page).with_attr("data-plot")}


def series_of(page: str, plot: str) -> dict[str, int]:
    """data-series -> data-points of the lines inside one plot's figure."""
    start = page.index(f'data-plot="{plot}"')
    end = page.index("</figure>", start)
    return {
        str(a["data-series"]): int(str(a["data-points"]))
        for tag, a in Elements(page[start - 20 : end]).tags
        if tag in ("polyline", "circle")
    }


def test_every_plot_of_the_hand_made_state_has_its_points() -> None:
    page = render(state())
    found = plots(page)
    assert set(found) == {
        "request_rate", "latency", "availability", "errors", "conversion_version",
        "conversion_arm", "availability_log", "ingest_rejects", "ingest_lines", "drift", "loop",
        "versions",
    }  # fmt: skip
    assert all(int(str(a["data-points"])) > 0 for a in found.values())
    # Six scrapes: the first has nothing to compare with, the fourth failed.
    assert series_of(page, "request_rate") == {"/recommend": 4}
    assert series_of(page, "latency") == {"p50": 4, "p99": 4}
    assert series_of(page, "availability") == {"between scrapes": 4, "scrape up": 6}
    assert series_of(page, "availability_log") == {"all versions": 3}
    assert series_of(page, "conversion_version") == {"v1": 2, "v2": 2}
    assert series_of(page, "conversion_arm") == {"e1/A": 1, "e1/B": 1}
    # A reason that never happened is left out.
    assert series_of(page, "ingest_rejects") == {"malformed": 4}
    assert series_of(page, "drift") == {"movie_mix_js": 2, "rating_tvd": 2}
    assert series_of(page, "loop") == {"recommended Gini": 2, "watched Gini": 2, "coverage": 2}
    assert series_of(page, "versions") == {"registry production": 2, "service answering": 5}
    assert len(Elements(page).with_attr("data-marker")) == 2  # both releases marked
    # The 600 ms deadline is drawn only once p99 nears it (here it is 35 ms).
    assert len(Elements(page).with_attr("data-threshold")) == 0


def test_alerts_steps_and_figures_show_their_states() -> None:
    page = render(state())
    alerts = {a["data-alert"]: a["data-state"] for a in Elements(page).with_attr("data-alert")}
    assert alerts == {"MovierecServiceDown": "firing", "MovierecLatencyHigh": "inactive"}
    assert len(Elements(page).with_attr("data-transition")) == 1
    steps = {a["data-step"]: a["data-ok"] for a in Elements(page).with_attr("data-step")}
    assert steps == {"scrape_service": "false", "online": "true"}
    assert "ConnectionRefusedError" in page
    assert '<b id="conversion">38.9%</b>' in page  # 35 of 90, the latest complete hour
    assert '<b id="production">20250101T020500Z-als-bbb222</b>' in page
    drifted = {a["data-indicator"]: a["class"] for a in Elements(page).with_attr("data-indicator")}
    assert drifted == {"movie_mix_js": "drifted", "rating_tvd": "ok"}


def test_the_page_needs_nothing_from_outside() -> None:
    elements = Elements(render(state()))
    assert not [a for tag, a in elements.tags if tag in ("link", "img", "iframe")]
    assert not [a for tag, a in elements.tags if tag == "script" and "src" in a]
    external = [a for _, a in elements.tags for k in ("src", "href") if "//" in (a.get(k) or "")]
    assert external == []


def test_an_empty_state_renders_empty_plots() -> None:
    page = render({})
    found = plots(page)
    assert found and all(a["data-points"] == "0" for a in found.values())
    assert "no data yet" in page
