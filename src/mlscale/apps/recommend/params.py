"""The recommender's parameters, one frozen class per model family: the only place their defaults are written.

The command line's flags (``--factors``, ``--l2``...) and their help are
generated from these fields; a manifest stores them as a dict. The first
family, ``auto``, is the default: it picks the model by measured rules (see
:mod:`~mlscale.apps.recommend.defaults`); the others name a family outright.
ALS/BPR defaults were measured on MovieLens-100k and Last.fm, EASE's and
auto's on six protocols over five data sets (see the README's quality table).

>>> AlsParams().iterations, BprParams().iterations, EaseParams().l2
(15, 100, 200.0)
>>> list(FAMILIES)
['auto', 'als', 'bpr', 'ease', 'knn']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mlscale.apps.base import param
from mlscale.apps.recommend.itemitem import DEFAULT_ITEM_ITEM_BUDGET, SIMILARITIES

__all__ = ["FAMILIES", "WEIGHTINGS", "AlsParams", "AutoParams", "BprParams", "EaseParams", "KnnParams"]

WEIGHTINGS = ("bm25", "tfidf", "none")
_WEIGHTING = "weighting of the interaction matrix"
_REG = "L2 regularisation (Spark scales it by each row's interaction count: its default is 0.05)"
_BUDGET = "bytes the item-item matrix may take (EASE, kNN; auto: over it, ALS)"


@dataclass(frozen=True)
class AutoParams:
    """EASE with lambda chosen on a validation split when its item-item matrix fits --item-budget, else ALS."""

    family: ClassVar[str] = "auto"

    memory_budget: int = param(DEFAULT_ITEM_ITEM_BUDGET, _BUDGET, minimum=1, flag="--item-budget")
    seed: int = param(0, "random seed")


@dataclass(frozen=True)
class AlsParams:
    """Alternating least squares with the confidence ``C = 1 + alpha * weight``."""

    family: ClassVar[str] = "als"

    factors: int = param(64, "latent factors", minimum=1)
    regularization: float = param(1.0, _REG, minimum=0)
    alpha: float = param(1.0, "ALS confidence: C = 1 + alpha * weight", minimum=1e-12)
    iterations: int = param(15, "training iterations", minimum=1)
    weighting: str = param("bm25", _WEIGHTING, choices=WEIGHTINGS)
    bm25_k1: float = param(100.0, "BM25 k1", hidden=True)
    bm25_b: float = param(0.8, "BM25 b", hidden=True)
    seed: int = param(0, "random seed")


@dataclass(frozen=True)
class BprParams:
    """Bayesian personalised ranking (sampled pairwise loss)."""

    family: ClassVar[str] = "bpr"

    factors: int = param(64, "latent factors", minimum=1)
    regularization: float = param(0.01, _REG, minimum=0)
    iterations: int = param(100, "training iterations", minimum=1)
    learning_rate: float = param(0.05, "BPR learning rate", minimum=1e-12)
    weighting: str = param("bm25", _WEIGHTING, choices=WEIGHTINGS)
    bm25_k1: float = param(100.0, "BM25 k1", hidden=True)
    bm25_b: float = param(0.8, "BM25 b", hidden=True)
    seed: int = param(0, "random seed")


@dataclass(frozen=True)
class EaseParams:
    """EASE (Steck 2019): closed-form item-item weights, one parameter (lambda)."""

    family: ClassVar[str] = "ease"

    l2: float = param(200.0, "EASE lambda (L2 on the item-item weights)", minimum=1e-12)
    min_item_count: int = param(2, "items seen fewer times are left out of the item-item matrix", minimum=1)
    memory_budget: int = param(DEFAULT_ITEM_ITEM_BUDGET, _BUDGET, minimum=1, flag="--item-budget")
    seed: int = param(0, "random seed")


@dataclass(frozen=True)
class KnnParams:
    """Item-kNN (implicit's): each item's most similar items."""

    family: ClassVar[str] = "knn"

    neighbours: int = param(100, "kNN: similar items kept per item", minimum=1)
    similarity: str = param("cosine", "kNN item similarity", choices=SIMILARITIES)
    bm25_k1: float = param(1.2, "BM25 k1", hidden=True)
    bm25_b: float = param(0.75, "BM25 b", hidden=True)
    memory_budget: int = param(DEFAULT_ITEM_ITEM_BUDGET, _BUDGET, minimum=1, flag="--item-budget")
    seed: int = param(0, "random seed")


#: Family -> params class; the first (``auto``) is the default.
FAMILIES: dict[str, type[Any]] = {
    "auto": AutoParams,
    "als": AlsParams,
    "bpr": BprParams,
    "ease": EaseParams,
    "knn": KnnParams,
}
