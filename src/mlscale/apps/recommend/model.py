"""The implicit-feedback recommender: ALS or BPR from the ``implicit`` library.

Training weights the user x item matrix (BM25 by default, which tames heavy
users and very popular items), then fits :mod:`implicit`'s CPU model with the
confidence ``C = 1 + alpha * weight``. Scoring uses :func:`implicit.cpu.topk.topk`
over the stored factor arrays, so a model loaded from memory-mapped registry
files recommends without copying them; a model with an approximate index
(``ann_``, :mod:`mlscale.apps.recommend.ann`) proposes candidates through it.

Cold start, in order:

1. a user the model knows is scored with their factors;
2. an unknown user who comes with items (``recent_items``) is *folded in*: their
   factors are solved from those items against the fixed item factors, exactly
   as one ALS half-step would (no retraining);
3. an unknown user without items gets the most popular items.

>>> import numpy as np
>>> from mlscale.apps.recommend.matrix import InteractionMatrix
>>> rng = np.random.default_rng(0)
>>> users = rng.integers(0, 50, 2000); items = (users % 5) * 10 + rng.integers(0, 10, 2000)
>>> matrix = InteractionMatrix.from_arrays(users, items)
>>> model = ImplicitRecommender(factors=8, iterations=5, threads=1).fit(matrix)
>>> recs = model.recommend([3, 999], k=3, recent_items={999: [31, 32]})
>>> recs.items.shape, recs.strategy.tolist()
((2, 3), ['model', 'fold-in'])
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from mlscale.apps.recommend.matrix import InteractionMatrix, lookup_ids
from mlscale.errors import ValidationError

if TYPE_CHECKING:
    from mlscale.apps.recommend.ann import AnnIndex

__all__ = ["DEFAULT_REGULARIZATION", "MAX_K", "ImplicitRecommender", "Recommendations"]

MAX_K = 10_000
#: Defaults measured on MovieLens-100k and Last.fm (see the README's quality table).
DEFAULT_REGULARIZATION: dict[str, float] = {"als": 1.0, "bpr": 0.01}
# implicit's top-k gives filtered items the score -finfo(float32).max; anything this low is not a result.
_FILTERED = np.float32(-1e37)
ModelKind = Literal["als", "bpr"]
Weighting = Literal["bm25", "tfidf", "none"]


@dataclass(frozen=True, slots=True)
class Recommendations:
    """Top-k items per requested user; rows shorter than k are padded (item -1 index, score -inf).

    ``items`` holds external item ids, ``scores`` float32 scores, ``strategy``
    how each row was made: ``model``, ``fold-in`` or ``popularity``.
    """

    items: npt.NDArray[Any]
    scores: npt.NDArray[np.float32]
    strategy: npt.NDArray[np.str_]
    valid: npt.NDArray[np.bool_]

    def to_lists(self) -> list[list[tuple[Any, float]]]:
        """Per user, the (item id, score) pairs actually recommended."""
        return [
            [(it.item(), float(sc)) for it, sc, ok in zip(row_i, row_s, row_v, strict=True) if ok]
            for row_i, row_s, row_v in zip(self.items, self.scores, self.valid, strict=True)
        ]


def _check_params(p: ImplicitRecommender) -> None:
    checks: list[tuple[str, bool, str]] = [
        ("model", p.model in ("als", "bpr"), "'als' or 'bpr'"),
        ("factors", isinstance(p.factors, int) and 1 <= p.factors <= 4096, "an integer in 1..4096"),
        ("iterations", isinstance(p.iterations, int) and 1 <= p.iterations <= 100_000, "an integer >= 1"),
        ("regularization", p.regularization is None or p.regularization >= 0, "a number >= 0"),
        ("alpha", p.alpha > 0, "a number > 0"),
        ("learning_rate", p.learning_rate > 0, "a number > 0"),
        ("weighting", p.weighting in ("bm25", "tfidf", "none"), "'bm25', 'tfidf' or 'none'"),
        ("threads", isinstance(p.threads, int) and p.threads >= 0, "an integer >= 0 (0 = all cores)"),
    ]
    for name, ok, expected in checks:
        if not ok:
            raise ValidationError(f"expected {expected}, got {getattr(p, name)!r}", field=name)


def weight_matrix(csr: sp.csr_matrix, weighting: str, k1: float = 100.0, b: float = 0.8) -> sp.csr_matrix:
    """Apply BM25 / TF-IDF weighting (``implicit.nearest_neighbours``) to a user x item matrix."""
    from implicit.nearest_neighbours import bm25_weight, tfidf_weight

    if weighting == "none":
        return sp.csr_matrix(csr, dtype=np.float32)
    # implicit weights the rows of an item x user matrix; ours is user x item.
    by_item = csr.T.tocsr()
    weighted = bm25_weight(by_item, K1=k1, B=b) if weighting == "bm25" else tfidf_weight(by_item)
    del by_item
    # implicit computes in float64; narrow the values first so no float64 CSR copy is ever made.
    weighted.data = weighted.data.astype(np.float32)
    out: sp.csr_matrix = weighted.T.tocsr()
    return out


class ImplicitRecommender:
    """Matrix-factorisation recommender for implicit feedback (scikit-learn style estimator).

    Parameters are only stored here; :meth:`fit` validates them and sets the
    fitted state (attributes ending in ``_``).
    """

    #: True for models scored as history x item-item matrix (:mod:`~mlscale.apps.recommend.itemitem`).
    item_item: ClassVar[bool] = False

    def __init__(
        self,
        model: ModelKind = "als",
        factors: int = 64,
        regularization: float | None = None,
        alpha: float = 1.0,
        iterations: int = 15,
        learning_rate: float = 0.05,
        weighting: Weighting = "bm25",
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        threads: int = 0,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.weighting = weighting
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.threads = threads
        self.seed = seed

    # -- parameters ---------------------------------------------------------------

    #: The constructor's arguments, in order: what :meth:`get_params` returns and a manifest stores
    #: (subclasses with other constructors set their own).
    _PARAMS: tuple[str, ...] = tuple(inspect.signature(__init__).parameters)[1:]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._PARAMS}

    # -- training -----------------------------------------------------------------

    def _implicit_model(self) -> Any:
        if self.model == "als":
            from implicit.cpu.als import AlternatingLeastSquares

            return AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization_,
                # implicit takes a stored value as the whole confidence (C = alpha * value), so fit()
                # hands it 1 + alpha * weight and leaves implicit's alpha at 1.
                alpha=1.0,
                iterations=self.iterations,
                num_threads=self.threads,
                random_state=self.seed,
            )
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization_,
            iterations=self.iterations,
            num_threads=self.threads,
            random_state=self.seed,
        )

    def fit(self, matrix: InteractionMatrix, *, progress: bool = False) -> Self:
        """Fit on a user x item interaction matrix."""
        _check_params(self)
        if matrix.nnz == 0:
            raise ValidationError("the interaction matrix is empty", field="data")
        weighted = weight_matrix(matrix.csr, self.weighting, self.bm25_k1, self.bm25_b)
        confidence = weighted
        if self.model == "als":
            # The documented confidence, C = 1 + alpha * weight: every observed entry weighs more than
            # a missing one (C = 1), whatever the weighting (BM25 weights are often well below 1).
            confidence = weighted.copy()
            confidence.data = (1.0 + self.alpha * confidence.data).astype(np.float32)
        # implicit runs its own threads; a multi-threaded BLAS underneath would oversubscribe the cores
        # (implicit checks this when the model is created, so create it inside the limit too).
        with threadpool_limits(1, "blas"):
            model = self._implicit_model()
            model.fit(confidence, show_progress=progress)
        self._set_state(
            user_factors=np.ascontiguousarray(model.user_factors, dtype=np.float32),
            item_factors=np.ascontiguousarray(model.item_factors, dtype=np.float32),
            user_ids=np.asarray(matrix.user_ids),
            item_ids=np.asarray(matrix.item_ids),
            seen=matrix.csr,
            fold_in_weight=float(weighted.data.mean()) if weighted.nnz else 1.0,
        )
        return self

    def _set_state(
        self,
        *,
        user_factors: npt.NDArray[np.float32],
        item_factors: npt.NDArray[np.float32],
        user_ids: npt.NDArray[Any],
        item_ids: npt.NDArray[Any],
        seen: sp.csr_matrix,
        fold_in_weight: float,
        item_popularity: npt.NDArray[np.int64] | None = None,
    ) -> None:
        self.user_factors_ = user_factors
        self.item_factors_ = item_factors
        self.user_ids_ = user_ids
        self.item_ids_ = item_ids
        self.seen_ = seen
        self.fold_in_weight_ = fold_in_weight
        self.item_popularity_ = (
            item_popularity
            if item_popularity is not None
            else np.bincount(seen.indices, minlength=item_ids.size).astype(np.int64)
        )
        self._popular_order = np.argsort(-self.item_popularity_, kind="stable")
        self._user_sorter = np.argsort(user_ids, kind="stable")
        self._item_sorter = np.argsort(item_ids, kind="stable")
        self._gram: npt.NDArray[np.float32] | None = None
        # An approximate item index (apps/recommend/ann.py); attached after fitting or loading.
        self.ann_: AnnIndex | None = None

    @property
    def regularization_(self) -> float:
        """The regularisation in effect: the parameter, else the model's measured default."""
        if self.regularization is not None:
            return float(self.regularization)
        return DEFAULT_REGULARIZATION[self.model]

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_factors_"):
            raise ValidationError("the model is not fitted: call fit() or load one from the registry", field="model")

    @property
    def n_users(self) -> int:
        return int(self.user_ids_.size)

    @property
    def n_items(self) -> int:
        return int(self.item_ids_.size)

    # -- ids ----------------------------------------------------------------------

    @staticmethod
    def _coerce(values: Sequence[Any] | npt.NDArray[Any], ids: npt.NDArray[Any], field: str) -> npt.NDArray[Any]:
        """Ids as the model's id dtype; a value of the wrong type is a ValidationError naming ``field``."""
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValidationError("expected a flat list of ids", field=field)
        integer_ids = ids.dtype.kind in "iu"
        if integer_ids and arr.dtype.kind in "iu":
            return arr.astype(np.int64, copy=False)
        if not integer_ids and arr.dtype.kind == "U":
            return arr
        # Slow path (ids from text or JSON): check each value.
        for v in arr.tolist():
            ok = isinstance(v, (int, str)) and not isinstance(v, bool)
            if ok and integer_ids and isinstance(v, str):
                ok = re.fullmatch(r"[+-]?\d{1,18}", v) is not None
            if not ok:
                kind = "integers" if integer_ids else "strings"
                raise ValidationError(f"this model's ids are {kind}; got {v!r}", field=field)
        if integer_ids:
            return arr.astype(np.int64) if arr.size else np.empty(0, np.int64)
        return arr.astype(np.str_)

    def user_index(self, users: Sequence[Any] | npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        """Row of each user id in the model; -1 for unknown users."""
        self._check_fitted()
        return lookup_ids(self.user_ids_, self._user_sorter, self._coerce(users, self.user_ids_, "users"))

    def item_index(self, items: Sequence[Any] | npt.NDArray[Any], field: str = "items") -> npt.NDArray[np.int64]:
        """Column of each item id in the model; -1 for unknown items."""
        self._check_fitted()
        return lookup_ids(self.item_ids_, self._item_sorter, self._coerce(items, self.item_ids_, field))

    def user_vectors(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The query vectors of known users (rows): scores are these times :attr:`item_factors_` transposed."""
        return np.asarray(self.user_factors_[rows])

    # -- fold-in ------------------------------------------------------------------

    def _gram_matrix(self) -> npt.NDArray[np.float32]:
        if self._gram is None:
            y = self.item_factors_
            self._gram = (y.T @ y).astype(np.float32)
        return self._gram

    def fold_in(self, item_rows: Sequence[npt.NDArray[np.int64]]) -> npt.NDArray[np.float32]:
        """Factors for users given only their item indices (one ALS half-step each)."""
        self._check_fitted()
        return solve_rows(
            item_rows,
            self.item_factors_,
            self._gram_matrix(),
            self.regularization_,
            self.alpha * self.fold_in_weight_,
            bpr=self.model == "bpr",
        )

    # -- recommending -------------------------------------------------------------

    def _check_k(self, k: Any, limit: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValidationError(f"expected an integer, got {k!r}", field="k")
        top = min(limit, MAX_K)
        if not 1 <= int(k) <= top:
            raise ValidationError(f"expected 1 <= k <= {top} (the items this model can return), got {k}", field="k")
        return int(k)

    def recommend(
        self,
        users: Sequence[Any] | npt.NDArray[Any],
        k: int = 10,
        *,
        exclude_seen: bool = True,
        include: Sequence[Any] | None = None,
        exclude: Sequence[Any] | None = None,
        recent_items: Mapping[Any, Sequence[Any]] | None = None,
    ) -> Recommendations:
        """Top-``k`` items for each user of a batch, vectorised.

        ``include`` restricts the candidates to those items, ``exclude`` never
        returns them, ``exclude_seen`` drops what the user already interacted
        with (for a cold user: the ``recent_items`` given). Unknown item ids in
        the filters are ignored.
        """
        self._check_fitted()
        k = self._check_k(k, self.n_items if include is None else max(1, len(include)))
        users_arr = self._coerce(users, self.user_ids_, "users")
        rows = lookup_ids(self.user_ids_, self._user_sorter, users_arr)
        n = rows.size
        candidates: npt.NDArray[np.int64] | None = None
        if include is not None:
            inc = self.item_index(include, "include")
            candidates = np.unique(inc[inc >= 0])
        excluded = np.empty(0, np.int64)
        if exclude is not None:
            exc = self.item_index(exclude, "exclude")
            excluded = np.unique(exc[exc >= 0])
        recent = self._recent_rows(users_arr, rows, recent_items)

        out_items = np.full((n, k), -1, dtype=np.int64)
        out_scores = np.full((n, k), -np.inf, dtype=np.float32)
        strategy = np.full(n, "model", dtype="<U10")
        cold = rows < 0
        fold = cold & np.array([recent[i].size > 0 for i in range(n)], dtype=bool)
        pop = cold & ~fold
        strategy[fold], strategy[pop] = "fold-in", "popularity"

        warm_idx, fold_idx = np.flatnonzero(~cold), np.flatnonzero(fold)
        if warm_idx.size or fold_idx.size:
            query = np.empty((warm_idx.size + fold_idx.size, self.item_factors_.shape[1]), np.float32)
            query[: warm_idx.size] = self.user_vectors(rows[warm_idx])
            if fold_idx.size:
                query[warm_idx.size :] = self.fold_in([recent[i] for i in fold_idx])
            order = np.concatenate([warm_idx, fold_idx])
            seen = self._seen_rows(rows[order], [recent[i] for i in order]) if exclude_seen else None
            ids, scores = self._topk(query, k, seen, candidates, excluded)
            out_items[order, : ids.shape[1]], out_scores[order, : ids.shape[1]] = ids, scores
        for i in np.flatnonzero(pop):
            ids = self._popular(k, candidates, excluded, recent[i] if exclude_seen else None)
            out_items[i, : ids.size] = ids
            out_scores[i, : ids.size] = self.item_popularity_[ids].astype(np.float32)
        valid = out_items >= 0
        ext = self.item_ids_[np.where(valid, out_items, 0)]
        return Recommendations(items=ext, scores=out_scores, strategy=strategy, valid=valid)

    def _recent_rows(
        self, users: npt.NDArray[Any], rows: npt.NDArray[np.int64], recent: Mapping[Any, Sequence[Any]] | None
    ) -> list[npt.NDArray[np.int64]]:
        empty = np.empty(0, np.int64)
        if not recent:
            return [empty] * rows.size
        out = []
        for user in users.tolist():
            items = recent.get(user)
            if items is None:
                items = recent.get(str(user)) if not isinstance(user, str) else None
            if items:
                idx = self.item_index(list(items), "recent_items")
                out.append(np.unique(idx[idx >= 0]))
            else:
                out.append(empty)
        return out

    def _seen_rows(self, rows: npt.NDArray[np.int64], recent: list[npt.NDArray[np.int64]]) -> sp.csr_matrix:
        """One CSR row per query: what the user has seen (training rows and recent items)."""
        lens = np.array(
            [
                (self.seen_.indptr[r + 1] - self.seen_.indptr[r] if r >= 0 else 0) + rec.size
                for r, rec in zip(rows.tolist(), recent, strict=True)
            ],
            dtype=np.int64,
        )
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        for j, (r, rec) in enumerate(zip(rows.tolist(), recent, strict=True)):
            start = indptr[j]
            if r >= 0:
                a, b = self.seen_.indptr[r], self.seen_.indptr[r + 1]
                indices[start : start + b - a] = self.seen_.indices[a:b]
                start += b - a
            indices[start : start + rec.size] = rec
        data = np.ones(indices.size, dtype=np.float32)
        return sp.csr_matrix((data, indices, indptr), shape=(rows.size, self.n_items))

    def _topk(
        self,
        query: npt.NDArray[np.float32],
        k: int,
        seen: sp.csr_matrix | None,
        candidates: npt.NDArray[np.int64] | None,
        excluded: npt.NDArray[np.int64],
        approximate: bool = True,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        from implicit.cpu.topk import topk

        if approximate and candidates is None and self.ann_ is not None:
            return self.ann_.topk(
                query,
                k,
                self.item_factors_,
                seen=None if seen is None else (seen.indptr, seen.indices),
                excluded=excluded,
                exact=lambda sub: self._topk(
                    query[sub], k, None if seen is None else seen[sub], None, excluded, approximate=False
                ),
                threads=self.threads,
            )
        factors = self.item_factors_
        if candidates is not None:
            if candidates.size == 0:
                return np.full((query.shape[0], 0), -1, np.int64), np.full((query.shape[0], 0), -np.inf, np.float32)
            factors = factors[candidates]
            excluded = np.flatnonzero(np.isin(candidates, excluded))
            if seen is not None:
                seen = seen[:, candidates].tocsr()
            k = min(k, candidates.size)
        ids, scores = topk(
            np.ascontiguousarray(factors),
            np.ascontiguousarray(query),
            k,
            filter_query_items=seen,
            filter_items=excluded.astype(np.int32) if excluded.size else None,
            num_threads=self.threads,
        )
        ids = np.asarray(ids, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float32)
        # implicit marks filtered-out candidates with -finfo.max, not -inf
        bad = (ids < 0) | ~np.isfinite(scores) | (scores <= _FILTERED)
        if candidates is not None:
            ids = np.where(bad, -1, candidates[np.clip(ids, 0, candidates.size - 1)])
        ids[bad] = -1
        scores[bad] = -np.inf
        return ids, scores

    def _popular(
        self,
        k: int,
        candidates: npt.NDArray[np.int64] | None,
        excluded: npt.NDArray[np.int64],
        seen: npt.NDArray[np.int64] | None,
    ) -> npt.NDArray[np.int64]:
        order = self._popular_order
        drop = excluded if seen is None else np.union1d(excluded, seen)
        if candidates is not None:
            order = order[np.isin(order, candidates)]
        if drop.size:
            order = order[~np.isin(order, drop)]
        return order[:k]

    def similar_items(self, items: Sequence[Any], k: int = 10) -> Recommendations:
        """The ``k`` items most similar (cosine of item factors) to each given item."""
        from implicit.cpu.topk import topk

        self._check_fitted()
        k = self._check_k(k, self.n_items - 1)
        idx = self.item_index(items)
        out_items = np.full((idx.size, k), -1, np.int64)
        out_scores = np.full((idx.size, k), -np.inf, np.float32)
        known = np.flatnonzero(idx >= 0)
        if known.size and self.ann_ is not None and self.ann_.similar_ok:
            ids, scores = self.ann_.similar(idx[known], k, self.item_factors_, threads=self.threads)
            out_items[known], out_scores[known] = ids, scores
        elif known.size:
            norms = np.linalg.norm(self.item_factors_, axis=1).astype(np.float32)
            norms[norms == 0] = 1.0
            query = self.item_factors_[idx[known]] / norms[idx[known], None]
            self_filter = sp.csr_matrix(
                (np.ones(known.size, np.float32), idx[known].astype(np.int32), np.arange(known.size + 1)),
                shape=(known.size, self.n_items),
            )
            ids, scores = topk(
                np.ascontiguousarray(self.item_factors_),
                np.ascontiguousarray(query, np.float32),
                k,
                item_norms=norms,
                filter_query_items=self_filter,
                num_threads=self.threads,
            )
            out_items[known], out_scores[known] = ids, scores
        valid = out_items >= 0
        strategy = np.where(idx >= 0, "model", "unknown").astype("<U10")
        return Recommendations(
            items=self.item_ids_[np.where(valid, out_items, 0)],
            scores=out_scores,
            strategy=strategy,
            valid=valid,
        )


def solve_rows(
    item_rows: Sequence[npt.NDArray[np.int64]],
    item_factors: npt.NDArray[np.float32],
    gram: npt.NDArray[np.float32],
    regularization: float,
    confidence: float,
    *,
    weights: Sequence[npt.NDArray[np.float32]] | None = None,
    bpr: bool = False,
) -> npt.NDArray[np.float32]:
    """Least-squares factors for rows given their items: the ALS update with confidence ``1 + c*w``.

    Solves ``(YtY + Yi^T (Ci - I) Yi + reg I) x = Yi^T Ci 1`` for each row. For a
    BPR model (whose last factor is an item bias) the bias column is left out of
    the solve and the user's bias weight is set to 1, as implicit does.
    """
    f = item_factors.shape[1]
    out = np.zeros((len(item_rows), f), dtype=np.float32)
    y_all = item_factors[:, :-1] if bpr else item_factors
    g = gram[:-1, :-1] if bpr else gram
    eye = regularization * np.eye(g.shape[0], dtype=np.float64)
    for j, items in enumerate(item_rows):
        if items.size == 0:
            continue
        y = y_all[items].astype(np.float64)
        w = np.ones(items.size) if weights is None else np.asarray(weights[j], np.float64)
        c = 1.0 + confidence * w
        a = g + (y.T * (c - 1.0)) @ y + eye
        b = y.T @ c
        x = np.linalg.solve(a, b)
        if bpr:
            out[j, :-1] = x
            out[j, -1] = 1.0
        else:
            out[j] = x
    return out
