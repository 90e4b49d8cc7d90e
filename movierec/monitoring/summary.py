"""What the monitor derives from the reports it runs: the online figures per hour (all
versions and arms together), the latest complete hour, and its own /metrics text.

An hour is complete once every answer in it has had its whole conversion window inside
the log: before that its conversion is still rising, and an alert on it would fire on
every fresh hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

HOUR = 3600
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def conversion_key(report: dict[str, Any]) -> str:
    return f"conversion@{report.get('window_minutes', 30)}m"


def hourly(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's hours with every version and arm summed: requests, availability,
    conversion, and whether the hour is complete."""
    sums: dict[str, dict[str, float]] = {}
    for row in report.get("hours", []):
        if row.get("hour") is None:
            continue
        s = sums.setdefault(row["hour"], {"requests": 0, "ok": 0, "judged": 0, "followed": 0})
        requests = row.get("requests") or 0
        s["requests"] += requests
        # The report gives availability as a share; its count is the share of the requests.
        s["ok"] += round((row.get("availability") or 0.0) * requests)
        s["judged"] += row.get("judged") or 0
        s["followed"] += row.get("followed") or 0
    until = report.get("log_until")
    settled = _epoch(until) - report.get("window_minutes", 30) * 60 if until else None
    out = []
    for hour in sorted(sums):
        s = sums[hour]
        start = _epoch(hour)
        out.append(
            {
                "hour": hour,
                "at": start,
                "requests": int(s["requests"]),
                "availability": s["ok"] / s["requests"] if s["requests"] else None,
                "conversion": s["followed"] / s["judged"] if s["judged"] else None,
                "complete": settled is not None and start + HOUR <= settled,
            }
        )
    return out


def latest_complete(hours: list[dict[str, Any]]) -> dict[str, Any] | None:
    done = [h for h in hours if h["complete"]]
    return done[-1] if done else None


def conversion_by_hour(hours: list[dict[str, Any]]) -> dict[int, float]:
    """Complete hours' conversion by the hour's start (Unix seconds), for the evaluator."""
    return {
        int(h["at"]): h["conversion"]
        for h in hours
        if h["complete"] and h["conversion"] is not None
    }


def by_group(report: dict[str, Any], key: str) -> dict[str, list[tuple[float, float]]]:
    """Conversion per hour of each model version (key "version") or experiment arm ("arm")."""
    name = conversion_key(report)
    out: dict[str, list[tuple[float, float]]] = {}
    for row in report.get("hours", []):
        value = row.get(name)
        if value is None or row.get("hour") is None:
            continue
        if key == "arm":
            if not row.get("experiment") or not row.get("arm"):
                continue
            label = f"{row['experiment']}/{row['arm']}"
        else:
            label = row.get("version") or "unattributed"
        out.setdefault(label, []).append((_epoch(row["hour"]), float(value)))
    return {k: sorted(v) for k, v in sorted(out.items())}


class _StateCollector(Collector):
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        hour = (state.get("online") or {}).get("latest_complete_hour") or {}
        for metric, field, text in (
            ("movierec_online_conversion", "conversion", "Conversion of the latest complete hour."),
            ("movierec_online_requests", "requests", "Requests in the latest complete hour."),
            (
                "movierec_online_availability",
                "availability",
                "Share of the latest complete hour's requests answered 200 in time.",
            ),
        ):
            family = GaugeMetricFamily(metric, text, labels=("window",))
            if hour.get(field) is not None:
                family.add_metric(("1h",), hour[field])
            yield family
        drift = GaugeMetricFamily(
            "movierec_drift_indicator",
            "Input drift of the latest day against the production model's training window.",
            labels=("name",),
        )
        for name, indicator in ((state.get("drift") or {}).get("latest") or {}).items():
            # Only judged values: a thin day's divergence is mostly sampling noise.
            if indicator.get("value") is not None and indicator.get("judged", True):
                drift.add_metric((name,), indicator["value"])
        yield drift
        latest = (state.get("loop") or {}).get("latest") or {}
        for metric, part in (
            ("movierec_recommended_gini", "recommended"),
            ("movierec_watched_gini", "watched"),
        ):
            family = GaugeMetricFamily(metric, f"Gini of the {part} movies, latest day.")
            if part in latest:
                family.add_metric((), latest[part]["gini"])
            yield family
        yield from _audit_gauges((state.get("audit") or {}).get("alerts") or {})
        firing = GaugeMetricFamily(
            "movierec_alert_firing", "1 when the alert fires, else 0.", labels=("alertname",)
        )
        for alert in state.get("alerts") or []:
            firing.add_metric((alert["name"],), 1.0 if alert["state"] == "firing" else 0.0)
        yield firing
        steps = GaugeMetricFamily(
            "movierec_monitor_step_ok",
            "1 when the monitor's last run of the step succeeded, else 0.",
            labels=("step",),
        )
        for name, step in (state.get("steps") or {}).items():
            steps.add_metric((name,), 1.0 if step.get("ok") else 0.0)
        yield steps


_AUDIT_GAUGES = (
    ("fairness_worst_ratio", "The worst user group's figure over everyone's (R1, R2)."),
    ("shilling_suspects", "Movies with a burst of new accounts against their baseline."),
    ("scraping_detections", "Abnormal request patterns found in the answer log."),
    ("adult_violations", "Adult movies answered to minors (or barred unknown ages)."),
)


def _audit_gauges(figures: dict[str, Any]) -> Iterator[Metric]:
    """The last audit's figures (absent until one has run, or when it could not say)."""
    for name, text in _AUDIT_GAUGES:
        family = GaugeMetricFamily(f"movierec_audit_{name}", f"{text} From the last audit.")
        if figures.get(name) is not None:
            family.add_metric((), float(figures[name]))
        yield family


def metrics_text(state: dict[str, Any]) -> bytes:
    """The monitor's /metrics: Prometheus text written by the library (labels escaped)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StateCollector(state))
    return generate_latest(registry)
