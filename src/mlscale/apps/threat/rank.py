"""The suspicious-connects list: every record scored, ranked (1 = most suspicious), with its words.

:func:`rank_records` streams batches through a model and returns one row per
record (or only the ``top`` most suspicious, with memory bounded by ``top``),
sorted by rank. Flow rows keep the log's own id (``flow_id``, Zeek's
``uid``), its ``line``, the flow's fields (so an analyst can rate it with
``mlscale threat feedback``), the score, and per side the readable word and
its probability: the words that made the flow suspicious. :func:`ip_summary`
folds the list into one row per IP; :func:`write_table` writes Parquet, CSV
or JSON lines by the file's suffix.

>>> from mlscale.apps.threat.model import ThreatDetector
>>> from mlscale.apps.threat.synthetic import generate_flows
>>> flows = generate_flows(2000, hosts=30, seed=0)
>>> det = ThreatDetector(topics=4, passes=2).fit(flows)
>>> top = rank_records(det, flows.to_batches(500), top=5)
>>> top.num_rows, top.column("rank").to_pylist()
(5, [1, 2, 3, 4, 5])
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlscale.apps.threat.beacon import BeaconIndex
from mlscale.apps.threat.evidence import DEFAULT_BEACON_WEIGHT, flow_scores
from mlscale.apps.threat.model import ThreatDetector
from mlscale.apps.threat.schema import dns_fields, flow_fields
from mlscale.errors import ValidationError

__all__ = ["OUTPUT_SUFFIXES", "ip_summary", "rank_records", "score_table", "write_table"]

OUTPUT_SUFFIXES = (".parquet", ".csv", ".json", ".jsonl")
# What a scored row keeps of its record: the id and line first, then the schema's columns.
_FLOW_KEEP = ("flow_id", "line", *flow_fields(without=("flow_id", "line", "service")))
_DNS_KEEP = ("flow_id", "line", *dns_fields(without=("flow_id", "line", "frame_len")))


def score_table(
    model: ThreatDetector,
    batch: pa.RecordBatch | pa.Table,
    *,
    beacons: pa.Table | BeaconIndex | None = None,
    beacon_weight: float = DEFAULT_BEACON_WEIGHT,
) -> pa.Table:
    """One batch scored: its kept fields plus ``score`` and per-side word codes and probabilities.

    ``beacons`` (flow models; :func:`~mlscale.apps.threat.beacon.beacon_table` of the scored
    log): folded into ``score`` (:mod:`~mlscale.apps.threat.evidence`) and given per flow as
    ``beacon`` and ``beacon_reason``.
    """
    ev = None
    if beacons is not None and model.kind == "flows":
        ev = flow_scores(model, batch, beacons, weight=beacon_weight)
        s = ev.model
    else:
        s = model.score(batch)
    keep = _DNS_KEEP if model.kind == "dns" else _FLOW_KEEP
    cols: dict[str, Any] = {name: batch.column(batch.schema.get_field_index(name)) for name in keep}
    cols["score"] = pa.array(s.score if ev is None else ev.score)
    if model.kind == "dns":
        cols["word_code"] = pa.array(s.src_word)
        cols["prob"] = pa.array(s.src_prob)
        cols["known_ip"] = pa.array(s.src_known)
    else:
        cols["src_word_code"] = pa.array(s.src_word)
        cols["src_prob"] = pa.array(s.src_prob)
        cols["dst_word_code"] = pa.array(s.dst_word)
        cols["dst_prob"] = pa.array(s.dst_prob)
        cols["known_ips"] = pa.array(s.src_known.astype(np.int8) + s.dst_known.astype(np.int8))
    if ev is not None and beacons is not None:
        cols["beacon"] = pa.array(ev.beacon)
        table = beacons.table if isinstance(beacons, BeaconIndex) else beacons
        has = ev.beacon_row >= 0
        if has.any():
            reasons = table.column("reason").take(pa.array(np.where(has, ev.beacon_row, 0)))
            cols["beacon_reason"] = pc.if_else(pa.array(has), reasons, pa.scalar(None, pa.string()))
        else:
            cols["beacon_reason"] = pa.nulls(batch.num_rows, pa.string())
    return pa.table(cols)


def _smallest(table: pa.Table, n: int) -> pa.Table:
    if table.num_rows <= n:
        return table
    idx = pc.select_k_unstable(table, k=n, sort_keys=[("score", "ascending")])
    return table.take(idx)


def _render_words(model: ThreatDetector, codes: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Readable words as a dictionary array (each distinct word rendered once)."""
    arr = codes.combine_chunks() if isinstance(codes, pa.ChunkedArray) else codes
    encoded = pc.dictionary_encode(arr)
    names = pa.array(model.describe(np.asarray(encoded.dictionary.to_numpy(), np.int64)), pa.string())
    return pa.DictionaryArray.from_arrays(encoded.indices, names)


def rank_records(
    model: ThreatDetector,
    batches: Iterable[pa.RecordBatch | pa.Table],
    *,
    top: int | None = None,
    beacons: pa.Table | None = None,
    beacon_weight: float = DEFAULT_BEACON_WEIGHT,
) -> pa.Table:
    """Score every record and rank them, most suspicious first (only the ``top`` first when given).

    ``beacons``: the scored log's beacon evidence, folded into flow scores (see :func:`score_table`).
    """
    index = BeaconIndex(beacons) if beacons is not None else None
    if top is not None and top < 1:
        raise ValidationError(f"expected >= 1, got {top}", field="top")
    parts: list[pa.Table] = []
    kept = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        scored = score_table(model, batch, beacons=index, beacon_weight=beacon_weight)
        parts.append(_smallest(scored, top) if top is not None else scored)
        kept += parts[-1].num_rows
        if top is not None and kept > 4 * top:
            parts = [_smallest(pa.concat_tables(parts), top)]
            kept = parts[0].num_rows
    if not parts:
        table = score_table(model, _empty_batch(model), beacons=beacons, beacon_weight=beacon_weight)
    else:
        table = pa.concat_tables(parts)
    order = pc.sort_indices(table, sort_keys=[("score", "ascending"), ("line", "ascending")])
    if top is not None:
        order = order[:top]
    table = table.take(order)
    table = table.add_column(0, "rank", pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
    for side in ("src_", "dst_", ""):
        name = f"{side}word_code"
        if name in table.column_names:
            i = table.schema.get_field_index(name)
            table = table.set_column(i, f"{side}word", _render_words(model, table.column(i)))
    return table


def _empty_batch(model: ThreatDetector) -> pa.RecordBatch:
    from mlscale.apps.threat.schema import DNS_SCHEMA, FLOW_SCHEMA

    schema = DNS_SCHEMA if model.kind == "dns" else FLOW_SCHEMA
    return pa.RecordBatch.from_pylist([], schema=schema)


def ip_summary(ranked: pa.Table, *, suspicious: int = 100) -> pa.Table:
    """One row per IP: flows, how many are among the ``suspicious`` first, lowest and mean score,
    and the word of its most suspicious flow; sorted by lowest score."""
    if "client_ip" in ranked.column_names:
        sides = [("client_ip", "word")]
    else:
        sides = [("src_ip", "src_word"), ("dst_ip", "dst_word")]
    parts = []
    for ip_col, word_col in sides:
        parts.append(
            pa.table(
                {
                    "ip": ranked.column(ip_col),
                    "score": ranked.column("score"),
                    "word": ranked.column(word_col).cast(pa.string()),
                    "top": pc.less_equal(ranked.column("rank"), suspicious).cast(pa.int64()),
                }
            )
        )
    long = pa.concat_tables(parts)
    long = long.take(pc.sort_indices(long, sort_keys=[("score", "ascending")]))
    grouped = long.group_by("ip", use_threads=False).aggregate(
        [
            ("score", "count"),
            ("top", "sum"),
            ("score", "min"),
            ("score", "mean"),
            ("word", "first"),
        ]
    )
    grouped = grouped.rename_columns(["ip", "flows", "suspicious_flows", "min_score", "mean_score", "worst_word"])
    return grouped.take(pc.sort_indices(grouped, sort_keys=[("min_score", "ascending"), ("ip", "ascending")]))


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded (CSV and JSON writers want plain types)."""
    cols = []
    for col in table.columns:
        cols.append(col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col)
    return pa.table(cols, names=table.column_names)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_table(table: pa.Table, path: Path) -> None:
    """Write Parquet, CSV or JSON lines, chosen by the suffix of ``path``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ValidationError(
            f"cannot tell the output format of {path.name!r}: expected a name ending in {', '.join(OUTPUT_SUFFIXES)}",
            field="--out",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix == ".parquet":
        pq.write_table(table, tmp, compression="zstd")
    elif suffix == ".csv":
        pacsv.write_csv(_plain(table), tmp)
    else:
        with tmp.open("w", encoding="utf-8") as fh:
            for batch in _plain(table).to_batches(max_chunksize=65_536):
                for row in batch.to_pylist():
                    fh.write(json.dumps({k: _json_value(v) for k, v in row.items()}) + "\n")
    tmp.replace(path)
