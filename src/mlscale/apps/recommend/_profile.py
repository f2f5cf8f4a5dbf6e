"""The numbers behind :class:`mlscale.apps.recommend.profile.InteractionProfile`.

Fitting turns a real interaction log into a few short curves; sampling turns
those curves back into per-user and per-item tables of any size. Everything
here is plain numpy on arrays of per-user or per-item counts, so fitting a
25M-row log costs one group-by and sampling a billion-row plan costs
O(users + items).

Shapes are stored scale-free so that they extrapolate:

* user activity is a quantile function: the empirical quantiles of the
  per-user counts up to ``tail_p`` (linear in log-count between grid points),
  then a Pareto tail whose exponent is the Hill estimate over the top
  ``1 - tail_p`` of users. A million synthetic users therefore get heavier
  extremes than the 943 of MovieLens-100k, as real logs do, instead of being
  capped at the largest user seen.
* item popularity is a rank curve: the share of an item relative to the mean
  item, as a function of its normalised rank ``(rank + 0.5) / n_items``,
  sampled at about 130 ranks (log-spaced at the head, linear in the body) and
  interpolated in log space.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ACTIVITY_TAIL_P",
    "MOVIELENS_100K",
    "TIME_PROBS",
    "activity_quantile",
    "fit_activity",
    "fit_popularity",
    "gini",
    "popularity_weights",
    "rounded",
]

F64 = npt.NDArray[np.float64]

#: Above this probability user activity follows the fitted Pareto tail.
ACTIVITY_TAIL_P = 0.9
#: Probabilities at which the activity body is stored.
_ACTIVITY_POINTS = 91
#: Probabilities at which per-user first-time and time-span quantiles are stored.
TIME_PROBS: tuple[float, ...] = tuple(float(p) for p in np.linspace(0.0, 1.0, 21))
#: Bounds on the tail exponent: below 1.5 the mean is unstable, above 10 it is a wall.
_ALPHA_RANGE = (1.5, 10.0)


def rounded(values: npt.ArrayLike) -> list[float]:
    """Values as plain floats with 6 significant digits (keeps profiles small and stable)."""
    return [float(f"{v:.6g}") for v in np.asarray(values, dtype=np.float64).ravel()]


def gini(values: npt.ArrayLike) -> float:
    """Gini coefficient of non-negative values (0: all equal, towards 1: one has all).

    >>> round(gini([1, 1, 1, 1]), 3), round(gini([0, 0, 0, 4]), 3)
    (0.0, 0.75)
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    total = float(x.sum())
    if n == 0 or total <= 0.0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(((2.0 * ranks - n - 1.0) @ x) / (n * total))


def fit_activity(counts: npt.ArrayLike) -> tuple[list[float], list[float], float]:
    """Quantile grid, quantile values and Pareto tail exponent of per-user counts."""
    x = np.asarray(counts, dtype=np.float64)
    probs = np.linspace(0.0, ACTIVITY_TAIL_P, _ACTIVITY_POINTS)
    values = np.quantile(x, probs)
    threshold = float(values[-1])
    top = x[x > threshold]
    if top.size >= 2 and threshold > 0:
        mean_log = float(np.mean(np.log(top / threshold)))
        alpha = 1.0 / mean_log if mean_log > 0 else _ALPHA_RANGE[1]
    else:
        alpha = _ALPHA_RANGE[1]
    alpha = float(np.clip(alpha, *_ALPHA_RANGE))
    return rounded(probs), rounded(values), rounded([alpha])[0]


def activity_quantile(p: npt.NDArray[np.float64], probs: F64, values: F64, tail_p: float, tail_alpha: float) -> F64:
    """Evaluate the fitted activity quantile function at probabilities ``p`` in [0, 1)."""
    logv = np.log(np.maximum(values, 1e-12))
    out = np.exp(np.interp(np.minimum(p, tail_p), probs, logv))
    tail = p > tail_p
    if np.any(tail):
        ratio = (1.0 - tail_p) / np.maximum(1.0 - p[tail], 1e-300)
        out[tail] = values[-1] * ratio ** (1.0 / tail_alpha)
    return out


def _rank_grid(n: int) -> npt.NDArray[np.int64]:
    head = np.geomspace(1, n, 72)
    body = np.linspace(1, n, 64)
    ranks = np.unique(np.rint(np.concatenate([head, body])).astype(np.int64))
    return ranks - 1


def fit_popularity(counts: npt.ArrayLike) -> tuple[list[float], list[float]]:
    """Normalised ranks and shares (count / mean count) of the item popularity curve."""
    x = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    n = x.size
    ranks = _rank_grid(n)
    q = (ranks + 0.5) / n
    share = x[ranks] / float(x.mean())
    return rounded(q), rounded(share)


def popularity_weights(n_items: int, ranks: F64, shares: F64) -> F64:
    """Sampling weight of each popularity rank ``0..n_items-1`` (sums to 1)."""
    q = (np.arange(n_items, dtype=np.float64) + 0.5) / n_items
    w = np.exp(np.interp(q, ranks, np.log(np.maximum(shares, 1e-12))))
    return np.asarray(w / w.sum(), dtype=np.float64)


# Fitted from MovieLens-100k (GroupLens; Harper & Konstan 2015): 100,000 ratings,
# 943 users, 1,682 items. Regenerate with
#   InteractionProfile.fit(table, name="movielens-100k").to_json()
# Only these summary numbers are kept, not the data.
# fmt: off
MOVIELENS_100K: dict[str, Any] = {
    "format": "mlscale.interaction-profile",
    "version": 1,
    "name": "movielens-100k",
    "n_rows": 100000,
    "n_users": 943,
    "n_items": 1682,
    "activity_probs": [
        0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16,
        0.17, 0.18, 0.19, 0.2, 0.21, 0.22, 0.23, 0.24, 0.25, 0.26, 0.27, 0.28, 0.29, 0.3, 0.31, 0.32, 0.33,
        0.34, 0.35, 0.36, 0.37, 0.38, 0.39, 0.4, 0.41, 0.42, 0.43, 0.44, 0.45, 0.46, 0.47, 0.48, 0.49, 0.5,
        0.51, 0.52, 0.53, 0.54, 0.55, 0.56, 0.57, 0.58, 0.59, 0.6, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66, 0.67,
        0.68, 0.69, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75, 0.76, 0.77, 0.78, 0.79, 0.8, 0.81, 0.82, 0.83, 0.84,
        0.85, 0.86, 0.87, 0.88, 0.89, 0.9
    ],
    "activity_values": [
        20.0, 20.0, 20.0, 20.0, 21.0, 21.0, 22.0, 22.0, 22.0, 23.0, 23.0, 24.0, 24.0, 25.0, 25.0, 26.0,
        26.0, 27.0, 27.0, 28.0, 29.0, 29.0, 30.0, 31.0, 32.0, 33.0, 33.0, 35.0, 35.0, 37.0, 38.0, 39.0,
        40.0, 41.0, 42.28, 43.0, 45.0, 46.0, 47.0, 48.0, 50.0, 51.0, 53.0, 54.0, 55.0, 57.0, 58.0, 59.0,
        62.0, 63.0, 65.0, 66.0, 68.0, 71.0, 73.0, 75.0, 77.52, 81.0, 84.0, 89.0, 93.0, 98.0, 101.04, 104.0,
        106.0, 108.0, 111.0, 115.0, 120.56, 123.98, 127.4, 132.82, 135.24, 139.66, 143.16, 148.0, 150.0,
        155.0, 160.0, 166.0, 171.6, 181.0, 184.0, 189.0, 197.0, 205.4, 213.24, 221.0, 227.92, 234.76, 244.4
    ],
    "activity_tail_p": ACTIVITY_TAIL_P,
    "activity_tail_alpha": 3.36603,
    "activity_max_fraction": 0.438169,
    "popularity_ranks": [
        0.000297265, 0.000891795, 0.00148633, 0.00208086, 0.00267539, 0.00326992, 0.00386445, 0.00445898,
        0.00505351, 0.00564804, 0.00624257, 0.0068371, 0.00802616, 0.00862069, 0.00980975, 0.0109988,
        0.0121879, 0.0133769, 0.0151605, 0.0163496, 0.0187277, 0.0205113, 0.0228894, 0.0252675, 0.0282402,
        0.0312128, 0.0318074, 0.03478, 0.0389417, 0.0431034, 0.0478597, 0.0532105, 0.0591558, 0.063912,
        0.0656956, 0.07283, 0.0793698, 0.0811534, 0.0900713, 0.0954221, 0.0995838, 0.11088, 0.111474,
        0.123365, 0.126932, 0.136445, 0.142985, 0.151902, 0.159037, 0.168549, 0.175089, 0.18698, 0.190547,
        0.206599, 0.207788, 0.222652, 0.230975, 0.238109, 0.254162, 0.25654, 0.270214, 0.284483, 0.285672,
        0.301724, 0.315993, 0.317776, 0.333234, 0.349287, 0.35107, 0.365339, 0.380797, 0.389715, 0.396849,
        0.412901, 0.428359, 0.432521, 0.444411, 0.460464, 0.475922, 0.480678, 0.491974, 0.508026, 0.524078,
        0.533591, 0.539536, 0.555589, 0.571641, 0.587099, 0.592449, 0.603151, 0.619203, 0.634661, 0.650713,
        0.657848, 0.666766, 0.682224, 0.698276, 0.714328, 0.729786, 0.73038, 0.745838, 0.761891, 0.777348,
        0.793401, 0.809453, 0.810642, 0.824911, 0.840963, 0.857015, 0.873068, 0.888526, 0.900416, 0.904578,
        0.92063, 0.936088, 0.95214, 0.968193, 0.98365, 0.999703
    ],
    "popularity_shares": [
        9.80606, 8.56138, 8.54456, 8.52774, 8.1577, 8.09042, 8.03996, 7.60264, 7.24942, 7.21578, 7.0644,
        6.94666, 6.59344, 6.5598, 6.35796, 6.1393, 5.887, 5.65152, 5.44968, 5.31512, 5.06282, 5.01236,
        4.9619, 4.92826, 4.7096, 4.57504, 4.50776, 4.35638, 4.22182, 4.10408, 3.96952, 3.73404, 3.66676,
        3.51538, 3.49856, 3.2799, 3.09488, 3.06124, 2.92668, 2.87622, 2.84258, 2.6912, 2.65756, 2.48936,
        2.4389, 2.28752, 2.1866, 2.13614, 2.08568, 2.00158, 1.9343, 1.78292, 1.74928, 1.61472, 1.61472,
        1.5138, 1.44652, 1.39606, 1.31196, 1.29514, 1.21104, 1.12694, 1.12694, 1.07648, 1.0092, 1.0092,
        0.95874, 0.87464, 0.85782, 0.80736, 0.7569, 0.74008, 0.72326, 0.68962, 0.65598, 0.63916, 0.5887,
        0.53824, 0.5046, 0.48778, 0.45414, 0.43732, 0.40368, 0.37004, 0.37004, 0.3364, 0.30276, 0.28594,
        0.26912, 0.2523, 0.23548, 0.21866, 0.20184, 0.18502, 0.1682, 0.1682, 0.15138, 0.13456, 0.11774,
        0.11774, 0.11774, 0.10092, 0.0841, 0.0841, 0.06728, 0.06728, 0.06728, 0.05046, 0.05046, 0.05046,
        0.03364, 0.03364, 0.03364, 0.01682, 0.01682, 0.01682, 0.01682, 0.01682, 0.01682
    ],
    "rating_values": [1.0, 2.0, 3.0, 4.0, 5.0],
    "rating_probs": [0.0611, 0.1137, 0.27145, 0.34174, 0.21201],
    "time_min": 874724710,
    "time_max": 893286638,
    "time_start_quantiles": [
        0.0, 0.0289439, 0.0669198, 0.12183, 0.189486, 0.249461, 0.254662, 0.269787, 0.291111, 0.333353,
        0.409033, 0.47029, 0.513071, 0.575622, 0.634198, 0.727615, 0.789929, 0.878643, 0.892378, 0.903601,
        0.999974
    ],
    "time_span_quantiles": [
        6.46485e-06, 2.30041e-05, 2.86608e-05, 3.762e-05, 4.64715e-05, 5.69445e-05, 6.65233e-05,
        7.98247e-05, 9.49363e-05, 0.000124831, 0.00015952, 0.000228478, 0.000396715, 0.00140532, 0.009271,
        0.039861, 0.126514, 0.275654, 0.506349, 0.739253, 0.989261
    ],
}
# fmt: on
