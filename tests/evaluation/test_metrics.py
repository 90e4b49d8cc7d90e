"""The vectorised metrics against the loop-based reference, and against hand-computed values."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.evaluation import metrics as m
from movierec.evaluation import reference as ref


@dataclass
class Case:
    recommended: np.ndarray
    relevance: m.Relevance
    k: int
    n_items: int

    @property
    def lists(self) -> list[list[int]]:
        return self.recommended.tolist()

    @property
    def dicts(self) -> list[dict[int, float]]:
        r = self.relevance
        return ref.relevant_per_user(r.indptr.tolist(), r.indices.tolist(), r.grades)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Small random problems: -1 anywhere in a list, repeats, users with nothing relevant,
    items listed twice as relevant (with different grades), grade 0, k above and below width."""
    n_users = draw(st.integers(0, 6))
    n_items = draw(st.integers(1, 8))
    width = draw(st.integers(0, 7))
    cell = st.integers(-1, n_items - 1)
    rows = draw(st.lists(st.lists(cell, min_size=width, max_size=width), min_size=n_users,
                         max_size=n_users))  # fmt: skip
    pairs = st.tuples(st.integers(0, n_items - 1), st.sampled_from([0.0, 0.5, 1.0, 3.0]))
    per_user = [draw(st.lists(pairs, max_size=6)) for _ in range(n_users)]
    indptr = np.concatenate(([0], np.cumsum([len(p) for p in per_user]))).astype(np.int64)
    indices = np.array([i for p in per_user for i, _ in p], dtype=np.int64)
    grades = np.array([g for p in per_user for _, g in p], dtype=np.float64)
    recommended = np.array(rows, dtype=np.int64).reshape(n_users, width)
    k = draw(st.integers(1, 9))
    return Case(recommended, m.Relevance(indptr, indices, grades), k, n_items)


def per_user_reference(case: Case, metric: str, **kwargs: object) -> np.ndarray:
    fn = getattr(ref, metric)
    return np.array(
        [fn(lst, rel, case.k, **kwargs) for lst, rel in zip(case.lists, case.dicts, strict=True)],
        dtype=np.float64,
    )


def close(fast: np.ndarray, slow: np.ndarray) -> None:
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12, equal_nan=True)


@settings(max_examples=300, deadline=None)
@given(cases())
def test_accuracy_metrics_match_reference(case: Case) -> None:
    rec, rel, k = case.recommended, case.relevance, case.k
    binary = m.Relevance(rel.indptr, rel.indices)
    close(m.ndcg_at_k(rec, binary, k), per_user_reference(case, "ndcg"))
    close(m.ndcg_at_k(rec, rel, k, graded=True), per_user_reference(case, "ndcg", graded=True))
    close(m.recall_at_k(rec, rel, k), per_user_reference(case, "recall"))
    close(
        m.recall_at_k(rec, rel, k, denominator="relevant"),
        per_user_reference(case, "recall", denominator="relevant"),
    )
    ap = per_user_reference(case, "average_precision")
    close(m.average_precision_at_k(rec, rel, k), ap)
    close(np.array(m.map_at_k(rec, rel, k)), np.array(ref.mean_defined(list(ap))))
    close(m.hit_rate_at_k(rec, rel, k), per_user_reference(case, "hit_rate"))
    close(m.precision_at_k(rec, rel, k), per_user_reference(case, "precision"))
    close(m.mrr_at_k(rec, rel, k), per_user_reference(case, "reciprocal_rank"))


@settings(max_examples=200, deadline=None)
@given(cases(), st.lists(st.integers(0, 50), min_size=8, max_size=8))
def test_summary_and_catalogue_metrics_match_reference(case: Case, pop: list[int]) -> None:
    rec, k, n = case.recommended, case.k, case.n_items
    popularity = np.array(pop[:n], dtype=np.float64)
    counts = ref.recommendation_counts(case.lists, n, k)
    assert m.recommendation_counts(rec, n, k).tolist() == counts
    close(np.array(m.catalogue_coverage(rec, n, k)), np.array(ref.coverage(case.lists, n, k)))
    expected_pop = ref.mean_popularity(case.lists, pop[:n], k)
    close(np.array(m.popularity_bias(rec, popularity, k)), np.array(expected_pop))
    close(np.array(m.gini(counts)), np.array(ref.gini(counts)))

    summary = m.summarize(rec, case.relevance, n, popularity, k)
    binary = [dict.fromkeys(rel, 1.0) for rel in case.dicts]
    expected = {
        f"ndcg@{k}": [ref.ndcg(lst, rel, k) for lst, rel in zip(case.lists, binary, strict=True)],
        f"recall@{k}": per_user_reference(case, "recall"),
        f"map@{k}": per_user_reference(case, "average_precision"),
        f"hit_rate@{k}": per_user_reference(case, "hit_rate"),
        f"precision@{k}": per_user_reference(case, "precision"),
        f"mrr@{k}": per_user_reference(case, "reciprocal_rank"),
    }
    for name, values in expected.items():
        close(np.array(summary[name]), np.array(ref.mean_defined(list(values))))
    assert summary["users"] == sum(1 for rel in case.dicts if rel)
    close(np.array(summary["coverage"]), np.array(ref.coverage(case.lists, n, k)))
    close(np.array(summary["mean_popularity"]), np.array(expected_pop))


@settings(max_examples=100, deadline=None)
@given(cases())
def test_scipy_matrix_input_matches_csr_structure(case: Case) -> None:
    dicts = case.dicts
    rows = [u for u, rel in enumerate(dicts) for g in rel.values() if g > 0]
    cols = [i for rel in dicts for i, g in rel.items() if g > 0]
    vals = [g for rel in dicts for g in rel.values() if g > 0]
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(len(dicts), case.n_items))
    positive = [{i: g for i, g in rel.items() if g > 0} for rel in dicts]
    expected = [
        ref.ndcg(lst, rel, case.k, graded=True)
        for lst, rel in zip(case.lists, positive, strict=True)
    ]
    close(m.ndcg_at_k(case.recommended, matrix, case.k, graded=True), np.array(expected))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=30))
def test_gini_matches_reference(counts: list[int]) -> None:
    close(np.array(m.gini(counts)), np.array(ref.gini(counts)))


def relevance(*sets: list[int]) -> m.Relevance:
    indptr = np.concatenate(([0], np.cumsum([len(s) for s in sets])))
    return m.Relevance(indptr, np.array([i for s in sets for i in s], dtype=np.int64))


def test_textbook_values() -> None:
    rec = np.array([[1, 9, 2]])  # relevant, not, relevant; 2 relevant items
    rel = relevance([1, 2])
    assert m.ndcg_at_k(rec, rel, 3)[0] == pytest.approx(
        (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    )
    assert m.average_precision_at_k(rec, rel, 3)[0] == pytest.approx((1 + 2 / 3) / 2)
    assert m.precision_at_k(rec, rel, 3)[0] == pytest.approx(2 / 3)
    assert m.mrr_at_k(np.array([[7, 8, 2]]), rel, 3)[0] == pytest.approx(1 / 3)
    assert m.hit_rate_at_k(np.array([[7, 8, 9]]), rel, 3)[0] == 0.0
    # Graded: gains 3 (item 1) and 1 (item 2); the list has them in the wrong order.
    graded = m.Relevance(np.array([0, 2]), np.array([1, 2]), np.array([3.0, 1.0]))
    expected = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert m.ndcg_at_k(np.array([[2, 1]]), graded, 2, graded=True)[0] == pytest.approx(expected)


def test_recall_denominators() -> None:
    rec, rel = np.array([[1, 2]]), relevance([1, 2, 3])
    assert m.recall_at_k(rec, rel, 2)[0] == 1.0  # hits / min(3, k=2)
    assert m.recall_at_k(rec, rel, 2, denominator="relevant")[0] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="denominator"):
        m.recall_at_k(rec, rel, 2, denominator="items")  # type: ignore[arg-type]


def test_duplicates_padding_and_short_lists() -> None:
    rel = relevance([1], [1, 2])
    rec = np.array([[1, 1, 5, -1], [-1, 2, 1, 1]])
    assert m.precision_at_k(rec, rel, 4).tolist() == [1 / 4, 2 / 4]  # the repeat counts once
    # k beyond the width: the missing slots are misses, the denominator stays k.
    assert m.precision_at_k(rec[:, :2], rel, 10).tolist() == [1 / 10, 1 / 10]
    assert m.recall_at_k(rec[:, :2], rel, 10).tolist() == [1.0, 0.5]
    assert m.recommendation_counts(rec, 6).tolist() == [0, 2, 1, 0, 0, 1]


def test_users_without_relevant_items_are_excluded_from_means() -> None:
    rec = np.array([[1, 2], [1, 2], [3, 4]])
    rel = relevance([1], [], [9])
    values = m.recall_at_k(rec, rel, 2)
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2] == 0.0
    assert m.mean_over_users(values) == 0.5
    assert m.summarize(rec, rel, 10, np.ones(10), k=2)["users"] == 2


def test_empty_input_gives_empty_arrays_and_nan_means_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec, rel = np.empty((0, 20), dtype=np.int64), relevance()
        assert m.ndcg_at_k(rec, rel).shape == (0,)
        summary = m.summarize(rec, rel, 5, np.ones(5))
        assert summary["users"] == 0 and math.isnan(summary["ndcg@20"])
        assert summary["coverage"] == 0.0 and summary["gini"] == 0.0
        assert math.isnan(summary["mean_popularity"])
        no_columns = m.ndcg_at_k(np.empty((2, 0), dtype=np.int64), relevance([1], []))
        assert no_columns[0] == 0.0 and math.isnan(no_columns[1])


def test_invalid_input_is_rejected() -> None:
    rel = relevance([1])
    with pytest.raises(ValueError, match="CSR rows"):
        m.ndcg_at_k(np.array([[1], [2]]), rel)
    with pytest.raises(TypeError):
        m.ndcg_at_k(np.array([[1.5]]), rel)
    with pytest.raises(ValueError, match="k must"):
        m.ndcg_at_k(np.array([[1]]), rel, 0)
    with pytest.raises(ValueError, match="outside a catalogue"):
        m.catalogue_coverage(np.array([[3]]), 3)
    with pytest.raises(ValueError, match="grades"):
        m.ndcg_at_k(np.array([[1]]), m.Relevance(np.array([0, 1]), np.array([1]), np.array([-1])))


def test_gini_known_values() -> None:
    assert m.gini([4, 4, 4, 4]) == 0.0
    assert m.gini([0, 0, 0, 7]) == pytest.approx(3 / 4)  # (n - 1) / n
    assert m.gini([1, 2, 3]) == pytest.approx(2 / 9)  # sum |xi - xj| = 8, 2 n^2 mean = 36
    assert m.gini([0, 0]) == 0.0 and math.isnan(m.gini([]))
    # Items never recommended are zeros in the counts, so they raise the inequality.
    assert m.gini(m.recommendation_counts(np.array([[0], [1]]), 4)) == pytest.approx(0.5)


def test_popularity_bias_and_share() -> None:
    rec = np.array([[0, 1], [0, -1]])
    popularity = np.array([6.0, 2.0, 2.0])
    assert m.popularity_bias(rec, popularity) == pytest.approx((6 + 2 + 6) / 3)
    assert m.popularity_bias(rec, popularity, share=True) == pytest.approx((0.6 + 0.2 + 0.6) / 3)


def test_summarize_keys_follow_k() -> None:
    summary = m.summarize(np.array([[0, 1, 2]]), relevance([2]), 4, np.arange(4), k=3)
    assert list(summary) == [
        *(f"{name}@3" for name in ("ndcg", "recall", "map", "hit_rate", "precision", "mrr")),
        *("coverage", "gini", "mean_popularity", "users"),
    ]
    assert summary["coverage"] == 0.75 and summary["mean_popularity"] == 1.0
    assert summary["mrr@3"] == pytest.approx(1 / 3)
    assert "ndcg@20" in m.summarize(np.array([[0]]), relevance([0]), 1, None)


def test_breakdown_group_means() -> None:
    rec = np.array([[1, 2], [3, 1], [5, 6], [1, 2]])
    rel = relevance([1], [1], [1], [])
    per_user = m.per_user_metrics(rec, rel, k=2)
    groups = np.array(["new", "new", "old", "old"])
    out = m.breakdown(per_user, groups, labels=["new", "old", "unseen"])
    assert list(out) == ["new", "old", "unseen"]
    assert out["new"]["recall@2"] == 1.0
    assert out["new"]["mrr@2"] == pytest.approx((1 + 1 / 2) / 2)
    assert out["new"]["users"] == 2 and out["new"]["members"] == 2
    # The last user has nothing relevant: a member, but not counted in the means.
    assert out["old"]["hit_rate@2"] == 0.0 and out["old"]["users"] == 1
    assert out["old"]["members"] == 2
    assert math.isnan(out["unseen"]["ndcg@2"]) and out["unseen"]["users"] == 0
    by_int = m.breakdown(per_user, np.array([0, 0, 1, 1]))
    assert set(by_int) == {0, 1} and by_int[0]["precision@2"] == 0.5
    with pytest.raises(ValueError, match="group labels"):
        m.breakdown(per_user, groups[:3])
