"""Beaconing evidence: series of flows from one source to one service that repeat like a clock.

A *series* is every flow with the same key (source IP, destination IP,
destination port, protocol). Command-and-control implants call home at a
steady period with messages of the same size, so their series show

- **regular intervals**: the share of inter-arrival times within
  ``tolerance`` (10%) of the series' median interval (none when that
  median is under ``min_interval_s``, 1 s: a burst of parallel connections); the explanation gives
  the mean and standard deviation of those regular intervals (exact: each
  bin keeps its sum and sum of squares) and the table also the median
  absolute deviation (MAD) of all intervals;
- **near-identical sizes**: the share of flows whose bytes (both directions)
  fall in the modal size bin or its neighbours (1/16-octave bins, so
  "near-identical" means within about 9%).

Busy but irregular hosts (browsing, DNS lookups) have spread-out intervals
and varied sizes and score low.

**Streaming, bounded memory.** Flows are cut into time windows
(``window_s``, default one hour, by start time). Within a window each
series' flows are sorted by time and their intervals binned; what is kept
across windows is only, per series, the number of flows, the first and last
time and two sparse histograms (intervals in 1/64-octave bins, about 1.1%
wide; sizes in 1/16-octave bins). Memory grows with the distinct (series,
bin) pairs, not with the flows; a window is processed when the log has
moved ``grace_windows`` (1) windows past it (so flows written up to one
window late, as Zeek writes long connections at their end, still land in
their window; a flow later than that is counted apart from its window).
Intervals across a window boundary are not counted: periods much longer
than the window are not measured. The Spark engine (:func:`spark_beacons`)
computes the same histograms with the same function per series and window,
then the same features: both engines give the same numbers.

**The score.** ``beacon = confidence * (interval_share + size_share) / 2``
in [0, 1], with ``confidence = 1 - exp(-(flows - 1) / 8)`` (a series of 5
flows is weak evidence, one of 40 strong) and 0 below ``min_flows``.
Destinations that are multicast, broadcast or link-local (``224.0.0.0/4``,
``255.255.255.255``, ``x.x.x.255``, ``169.254/16``, ``ff00::/8``,
``fe80::/10``) get no beacon evidence: service discovery and neighbour
solicitation are periodic by design and a command-and-control server is
never there.

>>> import numpy as np, pyarrow as pa
>>> t0 = 1_700_000_000_000_000
>>> ts = t0 + np.arange(40) * 60_000_000 + np.random.default_rng(0).integers(-300_000, 300_000, 40)
>>> flows = pa.table({"ts": pa.array(ts).cast(pa.timestamp("us")), "src_ip": ["10.0.0.5"] * 40,
...     "dst_ip": ["203.0.113.9"] * 40, "dst_port": pa.array([8443] * 40, pa.int32()),
...     "proto": ["tcp"] * 40, "src_bytes": [310] * 40, "dst_bytes": [120] * 40})
>>> b = beacon_table(flows)
>>> round(b.column("beacon")[0].as_py(), 2), b.column("reason")[0].as_py()
(0.99, 'every 60.0 s +- 0.2 s to 203.0.113.9:8443/tcp for 39 min (40 flows, 100% same size)')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.errors import ValidationError

__all__ = [
    "BEACON_COLUMNS",
    "REASON_MIN",
    "BeaconConfig",
    "BeaconIndex",
    "BeaconTracker",
    "beacon_evidence",
    "beacon_table",
    "local_series",
    "series_histograms",
    "spark_beacons",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
KEY = ("src_ip", "dst_ip", "dst_port", "proto")
_KEY_TYPES = (pa.string(), pa.string(), pa.int32(), pa.string())
_MAX_ROWS = 1 << 21
#: Series with a weaker beacon score get no ``reason`` (null).
REASON_MIN = 0.1
#: Interval bins per octave (about 1.1% wide) and size bins per octave (about 4.4%).
INTERVAL_BPO = 64
SIZE_BPO = 16
_US = 1_000_000
#: Histogram kinds in :func:`series_histograms` output.
_INTERVAL, _SIZE = 0, 1
BEACON_COLUMNS = (
    "src_ip",
    "dst_ip",
    "dst_port",
    "proto",
    "flows",
    "first",
    "last",
    "interval_s",
    "interval_jitter_s",
    "interval_median_s",
    "interval_mad_s",
    "interval_share",
    "size_bytes",
    "size_share",
    "beacon",
    "reason",
)
_NON_UNICAST = r"^(22[4-9]|23\d)\.|^255\.255\.255\.255$|\.255$|^169\.254\.|^ff|^fe[89ab]"


@dataclass(frozen=True)
class BeaconConfig:
    """How series are measured (defaults chosen on synthetic beacons and validation seeds: docs/threat.md)."""

    window_s: float = 3600.0
    min_flows: int = 5
    tolerance: float = 0.10
    min_interval_s: float = 1.0
    #: Windows a flow may arrive late (by start time) and still join its window; later ones are
    #: histogrammed apart, losing the intervals to their window's other flows (Spark has no such limit).
    grace_windows: int = 1

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValidationError(f"expected seconds > 0, got {self.window_s!r}", field="beacon_window")
        if self.min_flows < 3:
            raise ValidationError(f"expected >= 3, got {self.min_flows!r}", field="beacon_min_flows")
        if self.grace_windows < 0:
            raise ValidationError(f"expected >= 0, got {self.grace_windows!r}", field="beacon_grace_windows")
        if not 0 < self.tolerance < 1:
            raise ValidationError(f"expected 0 < tolerance < 1, got {self.tolerance!r}", field="beacon_tolerance")


def _np(values: Any, dtype: Any) -> Any:
    return np.asarray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False), dtype=dtype)


def _codes(values: Any) -> tuple[I64, list[Any]]:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    enc = pc.dictionary_encode(values)
    return np.asarray(
        pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), np.int64
    ), enc.dictionary.to_pylist()


def local_series(batch: pa.RecordBatch | pa.Table) -> tuple[I64, list[tuple[Any, ...]]]:
    """Per flow, the index of its series among the batch's distinct series, and those series' keys.

    Vectorised (hashing by Arrow, one int64 code per flow); Python touches each distinct series once.
    """
    (src, src_d), (dst, dst_d), (proto, proto_d) = (
        _codes(batch.column(batch.schema.get_field_index(k))) for k in ("src_ip", "dst_ip", "proto")
    )
    port = np.asarray(_np(batch.column(batch.schema.get_field_index("dst_port")), np.int64), np.int64)
    nd, npr = len(dst_d) + 1, len(proto_d) + 1
    # At most n distinct sources and destinations in n rows: n * n * 65536 * 10 fits int64 up to n = 3M.
    code = (((src + 1) * nd + (dst + 1)) * 65536 + (port & 0xFFFF)) * npr + (proto + 1)
    # Arrow hashes the codes (no sort); each distinct code decodes back to its series' parts.
    enc = pc.dictionary_encode(pa.array(code))
    inverse = np.asarray(enc.indices.to_numpy(zero_copy_only=False), np.int64)
    uniq = np.asarray(enc.dictionary.to_numpy(zero_copy_only=False), np.int64)
    p_i = uniq % npr - 1
    rest = uniq // npr
    port_i = rest % 65536
    rest //= 65536
    d_i = rest % nd - 1
    s_i = rest // nd - 1
    keys = [
        (src_d[a] if a >= 0 else None, dst_d[b] if b >= 0 else None, c, proto_d[e] if e >= 0 else None)
        for a, b, c, e in zip(s_i.tolist(), d_i.tolist(), port_i.tolist(), p_i.tolist(), strict=True)
    ]
    return np.asarray(inverse, np.int64).ravel(), keys


class BeaconIndex:
    """A beacon table indexed by series, for scoring many batches against it (see :func:`beacon_evidence`)."""

    def __init__(self, beacons: pa.Table) -> None:
        self.table = beacons
        keys = zip(*(beacons.column(k).to_pylist() for k in KEY), strict=True)
        self._row = {key: i for i, key in enumerate(keys)}
        self._beacon = np.asarray(beacons.column("beacon").to_numpy(zero_copy_only=False), np.float64)

    def lookup(self, batch: pa.RecordBatch | pa.Table) -> tuple[F64, I64]:
        """Per flow: its series' beacon score (0 when none) and row in the table (-1)."""
        if batch.num_rows == 0 or not self._row:
            return np.zeros(batch.num_rows), np.full(batch.num_rows, -1, np.int64)
        if batch.num_rows > _MAX_ROWS:
            parts = [self.lookup(batch.slice(s, _MAX_ROWS)) for s in range(0, batch.num_rows, _MAX_ROWS)]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        inverse, keys = local_series(batch)
        rows = np.fromiter((self._row.get(k, -1) for k in keys), np.int64, len(keys))[inverse]
        score = np.where(rows >= 0, self._beacon[np.maximum(rows, 0)], 0.0)
        return score, rows


def _micros(ts: Any) -> I64:
    """Start times as int64 microseconds (exact on both engines)."""
    if pa.types.is_timestamp(ts.type):
        ts = ts.cast(pa.timestamp("us")).cast(pa.int64())
    return np.asarray(_np(ts, np.int64), dtype=np.int64)


Hist = tuple[I64, I64, I64, I64, F64, F64]


def series_histograms(series: I64, ts_us: I64, size: I64, window_us: int) -> Hist:
    """Sparse histograms of one window's (or one series') flows.

    ``series``: a series id per flow; returns ``(series, kind, bin, count,
    sum, sum of squares)`` rows, kind 0 = interval bin (1/64 octave of
    seconds, intervals inside a time window only; sums in seconds), kind 1 =
    size bin (1/16 octave of bytes + 1; sums in bytes). The local and Spark
    engines both call this function, so they count the same.
    """
    series = np.asarray(series, np.int64)
    ts_us = np.asarray(ts_us, np.int64)
    size = np.asarray(size, np.int64)
    window = ts_us // window_us
    # Sorted by (series, time) is sorted by (series, window, time): one int64 key when it fits.
    span = int(ts_us.max() - ts_us.min()) if ts_us.size else 0
    if ts_us.size and span < (1 << 41) and int(series.max()) < (1 << 21) and int(series.min()) >= 0:
        # Ties (same series, same microsecond) make intervals of 0, dropped: order among them is moot.
        order = np.argsort((series << 41) | (ts_us - ts_us.min()))
    else:
        order = np.lexsort((ts_us, series))
    s, w, t = series[order], window[order], ts_us[order]
    same = (s[1:] == s[:-1]) & (w[1:] == w[:-1])
    dt = (t[1:] - t[:-1])[same]
    # Parallel flows (same microsecond) are one event: no interval of zero.
    dt_series = s[1:][same]
    keep = dt > 0
    dt, dt_series = dt[keep], dt_series[keep]
    ibin = np.floor(INTERVAL_BPO * np.log2(dt / _US)).astype(np.int64)
    sbin = np.floor(SIZE_BPO * np.log2(np.maximum(size, 0) + 1.0)).astype(np.int64)
    all_s = np.concatenate([dt_series, series])
    kinds = np.concatenate([np.full(dt_series.size, _INTERVAL), np.full(series.size, _SIZE)])
    bins = np.concatenate([ibin, sbin])
    x = np.concatenate([dt / _US, size.astype(np.float64)])
    return _count(all_s, kinds, bins, np.ones(all_s.size, np.int64), x, x * x)


def _count(series: I64, kinds: I64, bins: I64, counts: I64, sums: F64, squares: F64) -> Hist:
    """Rows with the same (series, kind, bin) merged: counts and sums added."""
    if series.size == 0:
        z = np.zeros(0, np.int64)
        return z, z, z, z, z.astype(np.float64), z.astype(np.float64)
    # bins lie in [-2048, 2048): one int64 code per (series, kind, bin). (NumPy's sort measured
    # faster here than Arrow's hash.)
    code = (series * 2 + kinds) * 4096 + (bins + 2048)
    uniq, inv = np.unique(code, return_inverse=True)
    m = uniq.size
    c = np.bincount(inv, weights=counts, minlength=m).astype(np.int64)
    sm = np.bincount(inv, weights=sums, minlength=m)
    sq = np.bincount(inv, weights=squares, minlength=m)
    b = np.asarray(uniq % 4096 - 2048, np.int64)
    rest = np.asarray(uniq // 4096, np.int64)
    return rest // 2, rest % 2, b, c, np.asarray(sm, np.float64), np.asarray(sq, np.float64)


class BeaconTracker:
    """Streams flow batches into per-series state; :meth:`table` gives the beacon evidence.

    Memory: the flows of the open windows (at most two windows' worth of a
    time-ordered log) plus the per-series histograms.
    """

    def __init__(self, config: BeaconConfig | None = None) -> None:
        self.config = config or BeaconConfig()
        self._window_us = round(self.config.window_s * _US)
        self._keys: dict[tuple[Any, ...], int] = {}
        self._key_rows: list[tuple[Any, ...]] = []
        self._open: list[tuple[I64, I64, I64]] = []
        self._hist: list[Hist] = []
        self._flows = np.zeros(0, np.int64)
        self._first = np.zeros(0, np.int64)
        self._last = np.zeros(0, np.int64)

    def _series_ids(self, batch: pa.RecordBatch | pa.Table) -> I64:
        inverse, keys = local_series(batch)
        ids = np.empty(len(keys), np.int64)
        for g, key in enumerate(keys):
            sid = self._keys.get(key)
            if sid is None:
                sid = self._keys[key] = len(self._key_rows)
                self._key_rows.append(key)
            ids[g] = sid
        return ids[inverse]

    def update(self, batch: pa.RecordBatch | pa.Table, weights: F64 | None = None) -> None:
        """Add one batch of flows (flow schema, or at least the key, ``ts`` and byte columns).

        ``weights``: a training weight per flow (:func:`~mlscale.apps.threat.feedback.pattern_weights`);
        flows weighted above 1 match an analyst's low-risk pattern and are left out.
        """
        if batch.num_rows == 0:
            return
        if batch.num_rows > _MAX_ROWS:  # series codes must fit an int64 (see local_series)
            for start in range(0, batch.num_rows, _MAX_ROWS):
                part = None if weights is None else weights[start : start + _MAX_ROWS]
                self.update(batch.slice(start, _MAX_ROWS), part)
            return
        if weights is not None and (weights > 1).any():
            batch = batch.filter(pa.array(weights <= 1))
            if batch.num_rows == 0:
                return
        ids = self._series_ids(batch)
        ts = _micros(batch.column(batch.schema.get_field_index("ts")))
        size = _np(batch.column(batch.schema.get_field_index("src_bytes")), np.int64) + _np(
            batch.column(batch.schema.get_field_index("dst_bytes")), np.int64
        )
        self._grow(len(self._key_rows))
        self._flows += np.bincount(ids, minlength=self._flows.size)
        np.minimum.at(self._first, ids, ts)
        np.maximum.at(self._last, ids, ts)
        self._open.append((ids, ts, size))
        self._close(int(ts.max()) // self._window_us - self.config.grace_windows)

    def _grow(self, n: int) -> None:
        extra = n - self._flows.size
        if extra > 0:
            self._flows = np.concatenate([self._flows, np.zeros(extra, np.int64)])
            self._first = np.concatenate([self._first, np.full(extra, np.iinfo(np.int64).max)])
            self._last = np.concatenate([self._last, np.full(extra, np.iinfo(np.int64).min)])

    def _close(self, before: int | None) -> None:
        """Histogram every window older than ``before`` (all when None)."""
        if not self._open:
            return
        ids = np.concatenate([o[0] for o in self._open])
        ts = np.concatenate([o[1] for o in self._open])
        size = np.concatenate([o[2] for o in self._open])
        done = np.ones(ids.size, bool) if before is None else ts // self._window_us < before
        self._open = [(ids[~done], ts[~done], size[~done])] if not done.all() else []
        if not done.any():
            return
        part = series_histograms(ids[done], ts[done], size[done], self._window_us)
        self._hist.append(part)
        if len(self._hist) > 16:
            self._hist = [self._merged()]

    def _merged(self) -> Hist:
        parts = self._hist
        if not parts:
            return _count(*(np.zeros(0, np.int64),) * 4, np.zeros(0), np.zeros(0))
        cat = [np.concatenate([p[i] for p in parts]) for i in range(6)]
        return _count(cat[0], cat[1], cat[2], cat[3], cat[4].astype(np.float64), cat[5].astype(np.float64))

    def table(self) -> pa.Table:
        """One row per series with at least ``min_flows`` flows (:data:`BEACON_COLUMNS`), strongest first."""
        self._close(None)
        self._hist = [self._merged()]
        keys = pa.table(
            {
                k: pa.array([row[i] for row in self._key_rows], t)
                for i, (k, t) in enumerate(zip(KEY, _KEY_TYPES, strict=True))
            }
        )
        return beacon_features(keys, self._flows, self._first, self._last, self._hist[0], self.config)


def _weighted_median(group: I64, values: F64, weights: I64, n_groups: int) -> F64:
    """Per group, the weighted median of ``values`` (lower median; NaN for empty groups)."""
    out = np.full(n_groups, np.nan)
    if group.size == 0:
        return out
    order = np.lexsort((values, group))
    g, v, w = group[order], values[order], weights[order].astype(np.float64)
    cum = np.cumsum(w)
    start = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1]
    total = np.add.reduceat(w, start)
    base = cum[start] - w[start]
    # cum is non-decreasing, so the first position reaching half a group's weight lies in that group.
    at = np.searchsorted(cum, base + total / 2.0, side="left")
    ug = g[start]
    out[ug] = v[np.minimum(at, g.size - 1)]
    return out


def beacon_features(
    keys: pa.Table,
    flows: I64,
    first: I64,
    last: I64,
    hist: Hist,
    config: BeaconConfig,
) -> pa.Table:
    """The features and score of every series from its counts and histograms (both engines)."""
    n = keys.num_rows
    series, kinds, bins, counts, sums, squares = hist
    iv = kinds == _INTERVAL
    i_s, i_c = series[iv], counts[iv]
    # Each bin's exact mean interval (its sum over its count).
    centers = sums[iv] / np.maximum(i_c, 1)
    median = _weighted_median(i_s, centers, i_c, n)
    med_of = median[i_s] if i_s.size else np.zeros(0)
    dev = np.abs(centers - med_of)
    mad = _weighted_median(i_s, dev, i_c, n)
    is_near = dev <= config.tolerance * med_of
    near = np.bincount(i_s, weights=np.where(is_near, i_c, 0), minlength=n)
    # Mean and standard deviation of the regular intervals (within the tolerance), exact from the sums.
    near_sum = np.bincount(i_s, weights=np.where(is_near, sums[iv], 0.0), minlength=n)
    near_sq = np.bincount(i_s, weights=np.where(is_near, squares[iv], 0.0), minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        period = np.where(near > 0, near_sum / np.maximum(near, 1), np.nan)
        jitter = np.sqrt(np.maximum(near_sq / np.maximum(near, 1) - period * period, 0.0))
    jitter = np.where(near > 0, jitter, np.nan)
    n_int = np.bincount(i_s, weights=i_c, minlength=n)
    # A burst of parallel connections (a browser opening eight) repeats nothing: no interval evidence.
    steady = np.nan_to_num(median, nan=0.0) >= config.min_interval_s
    interval_share = np.where((n_int > 0) & steady, near / np.maximum(n_int, 1), 0.0)

    sv = ~iv
    s_s, s_b, s_c, s_sum = series[sv], bins[sv], counts[sv], sums[sv]
    # Modal size bin per series, then the share of flows within one bin of it.
    order = np.lexsort((-s_c, s_s))
    first_row = np.r_[True, s_s[order][1:] != s_s[order][:-1]] if s_s.size else np.zeros(0, bool)
    mode = np.zeros(n, np.int64)
    mode[s_s[order][first_row]] = s_b[order][first_row]
    close = np.abs(s_b - mode[s_s]) <= 1
    size_share = np.bincount(s_s, weights=np.where(close, s_c, 0), minlength=n) / np.maximum(flows, 1)
    close_n = np.bincount(s_s, weights=np.where(close, s_c, 0), minlength=n)
    size_bytes = np.bincount(s_s, weights=np.where(close, s_sum, 0.0), minlength=n) / np.maximum(close_n, 1)

    confidence = np.where(flows >= config.min_flows, 1.0 - np.exp(-(flows - 1) / 8.0), 0.0)
    dst = keys.column("dst_ip")
    multicast = np.asarray(
        pc.fill_null(pc.match_substring_regex(pc.fill_null(dst, ""), _NON_UNICAST), True).to_numpy(
            zero_copy_only=False
        ),
        bool,
    )
    beacon = np.where(multicast, 0.0, confidence * (interval_share + size_share) / 2.0)
    out = keys.select(list(KEY)).append_column("flows", pa.array(flows[:n], pa.int64()))
    out = out.append_column("first", pa.array(first[:n], pa.int64()).cast(pa.timestamp("us")))
    out = out.append_column("last", pa.array(last[:n], pa.int64()).cast(pa.timestamp("us")))
    for name, values in (
        ("interval_s", period),
        ("interval_jitter_s", jitter),
        ("interval_median_s", median),
        ("interval_mad_s", mad),
        ("interval_share", interval_share),
        ("size_bytes", size_bytes),
        ("size_share", size_share),
        ("beacon", beacon),
    ):
        out = out.append_column(name, pa.array(values, pa.float64()))
    out = out.filter(pa.array(flows[:n] >= config.min_flows))
    out = out.append_column("reason", pa.array(_reasons(out, config), pa.string()))
    order_idx = pc.sort_indices(out, sort_keys=[("beacon", "descending"), ("src_ip", "ascending")])
    return out.take(order_idx)


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _reasons(table: pa.Table, cfg: BeaconConfig) -> list[str | None]:
    """Each series' explanation; None under :data:`REASON_MIN` (weak evidence: not worth the words)."""
    cols = {c: table.column(c).to_pylist() for c in ("dst_ip", "dst_port", "proto", "flows", "interval_s",
                                                      "interval_jitter_s", "size_share", "beacon")}  # fmt: skip
    first = _micros(table.column("first"))
    last = _micros(table.column("last"))
    out: list[str | None] = []
    for i in range(table.num_rows):
        if cols["beacon"][i] < REASON_MIN:
            out.append(None)
            continue
        med, mad = cols["interval_s"][i], cols["interval_jitter_s"][i]
        steady = med is not None and np.isfinite(med) and med >= cfg.min_interval_s
        every = f"every {med:.1f} s +- {mad:.1f} s" if steady else "at no steady interval"
        span = _span((int(last[i]) - int(first[i])) / _US)
        out.append(
            f"{every} to {cols['dst_ip'][i]}:{cols['dst_port'][i]}/{cols['proto'][i]} for {span} "
            f"({cols['flows'][i]} flows, {cols['size_share'][i]:.0%} same size)"
        )
    return out


def beacon_table(
    data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch],
    config: BeaconConfig | None = None,
    *,
    weights: Any = None,
) -> pa.Table:
    """The beacon evidence of a log, streamed batch by batch (:class:`BeaconTracker`).

    ``weights``: an optional function giving each flow of a batch its
    training weight (feedback's :func:`~mlscale.apps.threat.feedback.pattern_weights`).
    """
    tracker = BeaconTracker(config)
    for batch in _batches(data):
        tracker.update(batch, None if weights is None else weights(batch))
    return tracker.table()


def _batches(data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    if isinstance(data, pa.Table):
        yield from data.to_batches(max_chunksize=1 << 20)
    elif isinstance(data, pa.RecordBatch):
        yield data
    else:
        yield from data


def beacon_evidence(batch: pa.RecordBatch | pa.Table, beacons: pa.Table | BeaconIndex) -> tuple[F64, I64]:
    """Per flow of ``batch``: its series' beacon score (0 when none) and row in ``beacons`` (-1).

    Pass a :class:`BeaconIndex` when scoring many batches against one table.
    """
    index = beacons if isinstance(beacons, BeaconIndex) else BeaconIndex(beacons)
    return index.lookup(batch)


def spark_beacons(df: Any, config: BeaconConfig | None = None) -> pa.Table:
    """The beacon evidence of a Spark DataFrame of flows, as :func:`beacon_table` gives it locally.

    Each series (with its time windows) is histogrammed in a Spark task by
    :func:`series_histograms`; only the histograms and per-series counts come
    back to the driver, where :func:`beacon_features` turns them into the
    same table.
    """
    from pyspark.sql import functions as sf

    cfg = config or BeaconConfig()
    window_us = round(cfg.window_s * _US)
    flows = df.select(
        *KEY,
        sf.col("ts").cast("timestamp").alias("ts"),
        (sf.coalesce(sf.col("src_bytes"), sf.lit(0)) + sf.coalesce(sf.col("dst_bytes"), sf.lit(0))).alias("size"),
    ).withColumn("ts_us", sf.unix_micros(sf.col("ts")))
    schema = "src_ip string, dst_ip string, dst_port int, proto string, kind long, bin long, count long, " \
             "sum double, sumsq double, flows long, first long, last long"  # fmt: skip

    def per_series(pdf: Any) -> Any:
        import pandas as pd

        ts = pdf["ts_us"].to_numpy(np.int64)
        size = pdf["size"].to_numpy(np.int64)
        _, kinds, bins, counts, sums, squares = series_histograms(np.zeros(ts.size, np.int64), ts, size, window_us)
        head = pdf.iloc[0]
        return pd.DataFrame(
            {
                "src_ip": head["src_ip"],
                "dst_ip": head["dst_ip"],
                "dst_port": np.int32(head["dst_port"]),
                "proto": head["proto"],
                "kind": kinds,
                "bin": bins,
                "count": counts,
                "sum": sums,
                "sumsq": squares,
                "flows": np.int64(ts.size),
                "first": np.int64(ts.min()),
                "last": np.int64(ts.max()),
            }
        )

    rows = flows.groupBy(*KEY).applyInPandas(per_series, schema)
    # toArrow: Spark >= 4; older ones go through pandas.
    got = rows.toArrow() if hasattr(rows, "toArrow") else pa.Table.from_pandas(rows.toPandas(), preserve_index=False)
    per = got.group_by(list(KEY), use_threads=False).aggregate([("flows", "max"), ("first", "min"), ("last", "max")])
    per = per.take(pc.sort_indices(per, sort_keys=[(k, "ascending") for k in KEY]))
    ids = per.select(list(KEY)).append_column("_sid", pa.array(np.arange(per.num_rows, dtype=np.int64)))
    joined = got.join(ids, keys=list(KEY), use_threads=False)
    ints = [np.asarray(joined.column(c).to_numpy(), np.int64) for c in ("_sid", "kind", "bin", "count")]
    floats = [np.asarray(joined.column(c).to_numpy(), np.float64) for c in ("sum", "sumsq")]
    hist = _count(ints[0], ints[1], ints[2], ints[3], floats[0], floats[1])
    keys = per.select(list(KEY)).cast(pa.schema([(k, t) for k, t in zip(KEY, _KEY_TYPES, strict=True)]))
    return beacon_features(
        keys,
        np.asarray(per.column("flows_max").to_numpy(), np.int64),
        np.asarray(per.column("first_min").to_numpy(), np.int64),
        np.asarray(per.column("last_max").to_numpy(), np.int64),
        hist,
        cfg,
    )
