"""Synthetic interaction logs at any scale, calibrated on a real data set.

An :class:`InteractionProfile` holds the shape of a real log: how many
interactions each user has (a quantile function with a Pareto tail), how
popularity falls off with item rank, the rating distribution, when users are
active, and the users : items : rows ratios. :meth:`InteractionProfile.fit`
measures it from a table; :func:`default_profile` is the one fitted from
MovieLens-100k, kept as constants so nothing needs downloading.

:func:`generate` streams a log of any length (1e3 to 1e9 rows) with that
shape as Arrow record batches of ``user int64, item int64, rating float32,
timestamp int64``; :func:`write_parquet` and :func:`write_csv` stream them to
disk. Memory is O(users + items) for the per-user and per-item tables plus
O(chunk) for the rows; it does not grow with ``rows``.

The log has structure a recommender can learn (so it beats a popularity
baseline): items belong to one of ``genres`` latent genres and each user
prefers a few neighbouring genres; a share ``focus`` of a user's
interactions come from those genres, the rest from the other genres, and
within either the items are drawn by popularity, without repeats (stratified
sampling of the popularity curve). Heavy users prefer more genres, as
omnivores do. A pilot run corrects the popularity weights so that the
realised item popularity, after that saturation, has the fitted curve.
Ratings follow the fitted distribution and carry an item effect and a user
effect; timestamps fall in each user's active window.

Layout, like the MovieLens ``ratings`` files: rows are grouped by user in
ascending user id, and each user's rows are in time order. Ids start at 1.
A user never has the same item twice unless they have more interactions than
the catalogue can supply (then repeats are kept, so the row count is exact).

Determinism: the rows depend only on the profile, ``rows``, ``seed``,
``users``, ``items``, ``genres`` and ``focus`` (and the mlscale version),
not on ``chunk_rows``: random streams belong to fixed blocks of users.

>>> profile = default_profile()
>>> batches = list(generate(profile, 1000, seed=7, chunk_rows=400))
>>> [b.num_rows for b in batches]
[400, 400, 200]
>>> batches[0].schema.names
['user', 'item', 'rating', 'timestamp']
"""

from __future__ import annotations

import contextlib
import gzip as _gzip
import json
import math
import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm import tqdm

from mlscale.data import _profile
from mlscale.data.readers import interaction_schema
from mlscale.errors import DataError, DataFormatError, ValidationError

__all__ = [
    "SCHEMA",
    "InteractionProfile",
    "default_profile",
    "default_sizes",
    "generate",
    "write_csv",
    "write_parquet",
]

#: The schema of every generated batch.
SCHEMA: pa.Schema = interaction_schema(pa.int64())

_FORMAT = "mlscale.interaction-profile"
_VERSION = 1
#: Exponents of the default scaling: users ~ rows**0.9, items ~ rows**0.6.
_USER_EXPONENT = 0.9
_ITEM_EXPONENT = 0.6
#: Rows per generation block. Blocks, not chunks, own the random streams, so
#: the output does not depend on ``chunk_rows``.
_BLOCK_ROWS = 1 << 17
#: Resolution of the inverse popularity CDF table.
_TABLE_CELLS = 1 << 16
#: A user prefers enough genres that their focused rows take at most this
#: share of those genres' items (heavy users like more genres).
_GENRE_SATURATION = 0.25
#: A prime above any user's row count: scrambles rows into time order.
_TIME_PRIME = 2_147_483_647
#: Calibration pilot: rows, rounds and rank bands (see _calibrate).
_PILOT_ROWS = 1 << 19
_CALIBRATION_ROUNDS = 2
_PILOT_BANDS = 48
#: Resolution of the rating lookup table.
_RATING_CELLS = 1 << 16
#: Share of ratings set by the item's and by the user's own level.
_RATING_ITEM_SHARE = 0.35
_RATING_USER_SHARE = 0.25

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def _floats(value: Any, name: str) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError("expected a non-empty list of numbers", field=name)
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValidationError("expected a list of numbers", field=name) from None


@dataclass(frozen=True, slots=True)
class InteractionProfile:
    """The shape of an interaction log, fitted from real data; see :meth:`fit`.

    Sizes (``n_rows``, ``n_users``, ``n_items``) are those of the source and
    set the users : items : rows ratios. ``activity_*`` describe interactions
    per user: quantile values at ``activity_probs`` (up to
    ``activity_tail_p``), a Pareto tail of exponent ``activity_tail_alpha``
    above it, and the largest user as a share of the catalogue.
    ``popularity_shares`` give an item's interactions over the mean item's at
    normalised ranks ``popularity_ranks``. ``rating_values``/``rating_probs``
    are the rating pmf. Times are Unix seconds: the log spans
    ``time_min..time_max`` and ``time_start_quantiles``/``time_span_quantiles``
    give each user's first time and active span as fractions of that range.

    >>> p = default_profile()
    >>> p.n_users, p.n_items, p.rating_values
    (943, 1682, (1.0, 2.0, 3.0, 4.0, 5.0))
    >>> InteractionProfile.from_json(p.to_json()) == p
    True
    """

    name: str
    n_rows: int
    n_users: int
    n_items: int
    activity_probs: tuple[float, ...]
    activity_values: tuple[float, ...]
    activity_tail_p: float
    activity_tail_alpha: float
    activity_max_fraction: float
    popularity_ranks: tuple[float, ...]
    popularity_shares: tuple[float, ...]
    rating_values: tuple[float, ...]
    rating_probs: tuple[float, ...]
    time_min: int
    time_max: int
    time_start_quantiles: tuple[float, ...]
    time_span_quantiles: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("n_rows", "n_users", "n_items"):
            if getattr(self, name) < 1:
                raise ValidationError(f"expected a whole number >= 1, got {getattr(self, name)!r}", field=name)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple | float) and not np.all(np.isfinite(value)):
                raise ValidationError("expected finite numbers (no NaN or infinity)", field=f.name)
        if len(self.activity_probs) != len(self.activity_values) or len(self.activity_probs) < 2:
            raise ValidationError("activity_probs and activity_values need the same length >= 2")
        if np.any(np.diff(self.activity_probs) <= 0) or min(self.activity_values) <= 0:
            raise ValidationError("expected increasing probabilities and positive counts", field="activity_probs")
        if not 0.0 < self.activity_tail_p < 1.0 or self.activity_tail_alpha <= 1.0:
            raise ValidationError("expected 0 < activity_tail_p < 1 and activity_tail_alpha > 1")
        if len(self.popularity_ranks) != len(self.popularity_shares) or min(self.popularity_shares) <= 0:
            raise ValidationError("popularity_ranks and popularity_shares need the same length and positive shares")
        if np.any(np.diff(self.popularity_ranks) <= 0):
            raise ValidationError("expected increasing normalised ranks", field="popularity_ranks")
        if len(self.rating_values) != len(self.rating_probs) or min(self.rating_probs) < 0:
            raise ValidationError("rating_values and rating_probs need the same length, probs >= 0")
        if not math.isclose(sum(self.rating_probs), 1.0, abs_tol=1e-4):
            raise ValidationError(
                f"expected probabilities summing to 1, got {sum(self.rating_probs)}", field="rating_probs"
            )
        if self.time_max < self.time_min:
            raise ValidationError("expected time_min <= time_max", field="time_max")
        for name in ("time_start_quantiles", "time_span_quantiles"):
            q = getattr(self, name)
            if len(q) != len(_profile.TIME_PROBS) or np.any(np.diff(q) < 0) or min(q) < 0 or max(q) > 1:
                raise ValidationError(
                    f"expected {len(_profile.TIME_PROBS)} non-decreasing fractions in [0, 1]", field=name
                )

    @classmethod
    def fit(cls, table: pa.Table, *, name: str = "custom") -> InteractionProfile:
        """Measure the profile of a log: columns ``user``, ``item``, optional ``rating``, ``timestamp``.

        Ids may be of any type. Without ``rating`` every rating is 1.0 (implicit
        feedback); without ``timestamp`` the time model of the default profile
        is used.
        """
        missing = [c for c in ("user", "item") if c not in table.column_names]
        if missing:
            raise DataFormatError(
                f"missing column(s) {', '.join(missing)}; found {', '.join(table.column_names) or 'none'}",
                hint="the log needs columns user and item (rating and timestamp are optional)",
            )
        table = table.filter(pc.and_(pc.is_valid(table["user"]), pc.is_valid(table["item"])))
        if table.num_rows == 0:
            raise DataError("cannot fit a profile to an empty log (no rows with both user and item)")
        has_time = "timestamp" in table.column_names and table["timestamp"].null_count < table.num_rows
        if has_time:
            ts = table["timestamp"]
            if pa.types.is_timestamp(ts.type):
                ts = pc.cast(pc.cast(ts, pa.timestamp("s")), pa.int64())
            elif not pa.types.is_integer(ts.type) and not pa.types.is_floating(ts.type):
                raise DataFormatError(f"column timestamp has type {ts.type}; expected Unix seconds or a timestamp")
            table = table.set_column(table.column_names.index("timestamp"), "timestamp", pc.cast(ts, pa.int64()))
            per_user = table.group_by("user").aggregate([("item", "count"), ("timestamp", "min"), ("timestamp", "max")])
        else:
            per_user = table.group_by("user").aggregate([("item", "count")])
        user_counts = per_user["item_count"].to_numpy()
        item_counts = pc.value_counts(table["item"]).field("counts").to_numpy()
        probs, values, alpha = _profile.fit_activity(user_counts)
        ranks, shares = _profile.fit_popularity(item_counts)
        rating_values, rating_probs = _fit_ratings(table)
        if has_time:
            first = per_user["timestamp_min"].to_numpy(zero_copy_only=False).astype(np.float64)
            last = per_user["timestamp_max"].to_numpy(zero_copy_only=False).astype(np.float64)
            ok = ~np.isnan(first)
            t0, t1 = int(np.min(first[ok])), int(np.max(last[ok]))
            span = max(t1 - t0, 1)
            starts = _profile.rounded(np.quantile((first[ok] - t0) / span, _profile.TIME_PROBS))
            spans = _profile.rounded(np.quantile((last[ok] - first[ok]) / span, _profile.TIME_PROBS))
        else:
            base = default_profile()
            t0, t1 = base.time_min, base.time_max
            starts, spans = list(base.time_start_quantiles), list(base.time_span_quantiles)
        n_items = len(item_counts)
        return cls(
            name=name,
            n_rows=table.num_rows,
            n_users=len(user_counts),
            n_items=n_items,
            activity_probs=tuple(probs),
            activity_values=tuple(values),
            activity_tail_p=_profile.ACTIVITY_TAIL_P,
            activity_tail_alpha=alpha,
            activity_max_fraction=_profile.rounded([min(1.0, float(user_counts.max()) / n_items)])[0],
            popularity_ranks=tuple(ranks),
            popularity_shares=tuple(shares),
            rating_values=tuple(rating_values),
            rating_probs=tuple(rating_probs),
            time_min=t0,
            time_max=t1,
            time_start_quantiles=tuple(starts),
            time_span_quantiles=tuple(spans),
        )

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain JSON-ready values, with a format tag and version."""
        out: dict[str, Any] = {"format": _FORMAT, "version": _VERSION}
        for key, value in asdict(self).items():
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InteractionProfile:
        """Rebuild a profile from :meth:`to_dict` output; unknown keys are refused."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValidationError(f'not an interaction profile (expected "format": "{_FORMAT}")')
        if data.get("version") != _VERSION:
            raise ValidationError(f"unsupported profile version {data.get('version')!r}; expected {_VERSION}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names - {"format", "version"})
        absent = sorted(names - set(data))
        if unknown or absent:
            raise ValidationError(
                "profile keys do not match"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(absent)}" if absent else "")
            )
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            value = data[f.name]
            if f.name == "name":
                kwargs[f.name] = str(value)
            elif f.name in ("n_rows", "n_users", "n_items", "time_min", "time_max"):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValidationError(f"expected a whole number, got {value!r}", field=f.name)
                kwargs[f.name] = value
            elif f.name in ("activity_tail_p", "activity_tail_alpha", "activity_max_fraction"):
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValidationError(f"expected a number, got {value!r}", field=f.name)
                kwargs[f.name] = float(value)
            else:
                kwargs[f.name] = _floats(value, f.name)
        return cls(**kwargs)

    def to_json(self) -> str:
        """The profile as a small JSON document (no pickle)."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> InteractionProfile:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"invalid JSON: {err.msg}", line=err.lineno) from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_json` to ``path`` (atomically) and return it."""
        out = Path(path)
        tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        tmp.replace(out)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> InteractionProfile:
        """Read a profile saved by :meth:`save`."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"{p}: no such profile file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise DataFormatError(f"cannot read profile: {err}", path=str(p)) from None
        try:
            return cls.from_json(text)
        except DataFormatError as err:
            raise DataFormatError(err.reason, path=str(p), line=err.line) from None
        except ValidationError as err:
            raise DataFormatError(str(err), path=str(p), hint="write profiles with InteractionProfile.save") from None


def _fit_ratings(table: pa.Table) -> tuple[list[float], list[float]]:
    if "rating" not in table.column_names or table["rating"].null_count == table.num_rows:
        return [1.0], [1.0]
    rating = table["rating"]
    if not pa.types.is_integer(rating.type) and not pa.types.is_floating(rating.type):
        raise DataFormatError(f"column rating has type {rating.type}; expected numbers")
    r = pc.drop_null(rating).to_numpy().astype(np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return [1.0], [1.0]
    values, counts = np.unique(r, return_counts=True)
    if values.size > 64:
        # Continuous scores: keep 64 equally likely quantiles rather than every value.
        return _profile.rounded(np.quantile(r, (np.arange(64) + 0.5) / 64)), [1.0 / 64] * 64
    return _profile.rounded(values), _profile.rounded(counts / counts.sum())


def default_profile() -> InteractionProfile:
    """The profile fitted from MovieLens-100k (stored in the package as constants)."""
    return InteractionProfile.from_dict(_profile.MOVIELENS_100K)


def _check_count(value: object, name: str, minimum: int = 1) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise ValidationError(f"expected a whole number >= {minimum}, got {value!r}", field=name)
    return int(value)


def default_sizes(profile: InteractionProfile, rows: int) -> tuple[int, int]:
    """Users and items for a log of ``rows`` rows shaped like ``profile``.

    Both grow sub-linearly with ``rows`` from the profile's source:
    ``users = n_users * (rows / n_rows) ** 0.9`` (so interactions per user
    rise slowly, as in larger real logs) and ``items = n_items * (rows /
    n_rows) ** 0.6``. For MovieLens-100k that gives about 60k users and 27k
    items at 10M rows, 470k users and 106k items at 100M rows, and 3.7M users
    and 420k items at 1e9 rows.

    >>> default_sizes(default_profile(), 100_000)
    (943, 1682)
    >>> default_sizes(default_profile(), 10_000_000)
    (59499, 26658)
    """
    rows = _check_count(rows, "rows")
    scale = rows / profile.n_rows
    users = max(1, min(rows, round(profile.n_users * scale**_USER_EXPONENT)))
    items = max(1, round(profile.n_items * scale**_ITEM_EXPONENT))
    return users, items


@dataclass(frozen=True, slots=True)
class _Plan:
    """Per-user and per-item tables shared by all blocks: O(users + items)."""

    seed: int
    n_items: int
    genres: int
    focus: float
    per_genre: float
    counts: I64
    bounds: I64
    row_starts: I64
    table_base: F64
    table_slope: F64
    n_brackets: int
    item_ids: I64
    item_cell: npt.NDArray[np.uint16]
    rating_table: npt.NDArray[np.float32]
    time_min: int
    time_range: int
    start_q: F64
    span_q: F64


def _user_counts(profile: InteractionProfile, rows: int, n_users: int, n_items: int, rng: np.random.Generator) -> I64:
    # Stratified quantiles reproduce the fitted shape with far less noise than
    # iid draws; the permutation then gives activity to user ids at random.
    p = (np.arange(n_users, dtype=np.float64) + 0.5) / n_users
    x = _profile.activity_quantile(
        p,
        np.asarray(profile.activity_probs),
        np.asarray(profile.activity_values),
        profile.activity_tail_p,
        profile.activity_tail_alpha,
    )
    x = x[rng.permutation(n_users)]
    cap = float(max(math.floor(profile.activity_max_fraction * n_items), math.ceil(rows / n_users), 1))
    # Water-filling: scale so that sum(min(c * x, cap)) == rows.
    c = rows / float(x.sum())
    n_capped = -1
    for _ in range(200):
        capped = c * x >= cap
        k = int(capped.sum())
        if k == n_capped:
            break
        n_capped = k
        free = float(x[~capped].sum())
        if free <= 0.0:
            break
        c = (rows - cap * k) / free
    v = np.minimum(c * x, cap)
    counts = np.floor(v).astype(np.int64)
    short = rows - int(counts.sum())
    if short > 0:
        counts[np.argpartition(counts - v, short - 1)[:short]] += 1
    elif short < 0:
        counts[np.argpartition(-counts, -short - 1)[:-short]] -= 1
    return counts


def _plan(
    profile: InteractionProfile, rows: int, n_users: int, n_items: int, seed: int, genres: int, focus: float
) -> _Plan:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0,))))
    counts = _user_counts(profile, rows, n_users, n_items, rng)
    row_starts = np.concatenate([[0], np.cumsum(counts)])
    # Blocks of about _BLOCK_ROWS rows, cut at user boundaries.
    marks = np.arange(_BLOCK_ROWS, rows, _BLOCK_ROWS, dtype=np.int64)
    cuts = np.searchsorted(row_starts[1:], marks, side="right") + 1
    bounds = np.unique(np.concatenate([[0], np.minimum(cuts, n_users), [n_users]]))
    # Popularity rank r sits in bracket r // k and genre r % k: every genre
    # gets one item of each popularity level, so genres are equally popular
    # and drawing (bracket, genre) keeps the fitted popularity curve. The
    # n_items % k least popular items (a partial bracket) are never drawn.
    k = min(genres, n_items)
    n_brackets = n_items // k
    weights = _profile.popularity_weights(
        n_items, np.asarray(profile.popularity_ranks), np.asarray(profile.popularity_shares)
    )
    target = weights[: n_brackets * k].reshape(n_brackets, k).sum(axis=1)
    item_ids = rng.permutation(n_items).astype(np.int64) + 1
    item_cell = rng.integers(0, _RATING_CELLS, n_items, dtype=np.uint16)
    # Rating of each of _RATING_CELLS equal slices of [0, 1): a lookup replaces a search.
    rating_probs = np.asarray(profile.rating_probs, dtype=np.float64)
    rating_cdf = np.cumsum(rating_probs / rating_probs.sum())
    mid = (np.arange(_RATING_CELLS) + 0.5) / _RATING_CELLS
    pick = np.minimum(np.searchsorted(rating_cdf, mid, side="right"), rating_probs.size - 1)
    base, slope = _inverse_cdf(target)
    plan = _Plan(
        seed=seed,
        n_items=n_items,
        genres=k,
        focus=focus,
        per_genre=_GENRE_SATURATION * n_items / k,
        counts=counts,
        bounds=bounds.astype(np.int64),
        row_starts=row_starts.astype(np.int64),
        table_base=base,
        table_slope=slope,
        n_brackets=n_brackets,
        item_ids=item_ids,
        item_cell=item_cell,
        rating_table=np.asarray(profile.rating_values, dtype=np.float32)[pick],
        time_min=profile.time_min,
        time_range=profile.time_max - profile.time_min,
        start_q=np.asarray(profile.time_start_quantiles),
        span_q=np.asarray(profile.time_span_quantiles),
    )
    return _calibrate(plan, target)


def _inverse_cdf(weights: F64) -> tuple[F64, F64]:
    """Inverse CDF of bracket weights as a lookup table: O(1) sampling.

    At ``t = u * _TABLE_CELLS`` the continuous bracket index is
    ``base[int(t)] + t * slope[int(t)]`` (linear within each cell).
    """
    cdf = np.concatenate([[0.0], np.cumsum(weights)])
    cdf /= cdf[-1]
    cells = np.linspace(0.0, 1.0, _TABLE_CELLS + 1)
    at = np.interp(cells, cdf, np.arange(weights.size + 1, dtype=np.float64))
    slope = np.diff(at)
    base = at[:-1] - np.arange(_TABLE_CELLS) * slope
    return base, slope


def _calibrate(plan: _Plan, target: F64) -> _Plan:
    """Correct the sampling weights so that the realised popularity has the fitted curve.

    A user takes an item at most once, so the most popular items saturate and
    drawing by the fitted shares alone under-produces the head (most at small
    scale, where users see a large part of the catalogue). A pilot run of the
    first blocks (the same random streams as the real run) measures the
    realised popularity per band of ranks and scales the weights by
    target / realised; two rounds suffice.
    """
    n_br = plan.n_brackets
    pilot = int(np.searchsorted(plan.row_starts[plan.bounds[1:]], _PILOT_ROWS)) + 1
    pilot = min(pilot, len(plan.bounds) - 1)
    edges = np.unique(np.concatenate([[0], np.geomspace(1, n_br, _PILOT_BANDS).astype(np.int64)]))
    edges = edges[edges < n_br]
    band = np.repeat(np.arange(edges.size), np.diff(np.append(edges, n_br)))
    want = np.add.reduceat(target, edges)
    want /= want.sum()
    weights = target.copy()
    for _ in range(_CALIBRATION_ROUNDS):
        seen = np.zeros(edges.size)
        for index in range(pilot):
            brackets = _block_ranks(plan, index) // plan.genres
            seen += np.add.reduceat(np.bincount(brackets, minlength=n_br).astype(np.float64), edges)
        if seen.sum() == 0:
            break
        seen /= seen.sum()
        factor = np.where(seen > 0, want / np.maximum(seen, 1e-300), 1.0)
        weights *= np.clip(factor, 0.25, 4.0)[band]
        base, slope = _inverse_cdf(weights)
        plan = replace(plan, table_base=base, table_slope=slope)
    return plan


@dataclass(frozen=True, slots=True)
class _Users:
    """Per-user draws of one block, and the block's random stream."""

    rng: np.random.Generator
    first: int
    counts: I64
    starts: I64
    first_genre: I64
    n_genres: I64
    focused: I64


def _users(plan: _Plan, index: int) -> _Users:
    """Per-user draws of block ``index``; the block's own random stream starts here."""
    u0, u1 = int(plan.bounds[index]), int(plan.bounds[index + 1])
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(plan.seed, spawn_key=(1, index))))
    counts = plan.counts[u0:u1]
    k = plan.genres
    if plan.focus > 0.0:
        n_genres = np.clip(np.ceil(plan.focus * counts / plan.per_genre), 1, k).astype(np.int64)
    else:
        n_genres = np.zeros(counts.size, dtype=np.int64)
    # Each run must fit its genres: a user who likes all but one genre cannot
    # take hundreds of items from that one, and one who likes all has no other.
    focused = np.floor(plan.focus * counts + rng.random(counts.size)).astype(np.int64)
    focused = np.maximum(focused, counts - (k - n_genres) * plan.n_brackets)
    focused = np.minimum(focused, np.minimum(counts, n_genres * plan.n_brackets))
    focused = np.where(n_genres == k, counts, focused)
    return _Users(
        rng=rng,
        first=u0,
        counts=counts,
        starts=plan.row_starts[u0:u1] - plan.row_starts[u0],
        first_genre=rng.integers(0, k, counts.size, dtype=np.int64),
        n_genres=n_genres,
        focused=focused,
    )


def _ranks(plan: _Plan, us: _Users) -> tuple[I64, I64]:
    """Popularity ranks of a block's rows, in row order, and each row's index within its user.

    Each user's rows are two runs: ``focused`` rows from the user's genres
    ``first_genre .. first_genre + n_genres - 1`` (mod genres), then the rest
    from the other genres. Within a run, a user's catalogue is a sequence of
    slots (bracket-major, ``width`` genres per bracket) drawn by stratified
    sampling of the popularity curve, so slots come out sorted; forcing them
    to increase strictly (a running maximum) then gives every row a distinct
    item, as sampling without replacement would, with no sort and no search.
    """
    k = plan.genres
    counts = us.counts
    n = int(counts.sum())
    rep_start = np.repeat(us.starts, counts)
    local = np.arange(n, dtype=np.int64)
    local -= rep_start
    rep_focused = np.repeat(us.focused, counts)
    rep_genres = np.repeat(us.n_genres, counts)
    in_focus = local < rep_focused
    # Index within the run and the run's length.
    j = np.where(in_focus, local, local - rep_focused)
    run = np.where(in_focus, rep_focused, np.repeat(counts, counts) - rep_focused)
    x = us.rng.random(n)
    x += j
    x /= run
    # Continuous bracket position from the inverse-CDF table.
    t = x * _TABLE_CELLS
    cell = t.astype(np.int64)
    t *= plan.table_slope[cell]
    t += plan.table_base[cell]
    width = np.where(in_focus, rep_genres, k - rep_genres)
    slot = (t * width).astype(np.int64)
    # Strictly increasing slots within each run: s'[j] = max(s[j], s'[j-1] + 1).
    run_id = np.repeat(np.arange(counts.size, dtype=np.int64) * 2, counts)
    run_id += ~in_focus
    run_id <<= 36
    slot -= j
    slot += run_id
    np.maximum.accumulate(slot, out=slot)
    slot -= run_id
    slot += j
    # Leave room for the run's remaining rows: s'[j] <= slots - run + j keeps
    # the slots distinct and in range whenever the run fits in the catalogue.
    slots = width * plan.n_brackets
    room = slots - run
    room += j
    np.minimum(slot, room, out=slot)
    np.clip(slot, 0, slots - 1, out=slot)
    bracket = ((slot + 0.5) / width).astype(np.int64)
    genre = slot - bracket * width
    genre += np.repeat(us.first_genre, counts)
    genre += np.where(in_focus, 0, rep_genres)
    genre %= k
    bracket *= k
    bracket += genre
    return bracket, local


def _block_ranks(plan: _Plan, index: int) -> I64:
    """Only the popularity ranks of block ``index`` (for calibration)."""
    return _ranks(plan, _users(plan, index))[0]


def _block(plan: _Plan, index: int) -> tuple[I64, I64, npt.NDArray[np.float32], I64]:
    us = _users(plan, index)
    rng = us.rng
    counts = us.counts
    nb = counts.size
    ranks, local = _ranks(plan, us)
    n = ranks.size
    span = np.interp(rng.random(nb), _profile.TIME_PROBS, plan.span_q)
    start = np.minimum(np.interp(rng.random(nb), _profile.TIME_PROBS, plan.start_q), 1.0 - span)
    user_cell = rng.integers(0, _RATING_CELLS, nb, dtype=np.uint16)
    shift = np.floor(rng.random(nb) * counts).astype(np.int64)

    # Put each user's rows in time order: row j of a user with c rows is the
    # (j * P + shift) mod c -th in time, P a prime above c (so a permutation),
    # which scrambles the popularity order of the runs at the cost of one
    # scatter. Beyond 2**31 rows a user (absurd, but int64 must not overflow)
    # gets a rotation.
    rep_counts = np.repeat(counts, counts)
    step = np.where(counts > _TIME_PRIME, 1, _TIME_PRIME % np.maximum(counts, 1))
    mixed = local * np.repeat(step, counts)
    mixed += np.repeat(shift, counts)
    np.remainder(mixed, rep_counts, out=mixed)
    mixed += np.repeat(us.starts, counts)
    ordered = np.empty_like(ranks)
    ordered[mixed] = ranks
    ranks = ordered

    # Ratings: a share of rows take the item's level, a share the user's, the
    # rest a fresh one; each part is uniform, so the rating pmf is kept.
    which = rng.random(n, dtype=np.float32)
    cell = rng.integers(0, _RATING_CELLS, n, dtype=np.uint16)
    a, b = np.float32(_RATING_ITEM_SHARE), np.float32(_RATING_ITEM_SHARE + _RATING_USER_SHARE)
    np.copyto(cell, plan.item_cell[ranks], where=which < a)
    np.copyto(cell, np.repeat(user_cell, counts), where=(which >= a) & (which < b))
    rating = plan.rating_table[cell]

    # Times: stratified within each user's active window, so already sorted.
    when = rng.random(n)
    when += local
    when /= rep_counts
    when *= np.repeat(span, counts)
    when += np.repeat(start, counts)
    when *= plan.time_range
    timestamp = when.astype(np.int64)
    timestamp += plan.time_min
    user = np.repeat(np.arange(us.first + 1, us.first + nb + 1, dtype=np.int64), counts)
    return user, plan.item_ids[ranks], rating, timestamp


def _batch(cols: tuple[I64, I64, npt.NDArray[np.float32], I64]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(c) for c in cols], schema=SCHEMA)


def _stream(plan: _Plan, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    pending: list[tuple[I64, I64, npt.NDArray[np.float32], I64]] = []
    held = 0
    for index in range(len(plan.bounds) - 1):
        part = _block(plan, index)
        if part[0].size == 0:
            continue
        pending.append(part)
        held += part[0].size
        if held < chunk_rows:
            continue
        cols = pending[0] if len(pending) == 1 else tuple(np.concatenate(c) for c in zip(*pending, strict=True))
        start = 0
        while held - start >= chunk_rows:
            yield _batch(tuple(c[start : start + chunk_rows] for c in cols))  # type: ignore[arg-type]
            start += chunk_rows
        pending = [tuple(c[start:] for c in cols)] if start < held else []  # type: ignore[list-item]
        held -= start
    if held:
        cols = pending[0] if len(pending) == 1 else tuple(np.concatenate(c) for c in zip(*pending, strict=True))
        yield _batch(cols)  # type: ignore[arg-type]


def generate(
    profile: InteractionProfile | None,
    rows: int,
    *,
    seed: int = 0,
    users: int | None = None,
    items: int | None = None,
    chunk_rows: int = 1_000_000,
    genres: int = 16,
    focus: float = 0.6,
) -> Iterator[pa.RecordBatch]:
    """Stream a synthetic log of exactly ``rows`` rows shaped like ``profile``.

    ``profile`` None means :func:`default_profile`. ``users`` and ``items``
    default to :func:`default_sizes`. Batches have :data:`SCHEMA` and exactly
    ``chunk_rows`` rows, except the last. The same arguments give the same
    rows whatever ``chunk_rows`` is. ``genres`` (latent genres) and ``focus``
    (the share of a user's interactions from their preferred genres; the rest
    come from the other genres) set how much there is to learn beyond
    popularity; ``focus=0`` gives a pure popularity log.

    Memory is O(users + items) for the per-user and per-item tables and
    O(chunk_rows + 131072) for the rows (about 200 bytes a row for 131072 rows at a
    time while generating, 28 bytes a row for a chunk); it can stream 1e9 rows.

    >>> batches = list(generate(None, 1000, seed=3))
    >>> sum(b.num_rows for b in batches), batches[0].schema.field("rating").type
    (1000, DataType(float))
    """
    prof = default_profile() if profile is None else profile
    rows = _check_count(rows, "rows")
    seed = _check_count(seed, "seed", 0)
    chunk_rows = _check_count(chunk_rows, "chunk_rows")
    genres = _check_count(genres, "genres")
    if not isinstance(focus, int | float) or isinstance(focus, bool) or not 0.0 <= focus <= 1.0:
        raise ValidationError(f"expected a number in [0, 1], got {focus!r}", field="focus")
    default_users, default_items = default_sizes(prof, rows)
    n_users = default_users if users is None else _check_count(users, "users")
    n_items = default_items if items is None else _check_count(items, "items")
    plan = _plan(prof, rows, n_users, n_items, seed, genres, float(focus))
    return _stream(plan, chunk_rows)


def _progress(progress: bool, total: int | None) -> tqdm[Any]:
    return tqdm(total=total, unit="rows", unit_scale=True, file=sys.stderr, disable=not progress, dynamic_ncols=True)


def _temp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def write_parquet(
    batches: Iterable[pa.RecordBatch],
    out_dir: str | os.PathLike[str],
    *,
    rows_per_file: int = 10_000_000,
    compression: str = "snappy",
    overwrite: bool = False,
    progress: bool = False,
    total: int | None = None,
) -> list[Path]:
    """Stream batches into ``out_dir/part-00000.parquet``, ``part-00001.parquet`` ...

    Each file holds ``rows_per_file`` rows (the last fewer), one row group per
    batch. Files are written into a temporary folder next to ``out_dir`` that
    is renamed into place only when every file is complete, so a crash never
    leaves a half-written data set. An existing ``out_dir`` is refused unless
    ``overwrite``. ``progress`` shows a bar on stderr (``total``: expected rows).
    Returns the final paths.
    """
    rows_per_file = _check_count(rows_per_file, "rows_per_file")
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ValidationError(f"{out} already exists", field="out_dir", hint="remove it or pass overwrite=True")
    if not out.parent.is_dir():
        raise ValidationError(f"folder {out.parent} does not exist", field="out_dir")
    tmp = _temp_sibling(out)
    tmp.mkdir()
    names: list[str] = []
    writer: pq.ParquetWriter | None = None
    in_file = 0
    try:
        with _progress(progress, total) as bar:
            for batch in batches:
                offset = 0
                while offset < batch.num_rows:
                    if writer is None:
                        names.append(f"part-{len(names):05d}.parquet")
                        writer = pq.ParquetWriter(tmp / names[-1], batch.schema, compression=compression)
                        in_file = 0
                    take = min(batch.num_rows - offset, rows_per_file - in_file)
                    writer.write_batch(batch.slice(offset, take))
                    offset += take
                    in_file += take
                    if in_file >= rows_per_file:
                        writer.close()
                        writer = None
                bar.update(batch.num_rows)
        if writer is not None:
            writer.close()
            writer = None
        if out.exists():
            trash = _temp_sibling(out)
            out.rename(trash)
            tmp.rename(out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        if writer is not None:
            # Closing flushes, which fails again on a full disk: the folder goes all the same.
            with contextlib.suppress(Exception):
                writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / name for name in names]


def write_csv(
    batches: Iterable[pa.RecordBatch],
    path: str | os.PathLike[str],
    *,
    sep: str = ",",
    header: bool = True,
    gzip: bool = False,
    compresslevel: int = 1,
    overwrite: bool = False,
    progress: bool = False,
    total: int | None = None,
) -> Path:
    """Stream batches into one delimited text file (gzip-compressed if ``gzip``).

    The header line is the column names. Compression defaults to gzip level 1:
    several times faster than the usual 6 for a file about 15% larger. The
    file is written next to ``path`` under a temporary name and renamed when
    complete. An existing ``path`` is refused unless ``overwrite``. Returns
    ``path``.
    """
    if len(sep) != 1 or sep in '"\r\n':
        raise ValidationError(f"expected one character other than a quote or newline, got {sep!r}", field="sep")
    if not 0 <= compresslevel <= 9:
        raise ValidationError(f"expected 0..9, got {compresslevel!r}", field="compresslevel")
    out = Path(path)
    if out.exists() and not overwrite:
        raise ValidationError(f"{out} already exists", field="path", hint="remove it or pass overwrite=True")
    if not out.parent.is_dir():
        raise ValidationError(f"folder {out.parent} does not exist", field="path")
    tmp = _temp_sibling(out)
    options = pacsv.WriteOptions(
        include_header=header, batch_size=1 << 16, delimiter=sep, quoting_style="needed", quoting_header="none"
    )
    try:
        # Python's gzip rather than Arrow's gzip stream, which measured 3x slower at
        # the same level (pyarrow 26).
        with _gzip.open(tmp, "wb", compresslevel=compresslevel) if gzip else tmp.open("wb") as sink:
            writer: pacsv.CSVWriter | None = None
            with _progress(progress, total) as bar:
                for batch in batches:
                    if writer is None:
                        writer = pacsv.CSVWriter(sink, batch.schema, write_options=options)
                    writer.write_batch(batch)
                    bar.update(batch.num_rows)
            if writer is None:
                writer = pacsv.CSVWriter(sink, SCHEMA, write_options=options)
            writer.close()
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
