"""The out-of-the-box model: EASE with lambda chosen on validation when the catalogue fits, else ALS.

Measured on six protocols over five data sets (README, "Recommendation
quality"; ``benchmarks/recommend_quality.py``): EASE with a validated lambda
led tuned ALS on every one, and the best lambda moved with the data set. So
the default is a small, deterministic search rather than a constant:

1. carve a random 20% validation split from the training table (seeded).
   Random, not time-aware: on ML-latest-small a last-10-per-user validation
   chose lambda = 32768 and lost a third of the test NDCG (0.262, where
   EASE with lambda near 256 gets about 0.36), while the random split also
   chose well on the time-split protocols;
2. on the ``SEARCH_ITEMS`` most popular items of its training part (the
   lambda chosen on 1,500 or 3,000 items was the same on ML-latest-small),
   compute the Gram matrix once, then for lambda on a x4 grid from 16
   (stopping after two values in a row more than :data:`TOLERANCE` below the
   best) and x2 either side of the choice, invert it and score NDCG@10; the
   choice is the largest lambda within :data:`TOLERANCE` of the best score;
3. fit EASE on the whole training table (items seen twice or more) with the best lambda.

Each lambda costs one Cholesky inversion of at most ``SEARCH_ITEMS`` items.
When EASE does not fit the memory budget (``DEFAULT_ITEM_ITEM_BUDGET``), the
default is ALS with :data:`FALLBACK_ALS`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import scipy.sparse as sp

from mlscale.apps.base import params_to_dict
from mlscale.apps.recommend.itemitem import (
    DEFAULT_ITEM_ITEM_BUDGET,
    EaseRecommender,
    binary_rows,
    ease_from_gram,
    item_item_bytes,
    prune_items,
)
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.apps.recommend.model import ImplicitRecommender
from mlscale.apps.recommend.params import AlsParams, EaseParams
from mlscale.apps.recommend.tune import validation_split

__all__ = ["FALLBACK_ALS", "SEARCH_ITEMS", "TOLERANCE", "auto_model", "search_ease_l2", "top_items"]

#: Items the lambda search works on (the most popular ones).
SEARCH_ITEMS = 2000
#: Validation scores within this share of the best count as ties (broken toward more regularisation).
TOLERANCE = 0.01

#: ALS when EASE does not fit: :class:`~mlscale.apps.recommend.params.AlsParams`' defaults (64 factors,
#: BM25, alpha 1, C = 1 + alpha * w).
#: Chosen on random 20% validation splits of three protocols' training parts (NDCG@10, 2026-12-01):
#: BM25 / alpha 1 scored 0.305 / 0.137 / 0.054 on ML-100k / Last.fm / Amazon MI; no weighting 0.321 / 0.118 /
#: 0.052; alpha 10 without weighting 0.255 / 0.065 / 0.053. BM25 helps on Last.fm's play counts by more than
#: it costs on MovieLens' ratings, so it stays.
FALLBACK_ALS: dict[str, Any] = {"model": "als"}


def top_items(matrix: InteractionMatrix, n: int) -> InteractionMatrix:
    """The matrix restricted to its ``n`` most popular items (all when it has fewer)."""
    if matrix.shape[1] <= n:
        return matrix
    counts = np.bincount(matrix.csr.indices, minlength=matrix.shape[1])
    keep = np.sort(np.argsort(-counts, kind="stable")[:n])
    return InteractionMatrix(
        csr=matrix.csr[:, keep].tocsr(),
        user_ids=np.asarray(matrix.user_ids),
        item_ids=np.asarray(matrix.item_ids)[keep],
    )


def _ndcg(
    scores: npt.NDArray[np.float32],
    seen: npt.NDArray[np.bool_],
    columns: npt.NDArray[np.int64],
    truth: sp.csr_matrix,
    k: int,
) -> float:
    """Mean binary NDCG@k of dense scores (seen items masked) against held-out columns ``truth``.

    The same metric as :func:`~mlscale.apps.recommend.evaluate.ranking_metrics`, vectorised for the
    lambda search (which scores every validation user once per lambda).
    """
    scores[seen] = -np.inf
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    at = np.arange(scores.shape[0])[:, None]
    order = np.argsort(-scores[at, part], axis=1, kind="stable")
    top = part[at, order]
    valid = np.isfinite(scores[at, top])
    hits = np.asarray(truth[np.repeat(np.arange(top.shape[0]), k), columns[top].ravel()]).reshape(top.shape) > 0
    hits &= valid
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(np.diff(truth.indptr), k) - 1]
    return float(np.mean((hits * discounts).sum(axis=1) / ideal))


def search_ease_l2(
    table: pa.Table,
    *,
    threads: int = 0,
    min_item_count: int = 2,
    k: int = 10,
    search_items: int = SEARCH_ITEMS,
    seed: int = 0,
) -> tuple[float, list[tuple[float, float]]]:
    """The lambda with the best validation NDCG@k, and every (lambda, score) tried, in order tried."""
    from threadpoolctl import threadpool_limits

    val = validation_split(table, method="random", seed=seed)
    kept = top_items(prune_items(val.train, min_item_count), search_items)
    x = binary_rows(kept.csr)
    gram = np.asarray((x.T @ x).toarray(), dtype=np.float32)
    tried: dict[float, float] = {}

    queries = binary_rows(kept.csr, val.rows).toarray()
    columns = val.train.item_index(np.asarray(kept.item_ids))
    truth = sp.csr_matrix(
        (
            np.ones(sum(t.size for t in val.truth), np.float32),
            np.concatenate(val.truth),
            np.r_[0, np.cumsum([t.size for t in val.truth])],
        ),
        shape=(val.rows.size, val.train.shape[1]),
    )

    def score(l2: float) -> float:
        if l2 not in tried:
            with threadpool_limits(threads or None, "blas"):
                weights = ease_from_gram(gram.copy(), l2)
                tried[l2] = _ndcg(queries @ weights.T, queries > 0, columns, truth, k)
        return tried[l2]

    def pick() -> float:
        # The curve is flat near its top and a validation split is noisy: of the values within
        # TOLERANCE of the best, take the strongest regularisation (measured on Amazon MI: the
        # plain argmax picked 16 on a near-tie with 256, and lost 13% of the test NDCG).
        best = max(tried.values())
        return max(v for v, s in tried.items() if s >= (1.0 - TOLERANCE) * best)

    worse, l2 = 0, 16.0
    while worse < 2 and l2 <= 65_536:
        s = score(l2)
        worse = 0 if s >= (1.0 - TOLERANCE) * max(tried.values()) else worse + 1
        l2 *= 4
    top = pick()
    for cand in (top / 2, top * 2):
        score(cand)
    top = pick()
    return top, list(tried.items())


def auto_model(
    table: pa.Table,
    matrix: InteractionMatrix,
    *,
    threads: int = 0,
    memory_budget: int = DEFAULT_ITEM_ITEM_BUDGET,
    seed: int = 0,
) -> tuple[ImplicitRecommender, dict[str, Any]]:
    """The default model fitted on ``matrix`` (the matrix of ``table``), and how it was chosen (for the manifest)."""
    start = time.perf_counter()
    ease = EaseParams()
    n_kept = prune_items(matrix, ease.min_item_count).shape[1]
    if item_item_bytes(n_kept) <= memory_budget:
        l2, tried = search_ease_l2(table, threads=threads, min_item_count=ease.min_item_count, seed=seed)
        model: ImplicitRecommender = EaseRecommender(
            l2=l2, min_item_count=ease.min_item_count, memory_budget=memory_budget, threads=threads, seed=seed
        )
        info: dict[str, Any] = {
            "rule": "EASE, lambda chosen on a random 20% validation split of the training data",
            "validation_curve": [{"l2": a, "ndcg@10": b} for a, b in tried],
        }
    else:
        model = ImplicitRecommender(**{**FALLBACK_ALS, **params_to_dict(AlsParams()), "seed": seed, "threads": threads})
        info = {
            "rule": f"ALS: EASE needs {item_item_bytes(n_kept) / 2**30:.1f} GiB for {n_kept:,} items, over the budget",
        }
    search_s = time.perf_counter() - start
    model.fit(matrix)
    info.update({"model": model.model, "search_seconds": round(search_s, 3), "params": model.get_params()})
    return model, info
