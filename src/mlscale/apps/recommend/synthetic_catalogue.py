"""A servable recommender of any catalogue size in seconds: synthetic factors, no training.

Serving and index benchmarks at 1M or 10M items need a model of that size; an
ALS fit on 100M interactions each time would take hours here. This module
draws one directly, shaped like a fitted ALS model:

- **Spectrum.** Factor ``j`` (0-based) of users and items has standard
  deviation ``(j + 1) ** -spectrum_decay`` (default 0.5), so the variance of
  the factors falls off as a power law, as the singular values of real
  interaction matrices do; the effective dimension is well below ``factors``.
- **Clusters.** Real item factors cluster (genres, sub-genres, series):
  each item belongs to one of ``clusters`` topics (default ``sqrt(items)``)
  and is its topic's centre plus noise of relative size ``cluster_spread``
  (default 0.5); each user is the centre of a favourite topic plus noise of
  the same size. Without clusters (``clusters=0``) the factors are one
  Gaussian, the worst case for any approximate index: at 1M items an IVF
  index then needs ``nprobe`` = 1024 of 4096 lists for recall@10 0.96
  (measured), where clustered factors need a few dozen.
- **Popularity tail.** Item ``i`` (ids in a seeded random order) has
  popularity ``(rank + 2.7) ** -popularity_exponent`` (Zipf-Mandelbrot,
  default exponent 1.0, the shape of MovieLens and Last.fm item counts).
- **Popular items score higher.** Each item's factor vector is scaled by
  ``(popularity / mean popularity) ** norm_exponent`` (default 0.25), as
  ALS gives popular items larger norms; this is what makes inner-product
  search differ from cosine search.
- **Seen items.** Each user has ``1 + Poisson(seen_per_user - 1)`` distinct
  items drawn by popularity, so ``exclude_seen`` has work to do.

The returned :class:`ImplicitRecommender` is fitted in every respect (ids,
factors, seen matrix, popularity) and publishes, serves and indexes like a
trained one. Memory: ``4 * factors * (items + users)`` bytes for the factors
plus 12 bytes per seen entry (2.6 GB at 10M items x 64 factors).

>>> model = synthetic_model(SyntheticCatalogue(items=1000, users=50, factors=8))
>>> model.n_items, model.n_users, model.item_factors_.shape
(1000, 50, (1000, 8))
>>> model.recommend([1], k=3).items.shape
(1, 3)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from mlscale.apps.recommend.model import ImplicitRecommender
from mlscale.errors import ValidationError

__all__ = ["SyntheticCatalogue", "synthetic_model"]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class SyntheticCatalogue:
    """The shape of a synthetic model (see the module notes for what each field means)."""

    items: int
    users: int = 100_000
    factors: int = 64
    spectrum_decay: float = 0.5
    popularity_exponent: float = 1.0
    norm_exponent: float = 0.25
    seen_per_user: float = 20.0
    clusters: int | None = None
    cluster_spread: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("items", "users", "factors"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"expected an integer >= 1, got {value!r}", field=name)
        if self.factors > 4096:
            raise ValidationError(f"expected at most 4096, got {self.factors}", field="factors")
        for name in ("spectrum_decay", "popularity_exponent", "norm_exponent"):
            if not 0 <= getattr(self, name) <= 10:
                raise ValidationError(f"expected a number in 0..10, got {getattr(self, name)!r}", field=name)
        if self.clusters is not None and (isinstance(self.clusters, bool) or not 0 <= self.clusters <= self.items):
            raise ValidationError(f"expected 0..{self.items} (0: no clusters), got {self.clusters!r}", field="clusters")
        if not 0 <= self.cluster_spread <= 100:
            raise ValidationError(f"expected a number in 0..100, got {self.cluster_spread!r}", field="cluster_spread")
        if not 1 <= self.seen_per_user <= self.items:
            raise ValidationError(f"expected 1..{self.items}, got {self.seen_per_user!r}", field="seen_per_user")


def _factors(rng: np.random.Generator, n: int, scale: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out = np.empty((n, scale.size), np.float32)
    for start in range(0, n, _CHUNK):  # float32 draws in chunks: no float64 copy of a 10M x 64 array
        stop = min(n, start + _CHUNK)
        out[start:stop] = rng.standard_normal((stop - start, scale.size), dtype=np.float32)
        out[start:stop] *= scale
    return out


def synthetic_model(spec: SyntheticCatalogue, *, threads: int = 0) -> ImplicitRecommender:
    """A fitted-looking recommender of ``spec.items`` items (ids 1..items) and ``spec.users`` users."""
    rng = np.random.default_rng(spec.seed)
    scale = (np.arange(1, spec.factors + 1, dtype=np.float64) ** -spec.spectrum_decay).astype(np.float32)
    # Scaled so that E|x|^2 = 1 for a user (and an item of mean popularity) whatever the factor count.
    scale /= np.float32(np.sqrt(np.sum(scale.astype(np.float64) ** 2)))
    popularity = (rng.permutation(spec.items) + 2.7) ** -spec.popularity_exponent
    popularity /= popularity.sum()
    n_clusters = spec.clusters if spec.clusters is not None else max(1, round(spec.items**0.5))
    items = _factors(rng, spec.items, scale)
    users = _factors(rng, spec.users, scale)
    if n_clusters:
        centres = _factors(rng, n_clusters, scale)
        spread = np.float32(spec.cluster_spread)
        mix = np.float32(1.0 / np.sqrt(1.0 + spec.cluster_spread**2))  # keeps E|x|^2 = 1
        for x in (items, users):
            topic = np.asarray(rng.integers(0, n_clusters, x.shape[0], dtype=np.int64))
            for start in range(0, x.shape[0], _CHUNK):
                stop = min(x.shape[0], start + _CHUNK)
                x[start:stop] *= spread
                x[start:stop] += centres[topic[start:stop]]
                x[start:stop] *= mix
    norm = (popularity * spec.items) ** spec.norm_exponent
    items *= norm.astype(np.float32)[:, None]

    counts = np.minimum(1 + rng.poisson(spec.seen_per_user - 1, spec.users), spec.items)
    cdf = np.cumsum(popularity)
    cdf /= cdf[-1]
    drawn = np.minimum(np.searchsorted(cdf, rng.random(int(counts.sum()))), spec.items - 1)
    rows = np.repeat(np.arange(spec.users, dtype=np.int64), counts)
    seen = sp.csr_matrix(
        (np.ones(drawn.size, np.float32), (rows, drawn.astype(np.int32))), shape=(spec.users, spec.items)
    )
    seen.sum_duplicates()
    seen.data[:] = 1.0

    model = ImplicitRecommender(factors=spec.factors, threads=threads, seed=spec.seed)
    model._set_state(
        user_factors=users,
        item_factors=items,
        user_ids=np.arange(1, spec.users + 1, dtype=np.int64),
        item_ids=np.arange(1, spec.items + 1, dtype=np.int64),
        seen=seen,
        fold_in_weight=1.0,
    )
    return model
