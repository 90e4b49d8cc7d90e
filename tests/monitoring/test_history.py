"""The monitor's time series: rates and quantiles between scrapes, failed scrapes kept as
points, a bounded length, counter resets, and a restart that carries on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from movierec.monitoring.history import History


def service(requests: float, ok: float, fast: float, total: float, version: str = "v1") -> dict:
    """A parsed service scrape: `fast` of `total` requests within 10 ms, the rest within 1 s."""
    return {
        "up": True,
        "requests": requests,
        "ok": ok,
        "errors": requests - ok,
        "timeouts": 0.0,
        "buckets": {"0.01": fast, "1.0": total, "+Inf": total},
        "count": total,
        "version": version,
    }


def test_a_point_is_what_happened_since_the_previous_good_scrape(tmp_path: Path) -> None:
    history = History(tmp_path / "history.json")
    first = history.record("service", 100.0, service(10, 10, 10, 10))
    assert "request_rate" not in first  # nothing to compare the first scrape with
    history.record("service", 105.0, {"up": False, "error": "refused"})
    point = history.record("service", 110.0, service(110, 100, 60, 110))
    # 100 requests in 10 s, 90 of them 200; 50 within 10 ms, 50 more within 1 s.
    assert point["request_rate"] == 10.0
    assert point["error_rate"] == 1.0
    assert point["availability"] == 0.9
    assert point["latency_p50_ms"] == 10.0
    assert point["latency_p99_ms"] == 10.0 + 990.0 * 49 / 50
    assert [p["up"] for p in history.points["service"]] == [True, False, True]
    assert history.series("service", "request_rate") == [(110.0, 10.0)]


def test_a_restarted_service_counts_from_zero(tmp_path: Path) -> None:
    history = History(None)
    history.record("service", 0.0, service(1000, 1000, 1000, 1000))
    point = history.record("service", 10.0, service(20, 20, 20, 20))
    assert point["request_rate"] == 2.0 and point["latency_p50_ms"] == 5.0


def test_ingest_rejects_by_reason_per_second() -> None:
    history = History(None)
    sample: dict[str, Any] = {"up": True, "lines": 100.0, "rejected": {"malformed": 1.0}}
    history.record("ingest", 0.0, sample)
    later = {"up": True, "lines": 300.0, "rejected": {"malformed": 11.0, "bad_rating": 2.0}}
    point = history.record("ingest", 2.0, later)
    assert point["lines_rate"] == 100.0
    assert point["reject_rates"] == {"malformed": 5.0, "bad_rating": 1.0}


def test_the_history_is_bounded_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    history = History(path, limit=10)
    for i in range(25):
        history.record("service", float(i), service(i, i, i, i))
    assert len(history.points["service"]) == 10
    history.save()
    again = History(path, limit=10)
    assert list(again.points["service"]) == list(history.points["service"])
    # The first scrape after the restart is compared with the last one before it.
    point = again.record("service", 26.0, service(26, 26, 26, 26))
    assert point["request_rate"] == 1.0


def test_a_damaged_file_costs_the_history_only(tmp_path: Path) -> None:
    path = tmp_path / "history.json"
    path.write_text("{not json")
    history = History(path)
    assert not history.points["service"]
