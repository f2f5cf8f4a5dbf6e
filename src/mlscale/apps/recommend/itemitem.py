"""Item-item recommenders: EASE (closed form) and item-kNN, behind the same contract as ALS.

Both score a user as ``x_u @ W`` where ``x_u`` is the user's binary history and
``W`` an item x item matrix. They reuse all of :class:`ImplicitRecommender`'s
serving machinery (filters, top-k, popularity for users without items, the
registry format): the model stores ``W`` transposed as its ``item_factors_``
(one row per item, one column per item) and has no user factors, because a
user's query vector *is* their history. Hence:

- fold-in for an unknown user with ``recent_items`` is exact: the query is the
  indicator of those items (EASE's "item-item product");
- update needs no solve: new interactions change the histories, and new items
  join with zero weights until the next fit;
- ``similar_items(i)`` ranks ``W[i, :]``: what a user holding only ``i`` gets.

EASE (Steck, WWW 2019): ``P = (X^T X + lambda I)^-1``, ``B = I - P / diag(P)``
(zero diagonal). Items seen fewer than ``min_item_count`` times are left out of
the catalogue (they carry no co-occurrence evidence and cost ``n^2`` memory).

Memory: ``W`` is dense, ``n_items^2`` float32, and fitting EASE needs a second
matrix of that size for the inverse, so a catalogue whose
``2 * 4 * n_items^2`` bytes exceed ``memory_budget`` is refused, naming ALS
(whose memory grows with ``n_items * factors``) as the model that fits.

>>> import numpy as np
>>> from mlscale.apps.recommend.matrix import InteractionMatrix
>>> rng = np.random.default_rng(0)
>>> users = rng.integers(0, 50, 2000); items = (users % 5) * 10 + rng.integers(0, 10, 2000)
>>> model = EaseRecommender(l2=10.0, threads=1).fit(InteractionMatrix.from_arrays(users, items))
>>> recs = model.recommend([3, 999], k=3, recent_items={999: [31, 32]})
>>> recs.strategy.tolist(), sorted(set(recs.items[1].tolist()) - set(range(30, 40)))
(['model', 'fold-in'], [])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
import scipy.linalg as sla
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.apps.recommend.model import ImplicitRecommender, Recommendations
from mlscale.errors import ValidationError

__all__ = [
    "DEFAULT_ITEM_ITEM_BUDGET",
    "ITEM_ITEM_KINDS",
    "SIMILARITIES",
    "EaseRecommender",
    "ItemItemRecommender",
    "KnnRecommender",
    "binary_rows",
    "ease_from_gram",
    "item_item_bytes",
    "item_item_class",
    "prune_items",
]

#: Default memory allowed for an item-item model's matrices: 2 GiB holds 16,384 items.
DEFAULT_ITEM_ITEM_BUDGET = 2 << 30
ITEM_ITEM_KINDS = ("ease", "knn")
Similarity = Literal["cosine", "bm25", "tfidf", "itemitem"]
#: The values of :data:`Similarity`.
SIMILARITIES: tuple[str, ...] = ("cosine", "bm25", "tfidf", "itemitem")


def item_item_bytes(n_items: int) -> int:
    """Peak bytes to fit an item-item model: the dense matrix and its inverse (float32)."""
    return 2 * 4 * n_items * n_items


def _check_budget(n_items: int, budget: int, kind: str) -> None:
    need = item_item_bytes(n_items)
    if need > budget:
        limit = int((budget / 8) ** 0.5)
        raise ValidationError(
            f"{kind} needs {need / 2**30:.1f} GiB for {n_items:,} items ({n_items:,}^2 float32, twice), over the "
            f"memory budget of {budget / 2**30:.1f} GiB (at most {limit:,} items fit); use ALS "
            "(--model als: memory grows with items x factors) or raise the budget",
            field="model",
        )


def prune_items(matrix: InteractionMatrix, min_count: int) -> InteractionMatrix:
    """The matrix restricted to items with at least ``min_count`` interactions (users kept)."""
    if min_count <= 1:
        return matrix
    counts = np.bincount(matrix.csr.indices, minlength=matrix.shape[1])
    keep = np.flatnonzero(counts >= min_count)
    if keep.size == matrix.shape[1]:
        return matrix
    csr = matrix.csr[:, keep].tocsr()
    return InteractionMatrix(csr=csr, user_ids=np.asarray(matrix.user_ids), item_ids=np.asarray(matrix.item_ids)[keep])


def binary_rows(csr: sp.csr_matrix, rows: npt.NDArray[np.int64] | None = None) -> sp.csr_matrix:
    """Rows of ``csr`` (all when ``rows`` is None) with every stored value set to 1 (float32)."""
    sub = csr if rows is None else csr[rows]
    out = sp.csr_matrix((np.ones(sub.nnz, np.float32), sub.indices, sub.indptr), shape=sub.shape)
    return out


def ease_from_gram(gram: npt.NDArray[np.float32], l2: float) -> npt.NDArray[np.float32]:
    """EASE's ``B`` transposed (row j: the weights that score item j), from the item Gram matrix.

    ``gram`` is overwritten (it becomes the result): the inverse is computed in
    place with a Cholesky factorisation, so the peak is one ``n^2`` float32
    matrix plus LAPACK's workspace.
    """
    n = gram.shape[0]
    if n == 0:
        return gram
    gram[np.diag_indices(n)] += np.float32(l2)
    chol, info = sla.lapack.spotrf(gram, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise ValidationError(f"the Gram matrix is not positive definite (LAPACK info {info})", field="l2")
    inv, info = sla.lapack.spotri(chol, lower=False, overwrite_c=True)
    if info != 0:  # pragma: no cover - spotrf succeeded, so the inverse exists
        raise ValidationError(f"inverting the Gram matrix failed (LAPACK info {info})", field="l2")
    # spotri fills the upper triangle; mirror it in blocks (no second n^2 temporary).
    step = 1024
    for start in range(0, n, step):
        stop = min(n, start + step)
        inv[start:stop, :start] = inv[:start, start:stop].T
        block = inv[start:stop, start:stop]
        inv[start:stop, start:stop] = np.triu(block) + np.triu(block, 1).T
    diag = inv.diagonal().copy()
    # P is symmetric, so row j of B^T (= column j of B = -P[:, j] / P_jj) is -P[j] / P_jj.
    inv *= (-1.0 / diag)[:, None].astype(np.float32)
    inv[np.diag_indices(n)] = 0.0
    out: npt.NDArray[np.float32] = inv
    return out


class ItemItemRecommender(ImplicitRecommender):
    """Shared scoring of the item-item models: ``score = x_u @ W`` with ``item_factors_ = W^T``.

    Subclasses set ``model`` (their kind), implement :meth:`_item_weights` and
    declare their parameters in ``_PARAMS``; everything else (recommend with
    filters and cold start, similar items, registry arrays) is shared.
    """

    model: Any
    item_item: ClassVar[bool] = True

    def _item_weights(self, matrix: InteractionMatrix) -> npt.NDArray[np.float32]:
        raise NotImplementedError

    def _check(self) -> None:
        if not isinstance(self.threads, int) or self.threads < 0:
            raise ValidationError(f"expected an integer >= 0 (0 = all cores), got {self.threads!r}", field="threads")
        budget = self.memory_budget
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise ValidationError(f"expected a number of bytes >= 1, got {budget!r}", field="memory_budget")

    memory_budget: int

    def fit(self, matrix: InteractionMatrix, *, progress: bool = False) -> Self:
        """Fit on a user x item interaction matrix (values are ignored: histories are binary)."""
        self._check()
        if matrix.nnz == 0:
            raise ValidationError("the interaction matrix is empty", field="data")
        kept = prune_items(matrix, int(getattr(self, "min_item_count", 1)))
        if kept.shape[1] == 0:
            raise ValidationError(
                f"no item has {getattr(self, 'min_item_count', 1)} or more interactions", field="min_item_count"
            )
        _check_budget(kept.shape[1], self.memory_budget, self.model.upper() if self.model == "ease" else "item-kNN")
        with threadpool_limits(self.threads or None, "blas"):
            weights_t = self._item_weights(kept)
        return self.set_fitted(kept, weights_t)

    def set_fitted(self, matrix: InteractionMatrix, weights_t: npt.NDArray[np.float32]) -> Self:
        """Take ``weights_t`` (``W`` transposed, items of ``matrix``) as the fitted state."""
        if weights_t.shape != (matrix.shape[1], matrix.shape[1]):
            raise ValidationError(f"expected {matrix.shape[1]} x {matrix.shape[1]} weights", field="weights")
        self._set_state(
            user_factors=np.zeros((matrix.shape[0], 0), np.float32),
            item_factors=np.ascontiguousarray(weights_t, dtype=np.float32),
            user_ids=np.asarray(matrix.user_ids),
            item_ids=np.asarray(matrix.item_ids),
            seen=matrix.csr,
            fold_in_weight=1.0,
        )
        return self

    @property
    def regularization_(self) -> float:
        return 0.0

    def user_vectors(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """Known users' binary histories, dense (one row per user, one column per item)."""
        return np.asarray(binary_rows(self.seen_, rows).toarray(), dtype=np.float32)

    def fold_in(self, item_rows: Sequence[npt.NDArray[np.int64]]) -> npt.NDArray[np.float32]:
        """Query vectors of users given only their items: the indicator of those items (exact, no solve)."""
        self._check_fitted()
        out = np.zeros((len(item_rows), self.n_items), np.float32)
        for j, items in enumerate(item_rows):
            out[j, items] = 1.0
        return out

    def similar_items(self, items: Sequence[Any], k: int = 10) -> Recommendations:
        """The ``k`` items a user holding only the given item is recommended (``W[i, :]``), itself excluded."""
        from implicit.cpu.topk import topk

        self._check_fitted()
        k = self._check_k(k, self.n_items - 1)
        idx = self.item_index(items)
        out_items = np.full((idx.size, k), -1, np.int64)
        out_scores = np.full((idx.size, k), -np.inf, np.float32)
        known = np.flatnonzero(idx >= 0)
        if known.size:
            query = self.fold_in([idx[[j]] for j in known])
            self_filter = sp.csr_matrix(
                (np.ones(known.size, np.float32), idx[known].astype(np.int32), np.arange(known.size + 1)),
                shape=(known.size, self.n_items),
            )
            ids, scores = topk(
                np.ascontiguousarray(self.item_factors_),
                query,
                k,
                filter_query_items=self_filter,
                num_threads=self.threads,
            )
            ids, scores = np.asarray(ids, np.int64), np.asarray(scores, np.float32)
            bad = ~np.isfinite(scores) | (scores <= np.float32(-1e37))
            ids[bad], scores[bad] = -1, -np.inf
            out_items[known], out_scores[known] = ids, scores
        valid = out_items >= 0
        return Recommendations(
            items=self.item_ids_[np.where(valid, out_items, 0)],
            scores=out_scores,
            strategy=np.where(idx >= 0, "model", "unknown").astype("<U10"),
            valid=valid,
        )

    def with_seen(
        self, user_ids: npt.NDArray[Any], item_ids: npt.NDArray[Any], seen: sp.csr_matrix
    ) -> ItemItemRecommender:
        """A copy with new histories (``seen``, over the extended id maps); new items get zero weights."""
        n_old = self.n_items
        n_new = int(item_ids.size)
        weights = np.zeros((n_new, n_new), np.float32)
        weights[:n_old, :n_old] = self.item_factors_
        out = type(self)(**self.get_params())
        out._set_state(
            user_factors=np.zeros((int(user_ids.size), 0), np.float32),
            item_factors=weights,
            user_ids=user_ids,
            item_ids=item_ids,
            seen=seen,
            fold_in_weight=1.0,
        )
        return out


class EaseRecommender(ItemItemRecommender):
    """EASE: the closed-form shallow autoencoder of Steck (2019); one parameter, ``l2`` (lambda)."""

    _PARAMS = ("model", "l2", "min_item_count", "memory_budget", "threads", "seed")

    def __init__(
        self,
        model: Literal["ease"] = "ease",
        l2: float = 200.0,
        min_item_count: int = 2,
        memory_budget: int = DEFAULT_ITEM_ITEM_BUDGET,
        threads: int = 0,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.l2 = l2
        self.min_item_count = min_item_count
        self.memory_budget = memory_budget
        self.threads = threads
        self.seed = seed

    def _check(self) -> None:
        super()._check()
        if self.model != "ease":
            raise ValidationError(f"expected 'ease', got {self.model!r}", field="model")
        if isinstance(self.l2, bool) or not isinstance(self.l2, (int, float)) or not self.l2 > 0:
            raise ValidationError(f"expected a number > 0, got {self.l2!r}", field="l2")
        if not isinstance(self.min_item_count, int) or self.min_item_count < 1:
            raise ValidationError(f"expected an integer >= 1, got {self.min_item_count!r}", field="min_item_count")

    def _item_weights(self, matrix: InteractionMatrix) -> npt.NDArray[np.float32]:
        x = binary_rows(matrix.csr)
        gram = np.asarray((x.T @ x).toarray(), dtype=np.float32)
        return ease_from_gram(gram, float(self.l2))


class KnnRecommender(ItemItemRecommender):
    """Item-kNN from :mod:`implicit.nearest_neighbours`: the ``neighbours`` most similar items per item.

    ``similarity``: ``cosine`` (CosineRecommender), ``bm25`` (BM25Recommender,
    ``bm25_k1`` / ``bm25_b``), ``tfidf`` (TFIDFRecommender) or ``itemitem``
    (plain co-occurrence counts, ItemItemRecommender).
    """

    _PARAMS = ("model", "neighbours", "similarity", "bm25_k1", "bm25_b", "memory_budget", "threads", "seed")

    def __init__(
        self,
        model: Literal["knn"] = "knn",
        neighbours: int = 100,
        similarity: Similarity = "cosine",
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        memory_budget: int = DEFAULT_ITEM_ITEM_BUDGET,
        threads: int = 0,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.neighbours = neighbours
        self.similarity = similarity
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.memory_budget = memory_budget
        self.threads = threads
        self.seed = seed

    def _check(self) -> None:
        super()._check()
        if self.model != "knn":
            raise ValidationError(f"expected 'knn', got {self.model!r}", field="model")
        if not isinstance(self.neighbours, int) or self.neighbours < 1:
            raise ValidationError(f"expected an integer >= 1, got {self.neighbours!r}", field="neighbours")
        if self.similarity not in ("cosine", "bm25", "tfidf", "itemitem"):
            raise ValidationError(
                f"expected 'cosine', 'bm25', 'tfidf' or 'itemitem', got {self.similarity!r}", field="similarity"
            )

    def _item_weights(self, matrix: InteractionMatrix) -> npt.NDArray[np.float32]:
        from implicit import nearest_neighbours as nn

        k = min(self.neighbours, matrix.shape[1])
        by_item = binary_rows(matrix.csr).T.tocsr()
        # The weightings of implicit's Cosine / TFIDF / BM25 recommenders, applied here so that the
        # neighbour search gets CSR (those classes hand it COO, which implicit warns about).
        weighted: Any
        if self.similarity == "cosine":
            weighted = nn.normalize(by_item)
        elif self.similarity == "bm25":
            weighted = nn.bm25_weight(by_item, self.bm25_k1, self.bm25_b)
        elif self.similarity == "tfidf":
            weighted = nn.normalize(nn.tfidf_weight(by_item))
        else:
            weighted = by_item
        knn = nn.ItemItemRecommender(K=k, num_threads=self.threads)
        knn.fit(sp.csr_matrix(weighted.T, dtype=np.float64), show_progress=False)
        sim = sp.csr_matrix(knn.similarity, dtype=np.float32)
        sim.setdiag(0.0)
        # implicit scores a user as x_u @ S, so row j of W^T is column j of S.
        return np.asarray(sim.T.toarray(), dtype=np.float32)


def item_item_class(kind: str) -> type[ItemItemRecommender]:
    """The class of an item-item model kind (``ease`` or ``knn``)."""
    return EaseRecommender if kind == "ease" else KnnRecommender
