"""The statistics of an experiment: intervals, tests, sample sizes, and a verdict that
repeated looks cannot fool.

Conversion (a share) gets a Wilson interval per arm, a two-proportion z-test and a Wald
interval for the difference; minutes watched per answer (a mean) gets Welch's t-test from
the arms' sums and sums of squares. Those fixed-sample tests are reported, but the verdict
comes from a mixture sequential probability ratio test (mSPRT, Johari et al. 2017, with a
normal mixing distribution of scale tau = the stated minimal effect): its statistic may be
looked at after every answer, and the chance that it ever crosses 1/alpha when the arms
are equal stays below alpha. A fixed-sample p-value looked at daily would cross 0.05 far
more often (tests/online/test_stats.py measures both on A/A data).
"""

from __future__ import annotations

import math
from typing import Any

from scipy import stats

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> list[float] | None:
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 6), round(centre + half, 6)]


def msprt(difference: float, variance: float, tau: float) -> float:
    """The mixture likelihood ratio of 'a difference' against 'none' (normal approximation
    of the difference, normal mixture of scale tau over the alternative)."""
    if variance <= 0:
        return 1.0
    t2 = tau * tau
    exponent = t2 * difference * difference / (2 * variance * (variance + t2))
    return math.sqrt(variance / (variance + t2)) * math.exp(min(exponent, 700.0))


def two_proportions(
    s_c: int, n_c: int, s_t: int, n_t: int, min_effect: float, alpha: float, power: float
) -> dict[str, Any]:
    """Treatment (t) against control (c) on a share: relative minimal effect."""
    if min(n_c, n_t) == 0:
        return {"verdict": "not yet known", "reason": "an arm has no judged answers yet"}
    p_c, p_t = s_c / n_c, s_t / n_t
    difference = p_t - p_c
    pooled = (s_c + s_t) / (n_c + n_t)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    z = difference / se_pooled if se_pooled > 0 else 0.0
    variance = p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t
    se = math.sqrt(variance)
    # tau: the absolute size of the smallest effect worth finding (at least one answer in
    # a thousand, so a control that never converts still gives the test a scale).
    tau = max(min_effect * p_c, 1e-3)
    ratio = msprt(difference, max(variance, 1e-12), tau)
    needed = sample_size(p_c, min_effect, alpha, power)
    return {
        "difference": round(difference, 6),
        "interval": [round(difference - Z95 * se, 6), round(difference + Z95 * se, 6)],
        "relative": round(difference / p_c, 6) if p_c > 0 else None,
        "z": round(z, 4),
        "p_value": float(2 * stats.norm.sf(abs(z))),
        "msprt": ratio,
        "always_valid_p": min(1.0, 1.0 / ratio),
        "answers_needed_per_arm": needed,
        "answers_still_needed": max(0, needed - min(n_c, n_t)) if needed else None,
        "verdict": _verdict(ratio, alpha, difference),
    }


def welch(
    n_c: int,
    sum_c: float,
    sq_c: float,
    n_t: int,
    sum_t: float,
    sq_t: float,
    tau: float,
    alpha: float,
) -> dict[str, Any]:
    """Treatment against control on a mean, from counts, sums and sums of squares."""
    if min(n_c, n_t) < 2:
        return {"verdict": "not yet known", "reason": "an arm has fewer than two settled answers"}
    m_c, m_t = sum_c / n_c, sum_t / n_t
    v_c = max(0.0, (sq_c - n_c * m_c * m_c) / (n_c - 1))
    v_t = max(0.0, (sq_t - n_t * m_t * m_t) / (n_t - 1))
    variance = v_c / n_c + v_t / n_t
    difference = m_t - m_c
    if variance <= 0:
        return {"difference": difference, "verdict": "not yet known", "reason": "no variance"}
    t = difference / math.sqrt(variance)
    df = variance**2 / ((v_c / n_c) ** 2 / (n_c - 1) + (v_t / n_t) ** 2 / (n_t - 1) or 1e-300)
    ratio = msprt(difference, variance, max(tau, 1e-6))
    half = float(stats.t.ppf(0.975, df)) * math.sqrt(variance)
    return {
        "difference": round(difference, 6),
        "interval": [round(difference - half, 6), round(difference + half, 6)],
        "t": round(t, 4),
        "df": round(df, 1),
        "p_value": float(2 * stats.t.sf(abs(t), df)),
        "msprt": ratio,
        "always_valid_p": min(1.0, 1.0 / ratio),
        "verdict": _verdict(ratio, alpha, difference),
    }


def sample_size(p: float, min_effect: float, alpha: float, power: float) -> int | None:
    """Answers per arm a fixed-sample z-test needs to find a relative change `min_effect`
    of a share `p` with the given error rates."""
    if not 0 < p < 1:
        return None
    q = min(max(p * (1 + min_effect), 1e-9), 1 - 1e-9)
    z_a, z_b = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    delta = q - p
    return math.ceil(float(z_a + z_b) ** 2 * (p * (1 - p) + q * (1 - q)) / (delta * delta))


def _verdict(ratio: float, alpha: float, difference: float) -> str:
    if ratio >= 1 / alpha:
        return "better" if difference > 0 else "worse"
    return "not yet known"
