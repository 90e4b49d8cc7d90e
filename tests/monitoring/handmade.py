"""A hand-made online report (the shape of movierec.online.figures.online_report) and a
monitor state built from it, with exactly known figures, for the rendering tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from movierec.monitoring.summary import by_group, hourly, latest_complete

H0 = 1_735_689_600  # 2025-01-01T00:00Z


def figures(requests: int, answered: int, judged: int, followed: int, **extra: Any) -> dict:
    return {
        "requests": requests,
        "answered": answered,
        "availability": answered / requests if requests else None,
        "error_rate": 0.0,
        "timeout_rate": (requests - answered) / requests if requests else None,
        "latency_p50_ms": 10,
        "latency_p99_ms": 80,
        "judged": judged,
        "followed": followed,
        "conversion@30m": followed / judged if judged else None,
        "chosen_rank": 2.0,
        "minutes_watched": 40.0,
        **extra,
    }


def hour(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def online_report() -> dict[str, Any]:
    """Three hours: 00h on v1 alone (100 requests, 20 of 80 judged followed), 01h split
    between arms A (v1) and B (v2) of experiment e1, 02h still open (log until 02:40)."""
    rows = [
        {"hour": hour(H0), "version": "v1", "experiment": None, "arm": None,
         **figures(100, 100, 80, 20)},
        {"hour": hour(H0 + 3600), "version": "v1", "experiment": "e1", "arm": "A",
         **figures(50, 40, 40, 10)},
        {"hour": hour(H0 + 3600), "version": "v2", "experiment": "e1", "arm": "B",
         **figures(50, 50, 50, 25)},
        {"hour": hour(H0 + 7200), "version": "v2", "experiment": None, "arm": None,
         **figures(10, 10, 2, 1)},
    ]  # fmt: skip
    return {
        "window_minutes": 30,
        "log_until": hour(H0 + 7200 + 40 * 60),
        "overall": figures(210, 200, 172, 56),
        "versions": {"v1": figures(150, 140, 120, 30), "v2": figures(60, 60, 52, 26)},
        "arms": {
            "e1/A": {"version": "v1", **figures(50, 40, 40, 10)},
            "e1/B": {"version": "v2", **figures(50, 50, 50, 25)},
        },
        "hours": rows,
        "warnings": [],
    }


def service_points() -> list[dict[str, Any]]:
    points = []
    for i in range(6):
        at = H0 + 7200 + 60 * i
        point: dict[str, Any] = {"at": at, "up": i != 3, "version": "v1" if i < 4 else "v2"}
        if i == 3:
            point = {"at": at, "up": False, "error": "ConnectionRefusedError"}
        elif i:
            point.update(
                request_rate=10.0 + i,
                error_rate=0.1 * i,
                timeout_rate=0.0,
                availability=0.99,
                latency_p50_ms=2.0 + i,
                latency_p99_ms=30.0 + i,
            )
        points.append(point)
    return points


def ingest_points() -> list[dict[str, Any]]:
    return [
        {"at": H0 + 7200 + 60 * i, "up": True, "lines_rate": 100.0,
         "reject_rates": {"malformed": 0.5 * i, "bad_rating": 0.0}}
        for i in range(1, 5)
    ]  # fmt: skip


def state() -> dict[str, Any]:
    report = online_report()
    hours = hourly(report)
    indicator = {"value": 0.3, "threshold": 0.1, "drifted": True}
    calm = {"value": 0.01, "threshold": 0.2, "drifted": False}
    return {
        "generated_at": hour(H0 + 7560),
        "at": H0 + 7560,
        "rounds": 6,
        "every": 5,
        "service": "http://127.0.0.1:8082",
        "ingest": "http://127.0.0.1:9100",
        "steps": {
            "scrape_service": {"ok": False, "error": "ConnectionRefusedError", "seconds": 0.01},
            "online": {"ok": True, "seconds": 0.2},
        },
        "series": {"service": service_points(), "ingest": ingest_points()},
        "online": {
            "log_until": report["log_until"],
            "window_minutes": 30,
            "hours": hours,
            "latest_complete_hour": latest_complete(hours),
            "conversion_by_version": by_group(report, "version"),
            "conversion_by_arm": by_group(report, "arm"),
        },
        "drift": {
            "window": {
                "version": "v1",
                "from": "2025-01-01",
                "to": "2025-01-02",
                "source": "provenance",
            },
            "days": [
                {"day": "2025-01-02", "indicators": {"movie_mix_js": calm, "rating_tvd": calm}},
                {
                    "day": "2025-01-03",
                    "indicators": {"movie_mix_js": indicator, "rating_tvd": calm},
                },
            ],
            "latest": {"movie_mix_js": indicator, "rating_tvd": calm},
        },
        "loop": {
            "days": [
                {
                    "day": "2025-01-01",
                    "recommended": {"gini": 0.5, "coverage": 0.5},
                    "watched": {"gini": 0.1},
                },
                {
                    "day": "2025-01-02",
                    "recommended": {"gini": 0.75, "coverage": 0.25},
                    "watched": {"gini": 0.75},
                },
            ],
            "latest": {
                "day": "2025-01-02",
                "recommended": {"gini": 0.75, "coverage": 0.25},
                "watched": {"gini": 0.75},
            },
        },
        "registry": {
            "production": "20250101T020500Z-als-bbb222",
            "history": [
                {"time": hour(H0), "from": None, "to": "20250101T000000Z-als-aaa111"},
                {
                    "time": hour(H0 + 7500),
                    "from": "20250101T000000Z-als-aaa111",
                    "to": "20250101T020500Z-als-bbb222",
                },
            ],
        },
        "alerts": [
            {
                "name": "MovierecServiceDown",
                "state": "firing",
                "since": H0 + 7380,
                "value": 0.0,
                "summary": "down",
                "severity": "critical",
                "history": [{"at": H0 + 7380, "from": "pending", "to": "firing"}],
            },
            {
                "name": "MovierecLatencyHigh",
                "state": "inactive",
                "since": None,
                "value": 0.03,
                "summary": "slow",
                "severity": "warning",
                "history": [],
            },
        ],
    }
