"""The alert rules: the committed rules file is exactly what rules.py renders, Prometheus's
own checker accepts it, and its unit tests (deploy/prometheus/movierec-rules.test.yml)
show every alert firing when it should and staying silent when it should not."""

from __future__ import annotations

import subprocess
import sys

import yaml

from movierec.monitoring.rules import RULES, SERIES, Spec, by_name, duration, render
from tests.support.prometheus import REPO, RULES_FILE, RULES_TESTS, require

PROMTOOL = "/usr/bin/promtool"


def test_the_committed_rules_file_is_the_rendering() -> None:
    assert RULES_FILE.read_text() == render(), (
        "deploy/prometheus/movierec-rules.yml is stale: render it again with "
        "`.venv/bin/python -m movierec.monitoring.rules > deploy/prometheus/movierec-rules.yml`"
    )


def test_the_module_prints_the_rendering() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "movierec.monitoring.rules"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.stdout == render()


def test_the_rendering_is_yaml_saying_what_the_rules_say() -> None:
    groups = yaml.safe_load(render())["groups"]
    rendered = {r["alert"]: r for r in groups[0]["rules"]}
    assert list(rendered) == [rule.name for rule in RULES]
    for rule in RULES:
        got = rendered[rule.name]
        assert got["expr"] == rule.expr
        assert got["for"] == duration(rule.for_seconds)
        assert got["labels"] == {"severity": rule.severity}
        assert got["annotations"] == {"summary": rule.summary, "description": rule.reason}


def test_every_rule_has_a_series_the_evaluator_knows_and_a_reason() -> None:
    assert len({rule.name for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.spec.series in SERIES
        assert rule.summary and rule.reason and rule.expr
    assert by_name("MovierecServiceDown").for_seconds == 30


def test_durations_use_the_largest_exact_unit() -> None:
    assert [duration(s) for s in (30, 120, 300, 3600, 5400, 90)] == [
        "30s", "2m", "5m", "1h", "90m", "90s",
    ]  # fmt: skip


def test_a_spec_compares_and_treats_no_value_as_not_firing() -> None:
    below = Spec("availability_1h", "<", 0.999)
    assert below.holds(0.995) and not below.holds(0.9995) and not below.holds(0.999)
    assert not below.holds(None) and not below.holds(float("nan"))
    assert Spec("ingest_lag_seconds", ">", 600).holds(601)


def test_promtool_accepts_the_rules() -> None:
    require(PROMTOOL, "promtool")
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in done.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    require(PROMTOOL, "promtool")
    done = subprocess.run(
        [PROMTOOL, "test", "rules", RULES_TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=RULES_TESTS.parent,  # the test file names the rules file beside it
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tested = {t["alertname"] for c in yaml.safe_load(RULES_TESTS.read_text())["tests"]
              for t in c["alert_rule_test"]}  # fmt: skip
    assert tested == {rule.name for rule in RULES}, "every rule needs its promtool test"
