"""The dashboard page: the monitor's state as one self-contained HTML page.

Everything is drawn here, on the server, as inline SVG (movierec/monitoring/plots.py):
the page fetches nothing, so it works on a machine without internet and opens the same
from a saved file. The page's frame and style are in dashboard.html beside this module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from pathlib import Path
from string import Template
from typing import Any

from movierec.monitoring.plots import Points, line_plot

_TEMPLATE = Template((Path(__file__).parent / "dashboard.html").read_text())


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _series(points: list[dict[str, Any]], field: str) -> Points:
    return [
        (p["at"], float(p[field]))
        for p in points
        if isinstance(p.get(field), int | float) and not isinstance(p.get(field), bool)
    ]


def render(state: dict[str, Any]) -> str:
    """The whole page for one published state of the monitor."""
    sections = [
        _steps(state),
        _alerts(state.get("alerts") or []),
        _service(state),
        _online(state.get("online")),
        _ingest(state),
        _drift(state.get("drift")),
        _loop(state.get("loop")),
        _releases(state),
    ]
    production = (state.get("registry") or {}).get("production")
    meta = (
        f"state of {escape(str(state.get('generated_at')))}, round {state.get('rounds', 0)}; "
        f"service {escape(str(state.get('service')))}, ingestion "
        f"{escape(str(state.get('ingest') or 'not watched'))}; production "
        f'<b id="production">{escape(str(production))}</b>; '
        '<a href="/api/state.json">state.json</a>, <a href="/metrics">metrics</a>'
    )
    refresh = max(1000, round(1000 * float(state.get("every") or 5)))
    return _TEMPLATE.substitute(meta=meta, body="\n".join(sections), refresh_ms=refresh)


def _grid(*figures: str) -> str:
    return '<div class="grid-plots">' + "".join(figures) + "</div>"


def _steps(state: dict[str, Any]) -> str:
    rows = []
    for name, step in (state.get("steps") or {}).items():
        ok = step.get("ok")
        rows.append(
            f'<tr class="{"ok" if ok else "failed"}" data-step="{escape(name)}" '
            f'data-ok="{str(bool(ok)).lower()}"><td>{escape(name)}</td>'
            f"<td>{'ok' if ok else 'FAILED'}</td><td>{step.get('seconds')}</td>"
            f"<td>{escape(str(step.get('error') or ''))}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="4">no round has run yet</td></tr>'
    return (
        '<h2>Monitor steps</h2><table id="steps"><tr><th>step</th><th>last run</th>'
        f"<th>seconds</th><th>error</th></tr>{body}</table>"
    )


def _alerts(alerts: list[dict[str, Any]]) -> str:
    rows, transitions = [], []
    for alert in alerts:
        name, state = str(alert.get("name")), str(alert.get("state"))
        value = alert.get("value")
        rows.append(
            f'<tr class="state-{escape(state)}" data-alert="{escape(name)}" '
            f'data-state="{escape(state)}"><td>{escape(name)}</td><td>{escape(state)}</td>'
            f"<td>{escape(str(alert.get('severity')))}</td>"
            f"<td>{escape(_when(alert.get('since')))}</td>"
            f"<td>{escape('' if value is None else str(value))}</td>"
            f"<td>{escape(str(alert.get('summary') or ''))}</td></tr>"
        )
        for change in alert.get("history") or []:
            transitions.append((change, name))
    transitions.sort(key=lambda c: str(_moment(c[0])), reverse=True)
    changes = "".join(
        f'<li data-transition="{escape(name)}">{escape(_when(_moment(c)))} {escape(name)}: '
        f"{escape(_describe(c))}</li>"
        for c, name in transitions[:50]
    )
    body = "".join(rows) or '<tr><td colspan="6">no alert evaluated yet</td></tr>'
    return (
        '<h2>Alerts</h2><table id="alerts"><tr><th>alert</th><th>state</th><th>severity</th>'
        f"<th>since</th><th>value</th><th>summary</th></tr>{body}</table>"
        f'<h3>Transitions</h3><ul id="alert-history">{changes or "<li>none yet</li>"}</ul>'
    )


def _moment(change: Any) -> Any:
    if isinstance(change, dict):
        return change.get("at", change.get("time"))
    return change[0] if isinstance(change, list | tuple) and change else None


def _describe(change: Any) -> str:
    if isinstance(change, dict):
        return ", ".join(f"{k} {v}" for k, v in change.items() if k not in ("at", "time"))
    if isinstance(change, list | tuple):
        return " ".join(str(x) for x in change[1:])
    return str(change)


def _short(version: str) -> str:
    """A version's axis label: its kind and the start of its random part (als a1b)."""
    parts = version.split("-")
    return f"{parts[1][:4]} {parts[-1][:3]}" if len(parts) >= 3 else version[:8]


def _when(moment: Any) -> str:
    if isinstance(moment, int | float):
        return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
    return "" if moment is None else str(moment)


def _service(state: dict[str, Any]) -> str:
    points = (state.get("series") or {}).get("service", [])
    up = [(p["at"], 1.0 if p.get("up") else 0.0) for p in points]
    return "<h2>Service</h2>" + _grid(
        line_plot(
            "request_rate",
            "Request rate",
            {"/recommend": _series(points, "request_rate")},
            "requests/s",
        ),
        line_plot(
            "latency",
            "Request latency",
            {"p50": _series(points, "latency_p50_ms"), "p99": _series(points, "latency_p99_ms")},
            "ms",
            # The deadline line only once p99 nears it: drawn always, it flattens the rest.
            thresholds={"site deadline": 600.0} if _peak(points, "latency_p99_ms") > 300 else None,
        ),
        line_plot(
            "availability",
            "Availability as the service counts it",
            {"between scrapes": _series(points, "availability"), "scrape up": up},
            "share",
        ),
        line_plot(
            "errors",
            "Errors and timeouts",
            {"5xx": _series(points, "error_rate"), "timeouts": _series(points, "timeout_rate")},
            "per s",
        ),
    )


def _peak(points: list[dict[str, Any]], field: str) -> float:
    return max((y for _, y in _series(points, field)), default=0.0)


def _online(online: dict[str, Any] | None) -> str:
    if not online:
        return "<h2>Online figures</h2><p>not computed yet (see the steps above)</p>"
    window = online.get("window_minutes")
    latest = online.get("latest_complete_hour") or {}
    summary = (
        f"<p>Latest complete hour {escape(str(latest.get('hour')))}: conversion "
        f'<b id="conversion">{_pct(latest.get("conversion"))}</b> of '
        f"{latest.get('requests', 0)} requests; log until {escape(str(online.get('log_until')))}"
        "</p>"
    )
    # The log's own clock: an hour of a replayed or simulated log is not an hour of ours,
    # so these plots never share an axis with the scraped ones.
    hours = online.get("hours") or []
    hourly = [(h["at"], h["availability"]) for h in hours if h.get("availability") is not None]
    versions = online.get("conversion_by_version", {})
    arms = online.get("conversion_by_arm", {})
    return (
        "<h2>Online figures</h2>"
        + summary
        + _grid(
            line_plot(
                "conversion_version", f"Conversion@{window}m per model version", versions, "share"
            ),
            line_plot("conversion_arm", f"Conversion@{window}m per experiment arm", arms, "share"),
            line_plot(
                "availability_log",
                "Availability per hour, as the site logged it",
                {"all versions": hourly},
                "share",
            ),
        )
    )


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def _ingest(state: dict[str, Any]) -> str:
    points = (state.get("series") or {}).get("ingest", [])
    by_reason: dict[str, Points] = {}
    for point in points:
        for reason, rate in (point.get("reject_rates") or {}).items():
            by_reason.setdefault(reason, []).append((point["at"], float(rate)))
    # Reasons that never happened would bury the ones that did under a pile of zeros.
    shown = {r: v for r, v in sorted(by_reason.items()) if any(y > 0 for _, y in v)}
    if not shown and by_reason:
        shown = {"all reasons": [(x, 0.0) for x, _ in next(iter(by_reason.values()))]}
    return "<h2>Ingestion</h2>" + _grid(
        line_plot("ingest_rejects", "Rejected lines by reason", shown, "lines/s"),
        line_plot(
            "ingest_lines", "Lines read", {"lines": _series(points, "lines_rate")}, "lines/s"
        ),
    )


def _drift(drift: dict[str, Any] | None) -> str:
    if not drift:
        return "<h2>Input drift</h2><p>not computed yet</p>"
    window = drift.get("window") or {}
    series: dict[str, Points] = {}
    for day in drift.get("days", []):
        at = _epoch(day["day"] + "T00:00:00+00:00")
        for name, indicator in day["indicators"].items():
            if indicator.get("value") is not None and at is not None:
                series.setdefault(name, []).append((at, indicator["value"]))
    rows = "".join(
        f'<tr class="{"drifted" if i["drifted"] else "ok"}" data-indicator="{escape(n)}">'
        f"<td>{escape(n)}</td><td>{i['value']}</td><td>{i['threshold']}</td>"
        f"<td>{'DRIFTED' if i['drifted'] else 'no' if i.get('judged', True) else 'too little data'}"
        "</td></tr>"
        for n, i in (drift.get("latest") or {}).items()
    )
    return (
        f"<h2>Input drift</h2><p>Latest complete day {escape(str(drift.get('latest_day')))}, "
        "against the training window of "
        f"{escape(str(window.get('version')))} ({escape(str(window.get('from')))} to "
        f"{escape(str(window.get('to')))}, from {escape(str(window.get('source')))}).</p>"
        + _grid(line_plot("drift", "Drift indicators per day", series, "divergence / share"))
        + '<table id="drift"><tr><th>indicator</th><th>latest</th><th>threshold</th>'
        f"<th>drifted</th></tr>{rows}</table>"
    )


def _loop(loop: dict[str, Any] | None) -> str:
    if not loop:
        return "<h2>Feedback loop</h2><p>not computed yet</p>"
    rec: Points = []
    watched: Points = []
    coverage: Points = []
    for day in loop.get("days", []):
        at = _epoch(day["day"] + "T00:00:00+00:00") or 0.0
        rec.append((at, day["recommended"]["gini"]))
        watched.append((at, day["watched"]["gini"]))
        coverage.append((at, day["recommended"]["coverage"]))
    return "<h2>Feedback loop</h2>" + _grid(
        line_plot(
            "loop",
            "Concentration per day",
            {"recommended Gini": rec, "watched Gini": watched, "coverage": coverage},
            "0-1",
        )
    )


def _releases(state: dict[str, Any]) -> str:
    history = (state.get("registry") or {}).get("history") or []
    points = (state.get("series") or {}).get("service", [])
    names: list[str] = []
    for version in [h.get("to") for h in history] + [p.get("version") for p in points]:
        if version and version not in names:
            names.append(version)
    index = {v: i for i, v in enumerate(names)}
    production = [
        (at, float(index[h["to"]]))
        for h in history
        if h.get("to") and (at := _epoch(h.get("time"))) is not None
    ]
    serving = [(p["at"], float(index[p["version"]])) for p in points if p.get("version")]
    markers = [
        (at, f"{h.get('from')} -> {h.get('to')}")
        for h in history
        if h.get("to") != h.get("from") and (at := _epoch(h.get("time"))) is not None
    ]
    short = [_short(n) for n in names]
    return "<h2>Releases</h2>" + _grid(
        line_plot(
            "versions",
            "Production version over time (releases marked)",
            {"registry production": production, "service answering": serving},
            markers=markers,
            y_labels=short,
            step=True,
        )
    )
