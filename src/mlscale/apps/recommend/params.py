"""The recommender's parameters, one frozen class per model family: the only place their defaults are written.

The command line's flags (``--factors``, ``--regularization``...) and their
help are generated from these fields; a manifest stores them as a dict.
Defaults were measured on MovieLens-100k and Last.fm (see the README's quality table).

>>> AlsParams().iterations, BprParams().iterations
(15, 100)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlscale.apps.base import param

__all__ = ["WEIGHTINGS", "AlsParams", "BprParams"]

WEIGHTINGS = ("bm25", "tfidf", "none")
_WEIGHTING = "weighting of the interaction matrix"
_REG = "L2 regularisation (Spark scales it by each row's interaction count: its default is 0.05)"


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
