"""The online figures per hour across versions and arms, the latest complete hour, and
the monitor's /metrics, on the hand-made report."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from movierec.monitoring.summary import by_group, conversion_by_hour, hourly, metrics_text
from tests.monitoring.handmade import H0, online_report, state


def test_hours_sum_every_version_and_arm_and_know_when_they_are_complete() -> None:
    hours = hourly(online_report())
    assert [h["at"] for h in hours] == [H0, H0 + 3600, H0 + 7200]
    first, second, third = hours
    assert (first["requests"], first["availability"], first["conversion"]) == (100, 1.0, 0.25)
    # Arm A answered 40 of 50 and B 50 of 50; 10 of 40 and 25 of 50 judged were followed.
    assert second["requests"] == 100 and second["availability"] == 0.9
    assert math.isclose(second["conversion"], 35 / 90)
    # The log ends at 02:40: with a 30-minute window, answers up to 02:10 are settled.
    assert [h["complete"] for h in hours] == [True, True, False]
    assert third["conversion"] == 0.5
    assert conversion_by_hour(hours) == {H0: 0.25, H0 + 3600: 35 / 90}


def test_conversion_per_version_and_per_arm() -> None:
    report = online_report()
    versions = by_group(report, "version")
    assert versions == {
        "v1": [(H0, 0.25), (H0 + 3600, 0.25)],
        "v2": [(H0 + 3600, 0.5), (H0 + 7200, 0.5)],
    }
    assert by_group(report, "arm") == {"e1/A": [(H0 + 3600, 0.25)], "e1/B": [(H0 + 3600, 0.5)]}


def test_the_monitor_metrics_name_every_figure() -> None:
    text = metrics_text(state()).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert math.isclose(samples[("movierec_online_conversion", (("window", "1h"),))], 35 / 90)
    assert samples[("movierec_online_requests", (("window", "1h"),))] == 100
    assert samples[("movierec_online_availability", (("window", "1h"),))] == 0.9
    assert samples[("movierec_drift_indicator", (("name", "movie_mix_js"),))] == 0.3
    assert samples[("movierec_drift_indicator", (("name", "rating_tvd"),))] == 0.01
    assert samples[("movierec_recommended_gini", ())] == 0.75
    assert samples[("movierec_watched_gini", ())] == 0.75
    assert samples[("movierec_alert_firing", (("alertname", "MovierecServiceDown"),))] == 1
    assert samples[("movierec_alert_firing", (("alertname", "MovierecLatencyHigh"),))] == 0
    assert samples[("movierec_monitor_step_ok", (("step", "scrape_service"),))] == 0


def test_an_empty_state_gives_families_without_samples() -> None:
    text = metrics_text({}).decode()
    assert "# TYPE movierec_online_conversion gauge" in text
    assert "movierec_online_conversion{" not in text
