"""The experiment statistics: against textbook values and formulas, and the sequential
verdict's false-positive rate under repeated looks, measured on A/A data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from movierec.online import stats


def test_wilson_interval_matches_the_textbook_value() -> None:
    # 5 of 10 and 0 of 20: Wilson (1927) / Newcombe (1998) table values.
    assert stats.wilson(5, 10) == pytest.approx([0.2366, 0.7634], abs=1e-4)
    assert stats.wilson(0, 20) == pytest.approx([0.0, 0.1611], abs=1e-4)
    assert stats.wilson(0, 0) is None


@given(
    s_c=st.integers(0, 500), n_c=st.integers(1, 500), s_t=st.integers(0, 500),
    n_t=st.integers(1, 500),
)  # fmt: skip
def test_the_z_test_is_the_pooled_two_proportion_test(
    s_c: int, n_c: int, s_t: int, n_t: int
) -> None:
    s_c, s_t = min(s_c, n_c), min(s_t, n_t)
    got = stats.two_proportions(s_c, n_c, s_t, n_t, 0.1, 0.05, 0.8)
    pooled = (s_c + s_t) / (n_c + n_t)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    z = (s_t / n_t - s_c / n_c) / se if se else 0.0
    assert got["z"] == pytest.approx(z, abs=1e-4)
    assert got["p_value"] == pytest.approx(2 * (1 - sps.norm.cdf(abs(z))), abs=1e-9)
    assert got["interval"][0] <= got["difference"] <= got["interval"][1]
    assert 0 < got["always_valid_p"] <= 1


def test_sample_size_is_the_two_proportion_formula() -> None:
    # 10% -> 11% at alpha 0.05, power 0.8: (1.95996 + 0.84162)^2 (0.09 + 0.0979) / 0.01^2
    want = math.ceil((1.959964 + 0.841621) ** 2 * (0.1 * 0.9 + 0.11 * 0.89) / 0.01**2)
    assert stats.sample_size(0.1, 0.1, 0.05, 0.8) == want == 14749
    assert stats.sample_size(0.0, 0.1, 0.05, 0.8) is None


def test_welch_agrees_with_scipy_on_raw_samples() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(40, 12, 300), rng.normal(43, 20, 250)
    got = stats.welch(
        len(a), a.sum(), (a * a).sum(), len(b), b.sum(), (b * b).sum(), tau=4.0, alpha=0.05
    )
    want = sps.ttest_ind(b, a, equal_var=False)
    assert got["t"] == pytest.approx(want.statistic, abs=1e-3)
    assert got["p_value"] == pytest.approx(want.pvalue, rel=1e-6)


def _looks(rng: np.random.Generator, p_c: float, p_t: float, looks: int, per_look: int):
    """Cumulative (successes, n) of both arms after each look."""
    c = rng.binomial(per_look, p_c, looks).cumsum()
    t = rng.binomial(per_look, p_t, looks).cumsum()
    n = per_look * np.arange(1, looks + 1)
    return zip(c.tolist(), t.tolist(), n.tolist(), strict=True)


def test_repeated_looks_keep_the_sequential_verdict_within_alpha() -> None:
    """A/A: 400 experiments, each looked at 50 times. The sequential verdict ever says
    better or worse in at most alpha of them; the fixed-sample p < 0.05 looked at as
    often crosses in far more: the reason the verdict is sequential."""
    rng = np.random.default_rng(20261207)
    sequential = naive = 0
    for _ in range(400):
        seq_hit = naive_hit = False
        for s_c, s_t, n in _looks(rng, 0.1, 0.1, looks=50, per_look=200):
            got = stats.two_proportions(s_c, n, s_t, n, 0.1, 0.05, 0.8)
            seq_hit |= got["verdict"] != "not yet known"
            naive_hit |= got["p_value"] < 0.05
        sequential += seq_hit
        naive += naive_hit
    assert sequential / 400 <= 0.05
    assert naive / 400 > 0.15


def test_a_real_difference_is_found_and_signed() -> None:
    rng = np.random.default_rng(5)
    verdicts = []
    for p_t in (0.14, 0.06):  # 10% control: 40% better, 40% worse
        verdict = "not yet known"
        for s_c, s_t, n in _looks(rng, 0.1, p_t, looks=40, per_look=250):
            verdict = stats.two_proportions(s_c, n, s_t, n, 0.1, 0.05, 0.8)["verdict"]
            if verdict != "not yet known":
                break
        verdicts.append(verdict)
    assert verdicts == ["better", "worse"]
