"""A figure of each user group against everyone's: the group's ratio estimate with the
upper end of its 95% interval, whether the group is large enough to judge, and whether
it breaches its floor (movierec/audit/fairness.py says why the rule is what it is).

A group's figure is sum(num) / sum(den) over its units (a user's NDCG over 1; a user's
followed answers over their judged answers). Its standard error is the linearised one of
a ratio estimator, sqrt(n / (n - 1) x sum over units of (num - value x den)^2) / sum(den),
which for den = 1 is the textbook standard error of a mean.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from movierec.online.stats import Z95


def ratio_estimates(
    labels: np.ndarray, num: np.ndarray, den: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Per label: units, sum(num), sum(den), value = sum(num) / sum(den) and the upper end
    of its 95% interval (None with fewer than two units or no den)."""
    labels = np.asarray(labels, dtype=object)
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    found, index = np.unique(labels.astype(str), return_inverse=True)
    n = np.bincount(index, minlength=len(found))
    s_num = np.bincount(index, weights=num, minlength=len(found))
    s_den = np.bincount(index, weights=den, minlength=len(found))
    values = np.divide(s_num, s_den, out=np.zeros(len(found)), where=s_den > 0)
    # Two passes (the group's value, then each unit's residual from it): the expanded
    # sum of squares would cancel to noise when every unit sits at the group's value.
    residual = num - values[index] * den
    squares = np.bincount(index, weights=residual * residual, minlength=len(found))
    out: dict[str, dict[str, Any]] = {}
    for i, label in enumerate(found.tolist()):
        value = float(values[i]) if s_den[i] > 0 else None
        upper = None
        if value is not None and n[i] >= 2:
            se = math.sqrt(float(squares[i]) * n[i] / (n[i] - 1)) / float(s_den[i])
            upper = value + Z95 * se
        out[label] = {
            "units": int(n[i]),
            "num": float(s_num[i]),
            "den": float(s_den[i]),
            "value": value,
            "upper": upper,
        }
    return out


def judge_groups(
    figure: str,
    labels: np.ndarray,
    num: np.ndarray,
    den: np.ndarray,
    overall: float | None,
    order: tuple[str, ...],
    floor: float,
    min_users: int,
) -> dict[str, dict[str, Any]]:
    """One figure of each group against the overall one: value, upper end, their ratios
    to overall, whether the group is large enough to judge and whether it breaches."""
    estimates = ratio_estimates(labels, num, den)
    out: dict[str, dict[str, Any]] = {}
    for label in order:
        est = estimates.get(label, {"units": 0, "num": 0.0, "den": 0.0, "value": None})
        value, upper = est["value"], est.get("upper")
        ratio = ratio_upper = None
        if overall and value is not None:
            ratio = value / overall
            ratio_upper = None if upper is None else upper / overall
        eligible = est["units"] >= min_users
        out[label] = {
            "users": est["units"],
            "num": est["num"],
            "den": est["den"],
            figure: rounded(value),
            "upper": rounded(upper),
            "ratio": rounded(ratio),
            "ratio_upper": rounded(ratio_upper),
            "eligible": eligible,
            "breach": bool(
                eligible and ratio is not None and ratio < floor and (ratio_upper or 0.0) < 1.0
            ),
        }
    return out


def summarise(
    groupings: dict[str, dict[str, dict[str, dict[str, Any]]]], figures: tuple[str, ...]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(breaches, worst): every breaching (grouping, group, figure), and the lowest ratio
    of any eligible group."""
    breaches, worst = [], None
    for grouping, groups in groupings.items():
        for label, row in groups.items():
            for figure in figures:
                cell = row["figures"][figure]
                entry = {"grouping": grouping, "group": label, "figure": figure}
                entry |= {k: cell[k] for k in ("users", "ratio", "ratio_upper")}
                entry["value"] = cell[figure]
                if cell["breach"]:
                    breaches.append(entry)
                eligible = cell["eligible"] and cell["ratio"] is not None
                if eligible and (worst is None or cell["ratio"] < worst["ratio"]):
                    worst = entry
    return breaches, worst


def verdict(breaches: list[dict[str, Any]], worst: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "breaches": breaches,
        "worst": worst,
        "worst_ratio": None if worst is None else worst["ratio"],
        "passed": None if worst is None else not breaches,  # None: no group could be judged
    }


def rounded(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)
