"""Vectorised top-k ranking metrics for offline evaluation, computed for all users at once.

Conventions (`movierec.evaluation.reference` implements the same ones with plain loops):

* `recommended` is an (n_users, width) integer array, best first, padded with -1 (any negative
  value is padding). Only the first k columns count. If k exceeds the width the missing slots
  are misses: precision, the recall/AP cap and the ideal DCG still use k, so short lists pay.
* A duplicate in a list counts once: the first copy keeps its slot and may hit, later copies
  keep their slots but are misses, so a list cannot earn credit twice for one item. Coverage,
  gini and popularity also count an item once per list.
* Users without relevant items get NaN in every per-user array: recall, AP and NDCG divide by
  zero for them, and scoring them 0 would blame the model for the split. `mean_over_users`
  skips NaN, i.e. it averages over the users with at least one relevant item.
* recall@k = hits / min(|relevant|, k) by default, so a perfect list scores 1 even for users
  with more than k relevant items (the plain hits / |relevant| is `denominator="relevant"`).
  AP@k uses the same min(|relevant|, k) normaliser.
* `relevant` is a `Relevance` (CSR rows: indptr, indices, optional grades), an
  (indptr, indices[, grades]) tuple, any object with those attributes, or a scipy sparse
  matrix (n_users x n_items, stored nonzeros relevant, value = gain; duplicates sum as in
  scipy). In a `Relevance` an item listed twice for a user counts once, with its largest grade.
* Graded NDCG uses the grade itself as the gain (pass 2**g - 1 for exponential gain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from movierec.ids import find_in_sorted


@dataclass(frozen=True)
class Relevance:
    """Held-out items per user in CSR layout: user u's items are indices[indptr[u]:indptr[u+1]]."""

    indptr: np.ndarray
    indices: np.ndarray
    grades: np.ndarray | None = None


def as_relevance(relevant: Any) -> Relevance:
    if sp.issparse(relevant):
        # A copy, because canonicalising mutates, and the caller's matrix is not ours to change.
        matrix = sp.csr_matrix(relevant, copy=True)
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        return Relevance(matrix.indptr, matrix.indices, matrix.data)
    if isinstance(relevant, Relevance):
        return relevant
    if isinstance(relevant, tuple):
        return Relevance(*relevant)
    return Relevance(relevant.indptr, relevant.indices, getattr(relevant, "grades", None))


def _top_k(recommended: Any, k: int | None) -> np.ndarray:
    rec = np.asarray(recommended)
    if rec.size == 0 and rec.ndim < 2:
        rec = rec.reshape(0, 0)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, k), got shape {rec.shape}")
    if rec.size and not np.issubdtype(rec.dtype, np.integer):
        raise TypeError(f"recommended must hold integer item indices, got {rec.dtype}")
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return rec[:, :k].astype(np.int64, copy=False)


def _discounts(length: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, length + 2, dtype=np.float64))


@dataclass(frozen=True)
class _Hits:
    hit: np.ndarray  # (n_users, min(k, width)) bool: first copy of a relevant item
    gain: np.ndarray | None  # same shape, grade of each hit (graded NDCG only)
    ideal: np.ndarray | None  # (n_users,) ideal DCG from the top-k grades (graded only)
    n_rel: np.ndarray  # (n_users,) distinct relevant items
    k: int


def _match(recommended: Any, relevant: Any, k: int, graded: bool = False) -> _Hits:
    """Marks which recommended slots hold relevant items, for every user in one pass.

    Each (user, item) pair becomes the key user * stride + item; the relevant keys are sorted
    once and all slots are looked up with one searchsorted, so there is no per-user loop.
    """
    rec = _top_k(recommended, k)
    rel = as_relevance(relevant)
    n_users = rec.shape[0]
    indptr = np.asarray(rel.indptr, dtype=np.int64)
    items = np.asarray(rel.indices, dtype=np.int64)
    if indptr.shape != (n_users + 1,) or indptr[0] != 0 or indptr[-1] != items.size:
        raise ValueError(f"relevant must be CSR rows for {n_users} users (indptr of n_users + 1)")
    if np.any(np.diff(indptr) < 0) or np.any(items < 0):
        raise ValueError("relevant indptr must be non-decreasing and item indices non-negative")
    if rel.grades is None:
        grades = np.ones(items.size)
    else:
        grades = np.asarray(rel.grades, dtype=np.float64)
        if grades.shape != items.shape or not np.all(np.isfinite(grades) & (grades >= 0)):
            raise ValueError("grades must be finite, non-negative and one per relevant item")
    stride = 1 + max(int(items.max(initial=0)), int(rec.max(initial=0)))
    if n_users * stride >= 2**62:
        raise ValueError("n_users x n_items too large for int64 (user, item) keys")
    keys = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(indptr)) * stride + items
    if np.any(keys[1:] < keys[:-1]):  # CSR rows are usually sorted already: skip the sort then
        order = np.argsort(keys, kind="stable")
        keys, grades = keys[order], grades[order]
    if np.any(keys[1:] == keys[:-1]):  # the same item twice for a user: keep its largest grade
        order = np.lexsort((grades, keys))
        keys, grades = keys[order], grades[order]
        last = np.append(keys[1:] != keys[:-1], True)
        keys, grades = keys[last], grades[last]
    users = keys // stride
    n_rel = np.bincount(users, minlength=n_users)

    # Padding maps to key -1, which no relevant key equals (user * stride - 1 would alias the
    # previous user's last item).
    query = rec + np.arange(n_users, dtype=np.int64)[:, None] * stride
    query[rec < 0] = -1
    query = query.ravel()
    pos, hit = find_in_sorted(keys, query)
    # Row-major order puts a user's earlier slots first, so return_index finds first copies.
    flat = np.flatnonzero(hit)
    _, first = np.unique(pos[flat], return_index=True)
    if first.size < flat.size:
        hit[np.delete(flat, first)] = False
    gain = ideal = None
    if graded:
        gain = np.zeros(query.size)
        gain[hit] = grades[pos[hit]]
        gain = gain.reshape(rec.shape)
        # Ideal DCG: each user's grades best first, ranked within the user, cut at k.
        order = np.lexsort((-grades, users))
        starts = np.concatenate(([0], np.cumsum(n_rel)[:-1]))
        rank = np.arange(keys.size) - starts[users[order]]
        top = rank < k
        disc = _discounts(int(rank[top].max(initial=-1)) + 1)
        weights = grades[order][top] * disc[rank[top]]
        ideal = np.bincount(users[order][top], weights=weights, minlength=n_users)
    return _Hits(hit.reshape(rec.shape), gain, ideal, n_rel, k)


def _undefined_where_no_relevant(values: np.ndarray, h: _Hits) -> np.ndarray:
    out = values.astype(np.float64)
    out[h.n_rel == 0] = np.nan
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _ndcg(h: _Hits) -> np.ndarray:
    width = h.hit.shape[1]
    if h.gain is not None and h.ideal is not None:
        return _ratio(h.gain @ _discounts(width), h.ideal)
    dcg = h.hit.astype(np.float64) @ _discounts(width)
    cap = min(h.k, int(h.n_rel.max(initial=0)))
    ideal = np.concatenate(([0.0], np.cumsum(_discounts(cap))))[np.minimum(h.n_rel, cap)]
    return _ratio(dcg, ideal)


def _recall(h: _Hits, denominator: str) -> np.ndarray:
    if denominator not in ("capped", "relevant"):
        raise ValueError(f"denominator must be 'capped' or 'relevant', got {denominator!r}")
    den = np.minimum(h.n_rel, h.k) if denominator == "capped" else h.n_rel
    return _ratio(h.hit.sum(axis=1), den)


def _average_precision(h: _Hits) -> np.ndarray:
    precision_at = np.cumsum(h.hit, axis=1) / np.arange(1, h.hit.shape[1] + 1)
    return _ratio((precision_at * h.hit).sum(axis=1), np.minimum(h.n_rel, h.k))


def _reciprocal_rank(h: _Hits) -> np.ndarray:
    any_hit = h.hit.any(axis=1)
    first = np.argmax(h.hit, axis=1) if h.hit.shape[1] else np.zeros(h.hit.shape[0])
    rr = np.where(any_hit, 1.0 / (first + 1.0), 0.0)
    return _undefined_where_no_relevant(rr, h)


def ndcg_at_k(recommended: Any, relevant: Any, k: int = 20, *, graded: bool = False) -> np.ndarray:
    """Per-user NDCG@k, log2 discount; ideal DCG from the user's own relevant items, cut at k.

    NaN where the ideal DCG is 0: no relevant items, or (graded) only zero grades.
    """
    return _ndcg(_match(recommended, relevant, k, graded))


def recall_at_k(
    recommended: Any,
    relevant: Any,
    k: int = 20,
    *,
    denominator: Literal["capped", "relevant"] = "capped",
) -> np.ndarray:
    """Per-user hits / min(|relevant|, k) ("capped"), or hits / |relevant| ("relevant")."""
    return _recall(_match(recommended, relevant, k), denominator)


def average_precision_at_k(recommended: Any, relevant: Any, k: int = 20) -> np.ndarray:
    """Per-user AP@k: sum of precision@i over hit positions i, over min(|relevant|, k)."""
    return _average_precision(_match(recommended, relevant, k))


def map_at_k(recommended: Any, relevant: Any, k: int = 20) -> float:
    """MAP@k: AP@k averaged over the users with at least one relevant item."""
    return mean_over_users(average_precision_at_k(recommended, relevant, k))


def hit_rate_at_k(recommended: Any, relevant: Any, k: int = 20) -> np.ndarray:
    """Per-user 1.0 if any of the top k is relevant, else 0.0."""
    h = _match(recommended, relevant, k)
    return _undefined_where_no_relevant(h.hit.any(axis=1), h)


def precision_at_k(recommended: Any, relevant: Any, k: int = 20) -> np.ndarray:
    """Per-user hits / k (k, not the list length: empty slots are misses)."""
    h = _match(recommended, relevant, k)
    return _undefined_where_no_relevant(h.hit.sum(axis=1) / k, h)


def mrr_at_k(recommended: Any, relevant: Any, k: int = 20) -> np.ndarray:
    """Per-user reciprocal rank of the first hit in the top k (0.0 without a hit)."""
    return _reciprocal_rank(_match(recommended, relevant, k))


def mean_over_users(per_user: np.ndarray) -> float:
    """Mean over users with a defined value (NaN marks users without relevant items)."""
    values = np.asarray(per_user, dtype=np.float64)
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def per_user_metrics(
    recommended: Any, relevant: Any, k: int = 20, *, graded: bool = False
) -> dict[str, np.ndarray]:
    """All accuracy metrics per user from one matching pass, keyed like `summarize` ("map@k"
    holds the per-user AP@k). Feed it to `breakdown` for per-group means."""
    return _all_metrics(_match(recommended, relevant, k, graded))


def _all_metrics(h: _Hits) -> dict[str, np.ndarray]:
    return {
        f"ndcg@{h.k}": _ndcg(h),
        f"recall@{h.k}": _recall(h, "capped"),
        f"map@{h.k}": _average_precision(h),
        f"hit_rate@{h.k}": _undefined_where_no_relevant(h.hit.any(axis=1), h),
        f"precision@{h.k}": _undefined_where_no_relevant(h.hit.sum(axis=1) / h.k, h),
        f"mrr@{h.k}": _reciprocal_rank(h),
    }


def recommendation_counts(recommended: Any, n_items: int, k: int | None = None) -> np.ndarray:
    """How many lists each catalogue item appears in (length n_items; never shown = 0)."""
    rec = _top_k(recommended, k)
    if rec.size and rec.max() >= n_items:
        raise ValueError(f"recommended item {rec.max()} outside a catalogue of {n_items}")
    # Sorting each row puts duplicates side by side, so each item counts once per list.
    ordered = np.sort(rec, axis=1)
    keep = ordered >= 0
    keep[:, 1:] &= ordered[:, 1:] != ordered[:, :-1]
    return np.bincount(ordered[keep], minlength=n_items)


def catalogue_coverage(recommended: Any, n_items: int, k: int | None = None) -> float:
    """Share of the catalogue that appears in at least one list."""
    if n_items <= 0:
        return float("nan")
    return float(np.count_nonzero(recommendation_counts(recommended, n_items, k)) / n_items)


def popularity_bias(
    recommended: Any, item_popularity: Any, k: int | None = None, *, share: bool = False
) -> float:
    """Mean popularity over all recommended (user, item) pairs, padding excluded.

    With share=True each item's popularity is first divided by the total, giving the mean
    share of interactions a recommended item has (comparable across datasets of any size).
    """
    popularity = np.asarray(item_popularity, dtype=np.float64)
    counts = recommendation_counts(recommended, popularity.size, k)
    total = counts.sum()
    if total == 0:
        return float("nan")
    mean = float(counts @ popularity / total)
    if share:
        whole = popularity.sum()
        return mean / whole if whole > 0 else float("nan")
    return mean


def gini(counts: Any) -> float:
    """Gini coefficient of per-item recommendation counts: 0 when every item is recommended
    equally often, (n - 1) / n when one item takes everything. NaN for an empty catalogue."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    if x.size == 0:
        return float("nan")
    if np.any(x < 0):
        raise ValueError("counts must be non-negative")
    total = x.sum()
    if total == 0:
        return 0.0  # nothing recommended: every item equally often (zero times)
    # Closed form of sum_ij |x_i - x_j| / (2 n^2 mean) for ascending x with ranks 1..n.
    n = x.size
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(2.0 * (ranks @ x) / (n * total) - (n + 1) / n)


def summarize(
    recommended: Any,
    relevant: Any,
    n_items: int,
    item_popularity: Any | None,
    k: int = 20,
    *,
    graded: bool = False,
) -> dict[str, float | int]:
    """Mean accuracy metrics plus beyond-accuracy ones over the top k of every list.

    "users" is the number of users the accuracy means average over (those with relevant
    items); coverage, gini and mean_popularity use every list. mean_popularity is NaN
    without item_popularity.
    """
    h = _match(recommended, relevant, k, graded)
    out: dict[str, float | int] = {
        name: mean_over_users(values) for name, values in _all_metrics(h).items()
    }
    counts = recommendation_counts(recommended, n_items, k)
    out["coverage"] = float(np.count_nonzero(counts) / n_items) if n_items > 0 else float("nan")
    out["gini"] = gini(counts)
    out["mean_popularity"] = float("nan")
    if item_popularity is not None:
        popularity = np.asarray(item_popularity, dtype=np.float64)
        if popularity.shape != (n_items,):
            raise ValueError(f"item_popularity must have one value per item ({n_items})")
        total = counts.sum()
        out["mean_popularity"] = float(counts @ popularity / total) if total else float("nan")
    out["users"] = int(np.count_nonzero(h.n_rel))
    return out


def breakdown(
    per_user: dict[str, np.ndarray], groups: Any, labels: Any | None = None
) -> dict[Any, dict[str, float | int]]:
    """Mean of each per-user metric within each group (one label per user), NaN-skipping
    like `mean_over_users`.

    Each group also gets "users" (members with a defined metric, i.e. with relevant items)
    and "members" (all of them). `labels` fixes which groups appear and in what order; a
    label nobody has gets NaN means and zero counts instead of silently disappearing.
    """
    groups = np.asarray(groups)
    for name, values in per_user.items():
        if np.shape(values) != groups.shape:
            raise ValueError(f"{name}: {np.shape(values)} values for {groups.shape} group labels")
    found, inverse = np.unique(groups, return_inverse=True)
    inverse = inverse.ravel()
    n = found.size
    defined = np.zeros(groups.size, dtype=bool)
    means: dict[str, np.ndarray] = {}
    for name, raw in per_user.items():
        values = np.asarray(raw, dtype=np.float64)
        ok = ~np.isnan(values)
        defined |= ok
        sums = np.bincount(inverse[ok], weights=values[ok], minlength=n)
        means[name] = _ratio(sums, np.bincount(inverse[ok], minlength=n).astype(np.float64))
    users = np.bincount(inverse[defined], minlength=n)
    members = np.bincount(inverse, minlength=n)
    where = {
        label.item() if isinstance(label, np.generic) else label: i for i, label in enumerate(found)
    }
    out: dict[Any, dict[str, float | int]] = {}
    for label in where if labels is None else labels:
        i = where.get(label.item() if isinstance(label, np.generic) else label)
        row: dict[str, float | int] = {
            name: float(m[i]) if i is not None else float("nan") for name, m in means.items()
        }
        row["users"] = int(users[i]) if i is not None else 0
        row["members"] = int(members[i]) if i is not None else 0
        out[label] = row
    return out
