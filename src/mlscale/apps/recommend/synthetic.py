"""Synthetic interaction logs at any scale, calibrated on a real data set.

An :class:`~mlscale.apps.recommend.profile.InteractionProfile` holds the shape
of a real log (activity per user, popularity by rank, ratings, activity in
time, the users : items : rows ratios); :func:`generate` streams a log of any
length (1e3 to 1e9 rows) with that shape as Arrow record batches of ``user
int64, item int64, rating float32, timestamp int64``;
:func:`mlscale.data.writers.write_parquet` and
:func:`mlscale.data.writers.write_csv` stream them to disk. Memory is
O(users + items) for the per-user and per-item tables plus O(chunk) for the
rows; it does not grow with ``rows``.

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

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mlscale.apps.recommend import _profile
from mlscale.apps.recommend.profile import InteractionProfile, default_profile
from mlscale.data.readers import interaction_schema
from mlscale.errors import ValidationError

__all__ = ["SCHEMA", "default_sizes", "generate"]

#: The schema of every generated batch.
SCHEMA: pa.Schema = interaction_schema(pa.int64())

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
