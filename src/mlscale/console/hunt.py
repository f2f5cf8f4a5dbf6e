"""Threat hunting over a scored run (``mlscale threat score`` output) without loading it.

A :class:`ScoredRun` reads a rank-sorted Parquet file through ``pyarrow.dataset``:
a page is the first ``limit`` rows after a rank cursor that pass the filters,
read batch by batch and stopped as soon as the page is full, so memory is
bounded by the page and one batch, never by the file. The rank and the score
grow together down the file, so their row-group statistics let Parquet skip
every row group before the cursor or past a score threshold. A run written
with large row groups, or as CSV / JSON lines, is copied once into a
rank-sorted Parquet *index* with small row groups (``INDEX_ROWS``) in the
console's state folder.

>>> import tempfile, pathlib, pyarrow as pa, pyarrow.parquet as pq
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp, "run.parquet")
...     ips = ["10.0.0.1", "10.0.0.2", "10.0.0.1"]
...     pq.write_table(pa.table({"rank": [1, 2, 3], "score": [0.1, 0.2, 0.3], "src_ip": ips,
...                              "dst_ip": ["10.0.0.3"] * 3}), path)
...     run = ScoredRun(path, pathlib.Path(tmp, "state"))
...     page = run.page(parse_filters({"ip": "10.0.0.1"}), limit=1)
...     [r["rank"] for r in page["rows"]], page["next_after"]
([1], 1)
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import ipaddress
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mlscale.errors import DataError, ValidationError

__all__ = [
    "INDEX_ROWS",
    "MAX_LIMIT",
    "Filters",
    "NotFoundError",
    "ScoredRun",
    "parse_filters",
    "rows_of",
    "verdict_severity",
]

#: Rows per row group of the console's index copy: small enough that a page reads little.
INDEX_ROWS = 16_384
#: Most rows on one page.
MAX_LIMIT = 500
_SUFFIXES = (".parquet", ".csv", ".json", ".jsonl")
_PROTO_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Filters:
    """What the analyst narrows the list to (every field optional)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    ip: str | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None
    proto: str | None = None
    max_score: float | None = None
    verdict: str | None = None  # "none", "1", "2", "3", "any"

    def active(self) -> bool:
        return any(v is not None for v in vars(self).values())


def _time(value: str, name: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"expected an ISO-8601 time such as 2024-01-31T12:00, got {value!r}", field=name
        ) from None
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def parse_filters(query: Mapping[str, str]) -> Filters:
    """The filters of a query string; a bad value raises :class:`ValidationError` naming its field."""
    q = {k: v.strip() for k, v in query.items() if v.strip()}
    since = _time(q["since"], "since") if "since" in q else None
    until = _time(q["until"], "until") if "until" in q else None
    if since and until and until <= since:
        raise ValidationError("expected `until` after `since`", field="until")
    ip: str | None = None
    network = None
    if "ip" in q:
        text = q["ip"]
        try:
            if "/" in text:
                network = ipaddress.ip_network(text, strict=False)
            else:
                ip = str(ipaddress.ip_address(text))
        except ValueError:
            raise ValidationError(
                f"expected an IP address or a CIDR such as 10.0.0.0/8, got {text!r}", field="ip"
            ) from None
    port = None
    if "port" in q:
        try:
            port = int(q["port"])
        except ValueError:
            port = -1
        if not 0 <= port <= 65535:
            raise ValidationError(f"expected a port in 0..65535, got {q['port']!r}", field="port")
    proto = q["proto"].lower() if "proto" in q else None
    if proto is not None and not set(proto) <= _PROTO_OK:
        raise ValidationError(f"expected a protocol name such as tcp, got {q['proto']!r}", field="proto")
    max_score = None
    if "max_score" in q:
        try:
            max_score = float(q["max_score"])
        except ValueError:
            max_score = math.nan
        if not math.isfinite(max_score):
            raise ValidationError(f"expected a number, got {q['max_score']!r}", field="max_score")
    verdict = q.get("verdict")
    if verdict is not None and verdict not in ("none", "any", "1", "2", "3"):
        raise ValidationError(f"expected none, any, 1, 2 or 3, got {verdict!r}", field="verdict")
    return Filters(since, until, ip, network, port, proto, max_score, verdict)


def verdict_severity(table: pa.Table | pa.RecordBatch, verdicts: Sequence[Any]) -> np.ndarray[Any, Any]:
    """Per row, the severity of the most severe verdict that matches it (0: none).

    An event verdict matches the row with the same endpoints and start time; a
    pattern verdict every row with all its fields equal.
    """
    out = np.zeros(table.num_rows, dtype=np.int8)
    if not verdicts or table.num_rows == 0:
        return out
    names = table.schema.names
    for v in verdicts:
        keys = ("src_ip", "dst_ip", "src_port", "dst_port", "proto", "ts") if v.kind == "event" else tuple(v.match)
        mask = np.ones(table.num_rows, dtype=bool)
        for key in keys:
            if key not in v.match or key not in names:
                continue
            col = table.column(names.index(key))
            value = v.match[key]
            if key == "ts":
                col = col.cast(pa.timestamp("us")).cast(pa.int64())
            elif pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            try:
                eq = pc.equal(col, pa.scalar(value, col.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                mask[:] = False
                break
            mask &= np.asarray(pc.fill_null(eq, False).to_numpy(zero_copy_only=False), dtype=bool)
        hit = mask & ((out == 0) | (out > v.severity))
        out[hit] = v.severity
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rows_of(table: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """Rows as plain JSON-able dicts."""
    return [{k: _json_value(v) for k, v in row.items()} for row in table.to_pylist()]


class ScoredRun:
    """One scored list, paged from disk (see the module docs)."""

    def __init__(self, path: Path, state: Path) -> None:
        self.source = Path(path)
        if not self.source.is_file():
            raise DataError(f"{self.source}: no such scored run", hint="write one with `mlscale threat score`")
        if self.source.suffix.lower() not in _SUFFIXES:
            raise DataError(f"{self.source}: expected a .parquet, .csv or .json scored list")
        self.path = self._indexed(state)
        self.dataset = ds.dataset(self.path, format="parquet")
        self.schema = self.dataset.schema
        self._meta = pq.ParquetFile(self.path).metadata
        self.rows = int(self._meta.num_rows)
        self._max_rank, self._min_score = _group_bounds(self._meta)
        names = self.schema.names
        if "rank" not in names or "score" not in names:
            raise DataError(f"{self.source}: not a list from `mlscale threat score` (no rank or score column)")
        self.ip_columns = [c for c in ("src_ip", "dst_ip", "client_ip", "server_ip") if c in names]
        self.port_columns = [c for c in ("src_port", "dst_port") if c in names]

    # -- the index copy ------------------------------------------------------------------------

    def _indexed(self, state: Path) -> Path:
        src = self.source
        if src.suffix.lower() == ".parquet" and _small_sorted_groups(src):
            return src
        st = src.stat()
        key = hashlib.sha256(f"{src.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
        out = state / "index" / f"{src.stem}-{key}.parquet"
        if out.exists():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        if not (src.suffix.lower() == ".parquet" and _copy_sorted(src, tmp)):
            table = _read_any(src)  # CSV / JSON, or a Parquet file out of rank order: read once and sorted
            if "rank" in table.column_names:
                table = table.take(pc.sort_indices(table, sort_keys=[("rank", "ascending")]))
            pq.write_table(table, tmp, row_group_size=INDEX_ROWS, compression="zstd")
        tmp.replace(out)
        return out

    # -- queries ---------------------------------------------------------------------------------

    def _expression(self, f: Filters, after: int) -> ds.Expression:
        field = ds.field
        expr = field("rank") > after
        ts_type = self.schema.field("ts").type if "ts" in self.schema.names else None
        if f.since is not None and ts_type is not None:
            expr &= field("ts") >= pa.scalar(f.since, ts_type)
        if f.until is not None and ts_type is not None:
            expr &= field("ts") < pa.scalar(f.until, ts_type)
        if f.ip is not None:
            expr &= _any_equal(self.ip_columns, f.ip)
        if f.network is not None:
            prefix = _network_prefix(f.network)
            if prefix:
                sides = [pc.starts_with(field(c), pattern=prefix) for c in self.ip_columns]
                expr &= _or(sides)
        if f.port is not None and self.port_columns:
            expr &= _or([field(c) == f.port for c in self.port_columns])
        if f.proto is not None and "proto" in self.schema.names:
            expr &= field("proto") == f.proto
        if f.max_score is not None:
            expr &= field("score") <= f.max_score
        return expr

    def _filter_columns(self, f: Filters) -> list[str]:
        """The columns the Parquet filter of ``f`` reads."""
        names = ["rank"]
        if f.since is not None or f.until is not None:
            names.append("ts")
        if f.ip is not None or f.network is not None:
            names += self.ip_columns
        if f.port is not None:
            names += self.port_columns
        if f.proto is not None:
            names.append("proto")
        if f.max_score is not None:
            names.append("score")
        return [n for n in names if n in self.schema.names]

    def _refine(self, batch: pa.RecordBatch, f: Filters, verdicts: Sequence[Any]) -> pa.RecordBatch:
        """What the Parquet filter cannot say: a CIDR that is not whole octets, the verdict filter."""
        if batch.num_rows and f.network is not None and not _network_exact(f.network):
            keep = np.zeros(batch.num_rows, dtype=bool)
            for c in self.ip_columns:
                values = batch.column(batch.schema.get_field_index(c)).to_pylist()
                keep |= np.fromiter((_in_network(v, f.network) for v in values), bool, len(values))
            batch = batch.filter(pa.array(keep))
        if batch.num_rows and f.verdict is not None:
            sev = verdict_severity(batch, verdicts)
            if f.verdict == "none":
                keep = sev == 0
            elif f.verdict == "any":
                keep = sev > 0
            else:
                keep = sev == int(f.verdict)
            batch = batch.filter(pa.array(keep))
        return batch

    def _scan(
        self, f: Filters, after: int, verdicts: Sequence[Any], columns: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Matching rows in rank order, one row group at a time, from the first group past ``after``.

        The groups are chosen from the file's statistics (rank, and score for a threshold: both grow
        down the file), and nothing is read ahead: stopping the iteration stops the reading.
        """
        cols = None if columns is None else [c for c in columns if c in self.schema.names]
        expr = self._expression(f, after)
        pf = pq.ParquetFile(self.path, metadata=self._meta)
        start = bisect.bisect_right(self._max_rank, after)
        # A selective filter reads its own few columns first and skips the groups where nothing matches.
        probe = self._filter_columns(f) if (f.ip or f.network or f.port is not None or f.proto) else None
        for g in range(start, len(self._max_rank)):
            if f.max_score is not None and self._min_score[g] > f.max_score:
                break
            if probe is not None and pf.read_row_group(g, columns=probe).filter(expr).num_rows == 0:
                continue
            table = pf.read_row_group(g, columns=cols)
            if "rank" in table.column_names:
                ranks = table.column("rank").to_numpy()
                if bool(np.any(np.diff(ranks) < 0)):  # the statistics order groups, not the rows inside one
                    table = table.sort_by("rank")
            table = table.filter(expr)
            for batch in table.to_batches(max_chunksize=4096):
                batch = self._refine(batch, f, verdicts)
                if batch.num_rows:
                    yield batch

    def page(self, f: Filters, *, after: int = 0, limit: int = 50, verdicts: Sequence[Any] = ()) -> dict[str, Any]:
        """Up to ``limit`` rows with rank > ``after`` that pass ``f``, most suspicious first."""
        got: list[pa.RecordBatch] = []
        n = 0
        for batch in self._scan(f, after, verdicts):
            got.append(batch)
            n += batch.num_rows
            if n > limit:
                break
        table = pa.Table.from_batches(got, schema=got[0].schema) if got else self.schema.empty_table()
        more = table.num_rows > limit
        table = table.slice(0, limit)
        sev = verdict_severity(table, verdicts)
        rows = rows_of(table)
        for row, s in zip(rows, sev.tolist(), strict=True):
            row["verdict"] = s or None
        return {
            "rows": rows,
            "more": more,
            "next_after": rows[-1]["rank"] if rows else None,
            "total": None if f.active() else self.rows,
        }

    def count(self, f: Filters, verdicts: Sequence[Any] = ()) -> int:
        """Rows that pass ``f`` (a scan of the filter columns only)."""
        if not f.active():
            return self.rows
        if f.verdict is None and (f.network is None or _network_exact(f.network)):
            return int(self.dataset.count_rows(filter=self._expression(f, 0)))
        return sum(b.num_rows for b in self._scan(f, 0, verdicts))

    def event(self, rank: int, verdicts: Sequence[Any] = ()) -> dict[str, Any]:
        """The row of one rank, its words and their probabilities."""
        table = self.dataset.to_table(filter=ds.field("rank") == rank)
        if table.num_rows == 0:
            raise NotFoundError(f"no row with rank {rank} in this run ({self.rows:,} rows)", field="rank")
        row = rows_of(table.slice(0, 1))[0]
        words = []
        for side in ("src", "dst", ""):
            key = f"{side}_word" if side else "word"
            if key in row:
                prob_key = f"{side}_prob" if side else "prob"
                ip_key = {"src": "src_ip", "dst": "dst_ip"}.get(side, "client_ip")
                words.append(
                    {"side": side or "client", "ip": row.get(ip_key), "word": row[key], "prob": row.get(prob_key)}
                )
        row["verdict"] = int(verdict_severity(table.slice(0, 1), verdicts)[0]) or None
        return {"event": row, "words": words}

    def ip_view(self, ip: str, *, flows: int = 200, buckets: int = 48) -> dict[str, Any]:
        """One IP: its most suspicious flows, its flows over time, its peers (from every matching row)."""
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise ValidationError(f"expected an IP address, got {ip!r}", field="ip") from None
        f = Filters(ip=ip)
        top: list[pa.RecordBatch] = []
        kept = 0
        times: list[np.ndarray[Any, Any]] = []
        peers: dict[str, list[float]] = {}
        total = 0
        cols = ["rank", "ts", "score", *self.ip_columns, *self.port_columns, "proto"]
        for batch in self._scan(f, 0, (), columns=None):
            total += batch.num_rows
            if kept < flows:
                top.append(batch.slice(0, flows - kept))
                kept += top[-1].num_rows
            small = batch.select([c for c in cols if c in batch.schema.names])
            if "ts" in small.schema.names:
                times.append(
                    small.column("ts").cast(pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False)
                )
            a = self.ip_columns[0] if self.ip_columns else None
            b = self.ip_columns[1] if len(self.ip_columns) > 1 else None
            if a is None or b is None:
                continue
            src = small.column(a).to_pylist()
            dst = small.column(b).to_pylist()
            score = small.column("score").to_pylist()
            for s, d, sc in zip(src, dst, score, strict=True):
                peer = d if s == ip else s
                p = peers.setdefault(peer, [0.0, math.inf])
                p[0] += 1
                p[1] = min(p[1], sc if sc is not None else math.inf)
        if total == 0:
            raise NotFoundError(f"no flow of {ip} in this run", field="ip")
        timeline: list[dict[str, Any]] = []
        if times:
            t = np.concatenate(times)
            lo, hi = int(t.min()), int(t.max())
            edges = np.linspace(lo, hi + 1, buckets + 1)
            counts, _ = np.histogram(t, bins=edges)
            timeline = [
                {"start": dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(e)), "flows": int(c)}
                for e, c in zip(edges[:-1], counts, strict=True)
            ]
            timeline = [{"start": x["start"].isoformat(), "flows": x["flows"]} for x in timeline]
        ranked_peers = sorted(peers.items(), key=lambda kv: (kv[1][1], -kv[1][0]))[:25]
        table = pa.Table.from_batches(top) if top else self.schema.empty_table()
        return {
            "ip": ip,
            "flows": total,
            "top": rows_of(table),
            "timeline": timeline,
            "peers": [
                {"ip": p, "flows": int(v[0]), "min_score": None if math.isinf(v[1]) else v[1]} for p, v in ranked_peers
            ],
        }


class NotFoundError(ValidationError):
    """What was asked for is not there (404, naming the field)."""

    http_status = 404


def _group_bounds(meta: pq.FileMetaData) -> tuple[list[float], list[float]]:
    """Per row group, the largest rank and the smallest score (from the statistics; -inf/+inf unknown)."""
    names = meta.schema.names
    max_rank: list[float] = []
    min_score: list[float] = []
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        bounds = []
        for name, pick, missing in (("rank", "max", math.inf), ("score", "min", -math.inf)):
            stats = rg.column(names.index(name)).statistics if name in names else None
            bounds.append(float(getattr(stats, pick)) if stats is not None and stats.has_min_max else missing)
        max_rank.append(bounds[0])
        min_score.append(bounds[1])
    # a file not sorted by rank (the index copy always is) cannot skip groups by rank
    if any(b < a for a, b in itertools.pairwise(max_rank)):
        max_rank = [math.inf] * len(max_rank)
    return max_rank, min_score


def _small_sorted_groups(path: Path) -> bool:
    """Whether a Parquet file already has small row groups in rank order (then no index copy is needed).

    The statistics order the groups; a group out of order inside is sorted when it is read (it is small).
    """
    meta = pq.ParquetFile(path).metadata
    try:
        i = meta.schema.names.index("rank")
    except ValueError:
        return False
    last = -math.inf
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        if rg.num_rows > 2 * INDEX_ROWS:
            return False
        stats = rg.column(i).statistics
        if stats is None or not stats.has_min_max or stats.min < last:
            return False
        last = stats.max
    return True


def _copy_sorted(src: Path, dst: Path) -> bool:
    """Stream a rank-sorted Parquet file into ``dst`` with small row groups (False: it is not in rank order)."""
    pf = pq.ParquetFile(src)
    if "rank" not in pf.schema_arrow.names:
        return False
    last = -math.inf
    with pq.ParquetWriter(dst, pf.schema_arrow, compression="zstd") as writer:
        for batch in pf.iter_batches(batch_size=INDEX_ROWS):
            ranks = batch.column(batch.schema.get_field_index("rank")).to_numpy(zero_copy_only=False)
            if len(ranks) and (ranks[0] < last or bool(np.any(np.diff(ranks) < 0))):
                break
            last = ranks[-1] if len(ranks) else last
            writer.write_batch(batch, row_group_size=INDEX_ROWS)
        else:
            return True
    dst.unlink()
    return False


def _read_any(path: Path) -> pa.Table:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pq.read_table(path)
    if suffix == ".csv":
        import pyarrow.csv as pacsv

        return pacsv.read_csv(path)
    import pyarrow.json as pajson

    return pajson.read_json(path)


def _or(parts: Sequence[ds.Expression]) -> ds.Expression:
    out = parts[0]
    for p in parts[1:]:
        out |= p
    return out


def _any_equal(columns: Sequence[str], value: str) -> ds.Expression:
    return _or([ds.field(c) == value for c in columns])


def _network_prefix(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """The text every address of ``net`` starts with (IPv4 whole octets; '' when none)."""
    if net.version != 4:
        return ""
    octets = net.prefixlen // 8
    if octets == 0:
        return ""
    return ".".join(str(net.network_address).split(".")[:octets]) + ("." if octets < 4 else "")


def _network_exact(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return net.version == 4 and net.prefixlen % 8 == 0 and net.prefixlen < 32


def _in_network(value: str | None, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    if value is None:
        return False
    try:
        return ipaddress.ip_address(value) in net
    except ValueError:
        return False
