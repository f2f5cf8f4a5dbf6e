"""The out-of-the-box model: EASE with lambda chosen on validation when the catalogue fits, else ALS.

Measured on six protocols over five data sets (README, "Recommendation
quality"; ``benchmarks/recommend_quality.py``): EASE with a validated lambda
led on every one, tuned ALS on none, and no single lambda was best
everywhere (the best ranged over two orders of magnitude). So the default
is a small, deterministic search rather than a constant:

1. carve a validation split from the training table
   (:func:`~mlscale.apps.recommend.tune.validation_split`);
2. compute the item Gram matrix of its training part once, then for lambda
   on a x4 grid from 4 upward (stopping after two worse values in a row) and
   then x2 either side of the best, invert and score NDCG@10;
3. fit EASE on the whole training table with the best lambda.

Each lambda costs one ``n_items^3`` Cholesky inversion, so the search is
seconds for a few thousand items. When EASE does not fit the memory budget
(``DEFAULT_ITEM_ITEM_BUDGET``), the default is ALS with :data:`FALLBACK_ALS`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa

from mlscale.apps.recommend.evaluate import report_on_split
from mlscale.apps.recommend.itemitem import (
    DEFAULT_ITEM_ITEM_BUDGET,
    EaseRecommender,
    binary_rows,
    ease_from_gram,
    item_item_bytes,
    prune_items,
)
from mlscale.apps.recommend.model import ImplicitRecommender
from mlscale.apps.recommend.tune import validation_split
from mlscale.data import InteractionMatrix

__all__ = ["FALLBACK_ALS", "auto_model", "search_ease_l2"]

#: ALS parameters when EASE does not fit (C = 1 + alpha * w on unweighted data).
FALLBACK_ALS: dict[str, Any] = {
    "model": "als",
    "factors": 64,
    "regularization": 1.0,
    "alpha": 10.0,
    "weighting": "none",
}


def search_ease_l2(
    table: pa.Table, *, threads: int = 0, min_item_count: int = 2, k: int = 10
) -> tuple[float, list[tuple[float, float]]]:
    """The lambda with the best validation NDCG@k, and every (lambda, score) tried, in order tried."""
    from threadpoolctl import threadpool_limits

    val = validation_split(table)
    kept = prune_items(val.train, min_item_count)
    x = binary_rows(kept.csr)
    gram = np.asarray((x.T @ x).toarray(), dtype=np.float32)
    tried: dict[float, float] = {}

    def score(l2: float) -> float:
        if l2 not in tried:
            model = EaseRecommender(l2=l2, min_item_count=min_item_count, threads=threads)
            with threadpool_limits(threads or None, "blas"):
                weights = ease_from_gram(gram.copy(), l2)
            model.set_fitted(kept, weights)
            tried[l2] = float(report_on_split(val, model, k=k).model["ndcg"])
        return tried[l2]

    best, worse, l2 = -1.0, 0, 4.0
    while worse < 2 and l2 <= 65_536:
        s = score(l2)
        if s > best:
            best, worse = s, 0
        else:
            worse += 1
        l2 *= 4
    top = max(tried, key=lambda v: tried[v])
    for cand in (top / 2, top * 2):
        score(cand)
    top = max(tried, key=lambda v: tried[v])
    return top, list(tried.items())


def auto_model(
    table: pa.Table,
    matrix: InteractionMatrix,
    *,
    threads: int = 0,
    memory_budget: int = DEFAULT_ITEM_ITEM_BUDGET,
) -> tuple[ImplicitRecommender, dict[str, Any]]:
    """The default model fitted on ``matrix`` (the matrix of ``table``), and how it was chosen (for the manifest)."""
    start = time.perf_counter()
    n_kept = prune_items(matrix, 2).shape[1]
    if item_item_bytes(n_kept) <= memory_budget:
        l2, tried = search_ease_l2(table, threads=threads)
        model: ImplicitRecommender = EaseRecommender(l2=l2, memory_budget=memory_budget, threads=threads)
        info: dict[str, Any] = {
            "rule": "EASE, lambda chosen on a validation split of the training data",
            "validation_curve": [{"l2": a, "ndcg@10": b} for a, b in tried],
        }
    else:
        model = ImplicitRecommender(threads=threads, **FALLBACK_ALS)
        info = {
            "rule": f"ALS: EASE needs {item_item_bytes(n_kept) / 2**30:.1f} GiB for {n_kept:,} items, over the budget",
        }
    search_s = time.perf_counter() - start
    model.fit(matrix)
    info.update({"model": model.model, "search_seconds": round(search_s, 3), "params": model.get_params()})
    return model, info
