"""An experiment's report: each arm's online figures with intervals, each treatment arm
against the control with the tests of movierec/online/stats.py and a verdict."""

from __future__ import annotations

from typing import Any

from movierec.online import stats
from movierec.registry.experiments import Experiment


def experiment_report(experiment: Experiment, online: dict[str, Any]) -> dict[str, Any]:
    conversion = f"conversion@{online['window_minutes']}m"
    arms: dict[str, dict[str, Any]] = {}
    for arm in experiment.arms:
        figures = online["arms"].get(f"{experiment.id}/{arm.name}")
        figures = _by_version(figures, arm.version)
        judged, followed = figures.get("judged", 0), figures.get("followed", 0)
        settled = figures.get("settled", 0)
        arms[arm.name] = {
            "version": arm.version,
            "share": arm.share,
            "requests": figures.get("requests", 0),
            "answered": figures.get("answered", 0),
            "availability": figures.get("availability"),
            "latency_p99_ms": figures.get("latency_p99_ms"),
            conversion: {
                "value": figures.get(conversion),
                "interval": stats.wilson(followed, judged),
                "judged": judged,
                "followed": followed,
            },
            "minutes_watched": {
                "value": figures.get("minutes_watched"),
                "settled": settled,
                "sum": figures.get("minutes_sum", 0),
                "sum_of_squares": figures.get("minutes_sq", 0),
            },
        }
    control = _control(experiment)
    comparisons = []
    c = arms[control]
    for name, t in arms.items():
        if name == control:
            continue
        share = stats.two_proportions(
            c[conversion]["followed"],
            c[conversion]["judged"],
            t[conversion]["followed"],
            t[conversion]["judged"],
            experiment.min_effect,
            experiment.alpha,
            experiment.power,
        )
        comparisons.append({"arm": name, "against": control, "metric": conversion, **share})
        cm, tm = c["minutes_watched"], t["minutes_watched"]
        mean_c = cm["sum"] / cm["settled"] if cm["settled"] else 0.0
        minutes = stats.welch(
            cm["settled"], cm["sum"], cm["sum_of_squares"],
            tm["settled"], tm["sum"], tm["sum_of_squares"],
            tau=experiment.min_effect * mean_c, alpha=experiment.alpha,
        )  # fmt: skip
        comparisons.append(
            {"arm": name, "against": control, "metric": "minutes_watched", **minutes}
        )
    return {
        "experiment": experiment.id,
        "started": experiment.started,
        "stopped": experiment.stopped,
        "control": control,
        "method": {
            "verdict": "mixture sequential probability ratio test on the difference (normal "
            "approximation, mixing scale = the minimal effect): valid at every look",
            "alpha": experiment.alpha,
            "power": experiment.power,
            "min_effect": experiment.min_effect,
            "horizon": experiment.horizon,
        },
        "arms": arms,
        "comparisons": comparisons,
        "log_until": online.get("log_until"),
        "final": online.get("final"),
        "warnings": list(online.get("warnings", [])),
    }


def _control(experiment: Experiment) -> str:
    names = [arm.name for arm in experiment.arms]
    return "control" if "control" in names else names[0]


def _by_version(figures: dict[str, Any] | None, version: str) -> dict[str, Any]:
    """The arm's figures; an arm keyed by another version (a report made before a version
    changed) is not this arm."""
    if figures is None or figures.get("version") not in (None, version):
        return {}
    return figures
