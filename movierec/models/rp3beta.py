"""RP3beta: item-item random walks with a popularity penalty (Paudel et al. 2017).

A walk of three steps from a user: to an item i they watched, to a user who watched it,
to that user's item j. P_ui (users -> items) and P_iu (items -> users) are the training
matrix and its transpose with each row L1-normalised, so that each step is a transition
probability; every element is raised to `alpha` (alpha < 1 flattens the walk, alpha > 1
sharpens it). Then

    W[i, j] = (P_iu P_ui)[i, j] / pop_j ** beta,

where pop_j is the number of users who watched j: beta = 0 is the plain walk, which favours
hits, and larger beta discounts them. Each item keeps its K largest W[i, j] (j != i), and a
user scores like item-kNN: sum over watched i of value(u, i) x W[i, j]. This is the
variant that Dacrema et al. 2019 ("Are we really making much progress?") found hard to
beat; as theirs, the transitions follow the training values (confidence), the popularity
counts users.

Computed in item blocks exactly as item-kNN's cosine (itemknn.top_neighbours): a sparse
product per block of items, made dense, scaled by the penalty and cut to K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from movierec.models.base import ModelParams, require_float, require_int
from movierec.models.itemknn import NeighbourRecommender, top_neighbours


@dataclass(frozen=True)
class Params(ModelParams):
    alpha: float = 1.0  # power of every transition probability
    beta: float = 0.5  # popularity penalty: W[i, j] / pop_j ** beta
    neighbours: int = 200  # K: neighbours kept per item
    num_threads: int = 0  # 0: all cores
    fallback_half_life_days: float = 14.0

    def __post_init__(self) -> None:
        require_float("alpha", self.alpha, 0.0, strict=True)
        require_float("beta", self.beta, 0.0)
        if self.alpha == float("inf") or self.beta == float("inf"):
            raise ValueError("alpha and beta must be finite")
        require_int("neighbours", self.neighbours, 1)
        require_int("num_threads", self.num_threads, 0)
        require_float("fallback_half_life_days", self.fallback_half_life_days, 0.0, strict=True)


def transitions(matrix: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """Rows L1-normalised (each a probability distribution), then raised to alpha; float32.
    Rows without entries stay empty."""
    totals = np.asarray(matrix.sum(axis=1, dtype=np.float64)).ravel().astype(np.float32)
    values = np.asarray(matrix.data, dtype=np.float32)
    denominator = np.repeat(totals, np.diff(matrix.indptr))
    share = np.divide(values, denominator, out=np.zeros_like(values), where=denominator > 0)
    if alpha != 1.0:
        np.power(share, np.float32(alpha), out=share)
    return sp.csr_matrix((share, matrix.indices, matrix.indptr), shape=matrix.shape)


def rp3beta_similarity(
    matrix: sp.csr_matrix, alpha: float, beta: float, neighbours: int, threads: int
) -> sp.csr_matrix:
    """W (items x items, float32): item i's K best j by the popularity-penalised walk."""
    n_items = matrix.shape[1]
    by_item = matrix.T.tocsr()
    user_to_item = transitions(matrix, alpha)
    item_to_user = transitions(by_item, alpha)
    popularity = np.diff(by_item.indptr).astype(np.float64)
    # Items nobody watched cannot be reached by the walk: their penalty does not matter.
    penalty = np.zeros(n_items, dtype=np.float32)
    watched = popularity > 0
    penalty[watched] = np.power(popularity[watched], -beta)

    def penalised(walks: np.ndarray, start: int, stop: int) -> np.ndarray:
        walks *= penalty[None, :]
        return walks

    # A block holds the dense product only (scaled in place): 4 bytes a cell, plus the
    # argpartition's int64 indices.
    return top_neighbours(item_to_user, user_to_item, neighbours, threads, penalised, 12)


class RP3betaRecommender(NeighbourRecommender):
    name = "rp3beta"
    Params = Params
    params: Params

    def _neighbours(self, matrix: sp.csr_matrix, threads: int) -> sp.csr_matrix:
        p = self.params
        return rp3beta_similarity(matrix, p.alpha, p.beta, p.neighbours, threads)
