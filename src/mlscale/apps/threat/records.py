"""Threat records: raw log columns to one checked batch of :data:`FLOW_SCHEMA` or :data:`DNS_SCHEMA`.

The format readers (:mod:`mlscale.data.formats`) give typed columns as each log
names them; :func:`flow_batch` and :func:`dns_batch` map them onto the threat
schemas and check every record: a bad address, a port out of 0..65535, a
negative counter or a missing time stops with a
:class:`~mlscale.errors.DataFormatError` naming the file and the line. Arrow
kernels only, a batch at a time (no Python loop over records).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.apps.threat.schema import DNS_SCHEMA, FLOW_SCHEMA, FLOW_TIME
from mlscale.errors import DataFormatError

__all__ = ["col", "dns_batch", "first_col", "flow_batch", "int_column", "seconds_to_time", "text_column"]

_IPV4 = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"
_IPV6 = r"^[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){1,7}(:(([0-9]{1,3}\.){3}[0-9]{1,3}))?(%[0-9A-Za-z._-]+)?$"


def _first_bad(mask: pa.Array | pa.ChunkedArray) -> int | None:
    """Index of the first True in a boolean array (nulls count as False)."""
    arr = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)
    hits = np.flatnonzero(arr)
    return int(hits[0]) if hits.size else None


def _check_ips(values: pa.Array, lines: np.ndarray, where: str, column: str, *, allow_null: bool = False) -> None:
    valid = pc.or_(pc.match_substring_regex(values, _IPV4), pc.match_substring_regex(values, _IPV6))
    bad = pc.invert(pc.fill_null(valid, allow_null))
    i = _first_bad(bad)
    if i is not None:
        value = values[i].as_py()
        raise DataFormatError(
            f"{column}: {'missing' if value is None else f'not an IP address: {value!r}'}",
            path=where,
            line=int(lines[i]) or None,
            hint="expected IPv4 (10.0.0.1) or IPv6 (fe80::1) text",
        )


def _check_range(
    values: pa.Array, lines: np.ndarray, where: str, column: str, low: int, high: int | None = None
) -> None:
    bad = pc.less(values, low) if high is None else pc.or_(pc.less(values, low), pc.greater(values, high))
    i = _first_bad(bad)
    if i is not None:
        expected = f">= {low}" if high is None else f"in {low}..{high}"
        raise DataFormatError(
            f"{column}: expected a number {expected}, found {values[i].as_py()}",
            path=where,
            line=int(lines[i]) or None,
        )


def col(batch: pa.RecordBatch, name: str) -> pa.Array | None:
    i = batch.schema.get_field_index(name)
    return batch.column(i) if i >= 0 else None


def int_column(values: pa.Array | None, n: int, target: pa.DataType | None = None, fill: int = 0) -> pa.Array:
    target = target or pa.int64()
    if values is None:
        return pa.array(np.full(n, fill), type=target)
    return pc.fill_null(values.cast(target), fill)


def text_column(values: pa.Array | None, n: int) -> pa.Array:
    if values is None:
        return pa.nulls(n, pa.string())
    out = values.cast(pa.string())
    # "(empty)" and "" both mean no value for labels and states.
    return pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.string()), out)


def seconds_to_time(values: pa.Array, lines: np.ndarray | None = None) -> pa.Array:
    """Epoch seconds (numbers or text) or ISO 8601 times to :data:`FLOW_TIME`.

    A NaN, infinite or out-of-range time raises a
    :class:`~mlscale.errors.DataFormatError` naming the record's line (from
    ``lines``, when given); the caller adds the file.
    """
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        try:
            # Epoch seconds as text (a Zeek log without its #types line), else ISO 8601 times.
            values = values.cast(pa.float64())
        except pa.ArrowInvalid:
            try:
                return values.cast(pa.timestamp("us", "UTC")).cast(pa.int64()).cast(FLOW_TIME)
            except pa.ArrowInvalid as err:
                raise DataFormatError(f"ts: expected epoch seconds or ISO 8601 times ({err})") from None
    if pa.types.is_timestamp(values.type):
        return values.cast(FLOW_TIME)
    seconds = values.cast(pa.float64())
    finite = np.isfinite(np.asarray(seconds.to_numpy(zero_copy_only=False), dtype=np.float64))
    # NaN / inf (and beyond int64 microseconds) cannot be a time: say which record, not an Arrow trace.
    ok = finite & (np.abs(np.nan_to_num(seconds.to_numpy(zero_copy_only=False), nan=0.0)) < 9.2e12)
    if seconds.null_count:
        ok |= np.asarray(seconds.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise DataFormatError(
            f"ts: expected finite epoch seconds, got {seconds[bad].as_py()!r}",
            line=None if lines is None else int(lines[bad]),
        )
    micros = pc.round(pc.multiply(seconds, 1e6))
    return micros.cast(pa.int64()).cast(FLOW_TIME)


def first_col(batch: pa.RecordBatch, names: tuple[str, ...]) -> pa.Array | None:
    for name in names:
        values = col(batch, name)
        if values is not None:
            return values
    return None


def flow_batch(
    where: str,
    lines: np.ndarray,
    *,
    flow_id: pa.Array | None,
    ts: pa.Array,
    src_ip: pa.Array,
    src_port: pa.Array | None,
    dst_ip: pa.Array,
    dst_port: pa.Array | None,
    proto: pa.Array,
    service: pa.Array | None,
    duration: pa.Array | None,
    src_bytes: pa.Array | None,
    dst_bytes: pa.Array | None,
    src_pkts: pa.Array | None,
    dst_pkts: pa.Array | None,
    state: pa.Array | None,
    label: pa.Array | None,
    detailed_label: pa.Array | None,
) -> pa.RecordBatch:
    """Assemble and check one batch of the flow schema."""
    n = len(lines)
    src_ip = pc.utf8_trim_whitespace(src_ip.cast(pa.string()))
    dst_ip = pc.utf8_trim_whitespace(dst_ip.cast(pa.string()))
    _check_ips(src_ip, lines, where, "source address")
    _check_ips(dst_ip, lines, where, "destination address")
    ports = []
    for name, values in (("source port", src_port), ("destination port", dst_port)):
        wide = int_column(values, n)
        _check_range(wide, lines, where, name, 0, 65535)
        ports.append(wide.cast(pa.int32()))
    counters = []
    for name, values in (
        ("source bytes", src_bytes),
        ("destination bytes", dst_bytes),
        ("source packets", src_pkts),
        ("destination packets", dst_pkts),
    ):
        wide = int_column(values, n)
        _check_range(wide, lines, where, name, 0)
        counters.append(wide)
    i = _first_bad(pc.is_null(ts))
    if i is not None:
        raise DataFormatError("missing start time", path=where, line=int(lines[i]) or None)
    dur = pa.array(np.zeros(n)) if duration is None else pc.fill_null(duration.cast(pa.float64()), 0.0)
    proto_text = pc.utf8_lower(pc.utf8_trim_whitespace(pc.fill_null(proto.cast(pa.string()), "")))
    arrays = [
        pa.array(lines),
        text_column(flow_id, n),
        ts,
        src_ip,
        ports[0],
        dst_ip,
        ports[1],
        proto_text,
        text_column(service, n),
        dur,
        *counters,
        text_column(state, n),
        text_column(label, n),
        text_column(detailed_label, n),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=FLOW_SCHEMA)


def dns_batch(
    where: str,
    lines: np.ndarray,
    *,
    flow_id: pa.Array | None,
    ts: pa.Array,
    client_ip: pa.Array,
    server_ip: pa.Array,
    query: pa.Array,
    qtype: pa.Array | None,
    rcode: pa.Array | None,
    frame_len: pa.Array | None,
    label: pa.Array | None,
    detailed_label: pa.Array | None,
) -> pa.RecordBatch:
    n = len(lines)
    client_ip = pc.utf8_trim_whitespace(client_ip.cast(pa.string()))
    server_ip = pc.utf8_trim_whitespace(server_ip.cast(pa.string()))
    _check_ips(client_ip, lines, where, "client address")
    _check_ips(server_ip, lines, where, "server address", allow_null=True)
    i = _first_bad(pc.is_null(ts))
    if i is not None:
        raise DataFormatError("missing time", path=where, line=int(lines[i]) or None)
    name = pc.utf8_lower(pc.fill_null(query.cast(pa.string()), ""))
    name = pc.replace_substring_regex(name, r"\.$", "")
    arrays = [
        pa.array(lines),
        text_column(flow_id, n),
        ts,
        client_ip,
        server_ip,
        name,
        int_column(qtype, n, pa.int32(), -1),
        int_column(rcode, n, pa.int32(), -1),
        int_column(frame_len, n, pa.int32(), -1),
        text_column(label, n),
        text_column(detailed_label, n),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=DNS_SCHEMA)
