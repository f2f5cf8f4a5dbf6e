"""Network logs to the flow and DNS schemas (:mod:`mlscale.apps.threat.schema`), streamed, as Parquet.

Formats, recognised from their first bytes (never the file name):

============== ================================================================ =======
format         what it is                                                       kind
============== ================================================================ =======
``zeek-conn``  Zeek ``conn.log``, TSV (``#fields`` header) or JSON lines        flows
``nfdump-csv`` ``nfdump -r FILE -o csv`` output; the ``Summary`` trailer is      flows
               dropped
``nfcapd``     nfdump's binary capture files, read through the ``nfdump`` tool  flows
               (Debian/Ubuntu: ``apt-get install nfdump``), run with ``TZ=UTC``
``argus``      Argus ``.binetflow`` CSV (CTU-13 / Stratosphere)                 flows
``zeek-dns``   Zeek ``dns.log``, TSV or JSON lines                              dns
``tshark-dns`` ``tshark -T fields -E header=y -E separator=,`` CSV with at least dns
               ``frame.time_epoch``, ``ip.src``, ``ip.dst``, ``dns.qry.name``
               (optional: ``frame.len``, ``dns.qry.type``, ``dns.flags.rcode``,
               ``dns.flags.response``)
``parquet``    Parquet already in one of the two schemas                        either
============== ================================================================ =======

Labels, when the log has them, go to ``label`` / ``detailed_label`` and are
never used as features. Every record is checked: a bad address, a port out of
0..65535, a negative counter or a missing required column stops the ingest with
a :class:`~mlscale.errors.DataFormatError` naming the file, the line and the
fix. Flows are converted with Arrow kernels, a batch at a time (no Python loop
over records); memory stays bounded by the batch size, except for Argus files,
which the shared reader loads whole.

>>> import pathlib, tempfile
>>> text = ("ts,te,td,sa,da,sp,dp,pr,flg,ipkt,ibyt,opkt,obyt\\n"
...         "2018-01-12 15:37:30,2018-01-12 15:37:31,1.0,10.0.0.1,10.0.0.2,52324,443,TCP,.AP.SF,3,180,0,0\\n"
...         "Summary\\nflows,bytes\\n1,180\\n")
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp, "flows.csv")
...     _ = path.write_text(text)
...     table = read_flows(path)
>>> table.column("dst_port").to_pylist(), table.column("proto").to_pylist(), table.column("line").to_pylist()
([443], ['tcp'], [2])
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import subprocess
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlscale.apps.threat.schema import DNS_SCHEMA, FLOW_SCHEMA, FLOW_TIME
from mlscale.data.formats._streams import ChunkStream, iter_chunks, open_binary, stop_at_line
from mlscale.data.formats.argus import read_binetflow
from mlscale.data.formats.nfdump import NFDUMP_TYPES
from mlscale.data.formats.zeek import ZeekLog
from mlscale.errors import DataError, DataFormatError, DependencyError

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "FORMATS",
    "Format",
    "IngestReport",
    "Kind",
    "SourceFile",
    "detect_format",
    "ingest",
    "iter_dns",
    "iter_flows",
    "iter_records",
    "list_sources",
    "read_dns",
    "read_flows",
]

DEFAULT_BATCH_ROWS = 1 << 18
Format = Literal["zeek-conn", "nfdump-csv", "nfcapd", "argus", "zeek-dns", "tshark-dns", "parquet"]
Kind = Literal["flows", "dns"]
FORMATS: tuple[str, ...] = ("zeek-conn", "nfdump-csv", "nfcapd", "argus", "zeek-dns", "tshark-dns", "parquet")
_KIND: dict[str, Kind] = {
    "zeek-conn": "flows",
    "nfdump-csv": "flows",
    "nfcapd": "flows",
    "argus": "flows",
    "zeek-dns": "dns",
    "tshark-dns": "dns",
}
_NFCAPD_MAGIC = b"\x0c\xa5"
_PARQUET_MAGIC = b"PAR1"
_IPV4 = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"
_IPV6 = r"^[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){1,7}(:(([0-9]{1,3}\.){3}[0-9]{1,3}))?(%[0-9A-Za-z._-]+)?$"
_TSHARK_REQUIRED = ("frame.time_epoch", "dns.qry.name")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file, its recognised format and the kind of records it holds."""

    path: Path
    format: Format
    kind: Kind


# -- detection ----------------------------------------------------------------------------


# What a cut-short or corrupt gzip stream raises while it is read.
_BROKEN_STREAM = (EOFError, zlib.error, gzip.BadGzipFile)


def _head(path: Path, size: int = 65_536) -> bytes:
    try:
        with open_binary(path) as stream:
            return stream.read(size)
    except _BROKEN_STREAM as err:
        raise DataFormatError(
            f"corrupt or truncated compressed file ({err})",
            path=str(path),
            hint="the download or copy was probably cut short: fetch the file again",
        ) from None


def detect_format(path: Path) -> SourceFile:
    """What ``path`` holds, from its first bytes; an unknown layout raises a DataFormatError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open("rb") as raw:
        magic = raw.read(4)
    if magic.startswith(_NFCAPD_MAGIC):
        return SourceFile(path, "nfcapd", "flows")
    if magic == _PARQUET_MAGIC:
        names = pq.read_schema(path).names
        if set(FLOW_SCHEMA.names) <= set(names):
            return SourceFile(path, "parquet", "flows")
        if set(DNS_SCHEMA.names) <= set(names):
            return SourceFile(path, "parquet", "dns")
        raise DataFormatError(
            f"Parquet, but neither in the threat flow schema nor the DNS schema (columns: {', '.join(names[:12])})",
            path=str(path),
            hint="make it with `mlscale threat ingest`",
        )
    head = _head(path)
    text = head.lstrip().decode("utf-8", "replace")
    first = text.splitlines()[0] if text else ""
    if not first:
        raise DataFormatError("empty file", path=str(path))
    if first.startswith(("#separator", "#fields", "#set_separator", "#path")):
        fields: list[str] = []
        log_path = ""
        for line in text.splitlines():
            if line.startswith("#fields"):
                fields = line.split("\t")[1:] if "\t" in line else line.split()[1:]
            elif line.startswith("#path"):
                log_path = line.split()[-1]
        zkind = _zeek_kind(fields, log_path)
        return SourceFile(path, "zeek-dns" if zkind == "dns" else "zeek-conn", zkind)
    if first.startswith("{"):
        kind: Kind = "dns" if '"query"' in first else "flows"
        return SourceFile(path, "zeek-dns" if kind == "dns" else "zeek-conn", kind)
    if first.startswith("ts,te,"):
        return SourceFile(path, "nfdump-csv", "flows")
    if first.startswith("StartTime,"):
        return SourceFile(path, "argus", "flows")
    names = [n.strip().strip('"') for n in first.split(",")]
    if all(n in names for n in _TSHARK_REQUIRED):
        return SourceFile(path, "tshark-dns", "dns")
    raise DataFormatError(
        f"cannot tell the format from the first line {first[:80]!r}",
        path=str(path),
        line=1,
        hint="expected a Zeek conn/dns log, `nfdump -o csv` output, an nfcapd file, an Argus "
        "binetflow CSV or a tshark fields CSV with a header",
    )


def _zeek_kind(fields: list[str], log_path: str) -> Kind:
    return "dns" if "query" in fields or log_path == "dns" else "flows"


def list_sources(spec: Path, kind: Kind | None = None) -> list[SourceFile]:
    """The recognised files of ``spec`` (a file or a folder, searched recursively) of one kind.

    In a folder, files that are not network logs (READMEs, licences) are skipped; a single
    file that is not recognised is an error. Raises :class:`~mlscale.errors.DataError` when
    nothing of the asked kind is found.
    """
    spec = Path(spec)
    if spec.is_dir():
        found: list[SourceFile] = []
        for path in sorted(p for p in spec.rglob("*") if p.is_file() and not p.name.startswith(".")):
            try:
                src = detect_format(path)
            except DataFormatError:
                continue
            if kind is None or src.kind == kind:
                found.append(src)
    elif spec.exists():
        src = detect_format(spec)
        if kind is not None and src.kind != kind:
            raise DataError(f"{spec}: holds {src.kind} records ({src.format}), expected {kind}")
        found = [src]
    else:
        raise DataError(f"{spec}: no such file or folder")
    if not found:
        raise DataError(
            f"{spec}: no { ({'flows': 'flow', 'dns': 'DNS'}[kind] if kind else 'flow or DNS') } logs found",
            hint="expected Zeek conn/dns logs, nfdump CSV or nfcapd files, Argus binetflow, tshark CSV "
            "or Parquet from `mlscale threat ingest`",
        )
    return found


# -- checks ---------------------------------------------------------------------------------


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


def _missing(names: list[str], required: tuple[str, ...], where: str, what: str, line: int | None) -> None:
    absent = [n for n in required if n not in names]
    if absent:
        raise DataFormatError(
            f"{what}: missing column(s) {', '.join(absent)}",
            path=where,
            line=line,
            hint=f"expected the columns {', '.join(required)}; found {', '.join(names[:20])}",
        )


_CONVERSION = re.compile(r"column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'$", re.S)


def _csv_error(message: str, names: list[str], source: Path | None) -> tuple[str, int | None]:
    """A readable reason for an Arrow CSV error, and its line when the file can be searched."""
    message = message.replace("CSV parse error: ", "").strip()
    m = _CONVERSION.search(message)
    if not m:
        return message, None
    index, target, value = int(m.group(1)), m.group(2), m.group(3)
    name = names[index] if index < len(names) else f"#{index}"
    reason = f"column {name!r}: expected {target}, found {value!r}"
    if source is None:
        return reason, None
    # Only reached on a failure: find the line by scanning the text once.
    with open_binary(source) as stream:
        for number, raw in enumerate(stream, start=1):
            if number == 1:
                continue
            fields = raw.decode("utf-8", "replace").rstrip("\r\n").split(",")
            if index < len(fields) and fields[index].strip('"') == value:
                return reason, number
    return reason, None


# -- column helpers ---------------------------------------------------------------------------


def _col(batch: pa.RecordBatch, name: str) -> pa.Array | None:
    i = batch.schema.get_field_index(name)
    return batch.column(i) if i >= 0 else None


def _int(values: pa.Array | None, n: int, target: pa.DataType | None = None, fill: int = 0) -> pa.Array:
    target = target or pa.int64()
    if values is None:
        return pa.array(np.full(n, fill), type=target)
    return pc.fill_null(values.cast(target), fill)


def _text(values: pa.Array | None, n: int) -> pa.Array:
    if values is None:
        return pa.nulls(n, pa.string())
    out = values.cast(pa.string())
    # "(empty)" and "" both mean no value for labels and states.
    return pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.string()), out)


def _seconds_to_time(values: pa.Array, lines: np.ndarray | None = None) -> pa.Array:
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


def _lines(start: int, n: int, first_line: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.int64) + first_line


def _flow_batch(
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
        wide = _int(values, n)
        _check_range(wide, lines, where, name, 0, 65535)
        ports.append(wide.cast(pa.int32()))
    counters = []
    for name, values in (
        ("source bytes", src_bytes),
        ("destination bytes", dst_bytes),
        ("source packets", src_pkts),
        ("destination packets", dst_pkts),
    ):
        wide = _int(values, n)
        _check_range(wide, lines, where, name, 0)
        counters.append(wide)
    i = _first_bad(pc.is_null(ts))
    if i is not None:
        raise DataFormatError("missing start time", path=where, line=int(lines[i]) or None)
    dur = pa.array(np.zeros(n)) if duration is None else pc.fill_null(duration.cast(pa.float64()), 0.0)
    proto_text = pc.utf8_lower(pc.utf8_trim_whitespace(pc.fill_null(proto.cast(pa.string()), "")))
    arrays = [
        pa.array(lines),
        _text(flow_id, n),
        ts,
        src_ip,
        ports[0],
        dst_ip,
        ports[1],
        proto_text,
        _text(service, n),
        dur,
        *counters,
        _text(state, n),
        _text(label, n),
        _text(detailed_label, n),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=FLOW_SCHEMA)


# -- flows: Zeek ------------------------------------------------------------------------------


def _zeek_first_record_line(path: Path) -> int:
    """1-based line of the first record of a TSV log (after its ``#`` header), 1 for JSON."""
    with open_binary(path) as stream:
        for number, raw in enumerate(stream, start=1):
            if raw.strip() and not raw.startswith(b"#"):
                return number
    return 1


def _zeek_fields_line(path: Path) -> int | None:
    with open_binary(path) as stream:
        for number, raw in enumerate(stream, start=1):
            if raw.startswith(b"#fields"):
                return number
            if not raw.startswith(b"#"):
                return None
    return None


_ZEEK_CONN_REQUIRED = ("ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto")
_ZEEK_DNS_REQUIRED = ("ts", "id.orig_h", "id.resp_h", "query")
_LABEL_NAMES = ("label", "Label")
_DETAILED_NAMES = ("detailedlabel", "detailed_label", "detailed-label")


def _first_col(batch: pa.RecordBatch, names: tuple[str, ...]) -> pa.Array | None:
    for name in names:
        values = _col(batch, name)
        if values is not None:
            return values
    return None


def _zeek_batches(
    path: Path, batch_rows: int, required: tuple[str, ...], what: str
) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
    log = ZeekLog(path, batch_rows=batch_rows)
    names = log.schema.names
    _missing(list(names), required, str(path), what, None if log.is_json else _zeek_fields_line(path))
    first = 1 if log.is_json else _zeek_first_record_line(path)
    done = 0
    for batch in log:
        yield batch, _lines(done, batch.num_rows, first)
        done += batch.num_rows


def _iter_zeek_conn(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    where = str(path)
    for b, lines in _zeek_batches(path, batch_rows, _ZEEK_CONN_REQUIRED, "not a Zeek conn log"):
        orig = _col(b, "orig_ip_bytes")
        resp = _col(b, "resp_ip_bytes")
        yield _flow_batch(
            where,
            lines,
            flow_id=_col(b, "uid"),
            ts=_seconds_to_time(b.column(b.schema.get_field_index("ts")), lines),
            src_ip=b.column(b.schema.get_field_index("id.orig_h")),
            src_port=_col(b, "id.orig_p"),
            dst_ip=b.column(b.schema.get_field_index("id.resp_h")),
            dst_port=_col(b, "id.resp_p"),
            proto=b.column(b.schema.get_field_index("proto")),
            service=_col(b, "service"),
            duration=_col(b, "duration"),
            src_bytes=orig if orig is not None else _col(b, "orig_bytes"),
            dst_bytes=resp if resp is not None else _col(b, "resp_bytes"),
            src_pkts=_col(b, "orig_pkts"),
            dst_pkts=_col(b, "resp_pkts"),
            state=_col(b, "conn_state"),
            label=_first_col(b, _LABEL_NAMES),
            detailed_label=_first_col(b, _DETAILED_NAMES),
        )


# -- flows: nfdump ------------------------------------------------------------------------------


_NFDUMP_REQUIRED = ("ts", "td", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt")


def _nfdump_batches(
    stream: IO[bytes], where: str, batch_rows: int, source: Path | None = None
) -> Iterator[pa.RecordBatch]:
    header = stream.readline().decode("utf-8", "replace").strip()
    names = header.split(",")
    if names[:2] != ["ts", "te"]:
        raise DataFormatError(
            f"expected nfdump's CSV header 'ts,te,td,sa,da,...', found {header[:60]!r}",
            path=where,
            line=1,
            hint="make the file with `nfdump -r FILE -o csv`",
        )
    _missing(names, _NFDUMP_REQUIRED, where, "not nfdump CSV", 1)
    types = {name: NFDUMP_TYPES[name] for name in names if name in NFDUMP_TYPES}
    types.update({name: pa.string() for name in names if name not in NFDUMP_TYPES})
    chunks = stop_at_line(iter_chunks(stream), b"Summary")
    try:
        reader = pacsv.open_csv(
            ChunkStream(chunks),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 22),
            parse_options=pacsv.ParseOptions(quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                timestamp_parsers=["%Y-%m-%d %H:%M:%S", pacsv.ISO8601],
                include_columns=[n for n in names if n in _NFDUMP_COLUMNS],
            ),
        )
        done = 0
        for raw in reader:
            for start in range(0, raw.num_rows, batch_rows):
                b = raw.slice(start, batch_rows)
                lines = _lines(done, b.num_rows, 2)
                done += b.num_rows
                yield _flow_batch(
                    where,
                    lines,
                    flow_id=None,
                    ts=b.column(b.schema.get_field_index("ts")).cast(FLOW_TIME),
                    src_ip=b.column(b.schema.get_field_index("sa")),
                    src_port=_col(b, "sp"),
                    dst_ip=b.column(b.schema.get_field_index("da")),
                    dst_port=_col(b, "dp"),
                    proto=b.column(b.schema.get_field_index("pr")),
                    service=None,
                    duration=_col(b, "td"),
                    src_bytes=_col(b, "ibyt"),
                    dst_bytes=_col(b, "obyt"),
                    src_pkts=_col(b, "ipkt"),
                    dst_pkts=_col(b, "opkt"),
                    state=_col(b, "flg"),
                    label=None,
                    detailed_label=None,
                )
    except pa.ArrowInvalid as err:
        reason, line = _csv_error(str(err), names, source)
        raise DataFormatError(
            reason, path=where, line=line, hint="expected nfdump CSV rows (`nfdump -o csv`) up to the 'Summary' trailer"
        ) from None


_NFDUMP_COLUMNS = frozenset({"ts", "td", "sa", "da", "sp", "dp", "pr", "flg", "ipkt", "ibyt", "opkt", "obyt"})


def _iter_nfdump_csv(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    with open_binary(path) as stream:
        yield from _nfdump_batches(stream, str(path), batch_rows, path)


def _iter_nfcapd(path: Path, batch_rows: int, nfdump: str = "nfdump") -> Iterator[pa.RecordBatch]:
    tool = shutil.which(nfdump)
    if tool is None:
        raise DependencyError(
            f"{path}: reading nfcapd files needs the nfdump tool ({nfdump!r}), which is not installed",
            hint="install it (Debian/Ubuntu: `apt-get install nfdump`, macOS: `brew install nfdump`), "
            "or convert the file elsewhere with `nfdump -r FILE -o csv > FILE.csv` and ingest the CSV",
        )
    env = dict(os.environ, TZ="UTC")
    with subprocess.Popen(
        [tool, "-r", str(path), "-o", "csv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            yield from _nfdump_batches(proc.stdout, f"{path} (via nfdump)", batch_rows)
        except DataFormatError:
            proc.kill()
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            proc.wait()
            if err:
                raise DataFormatError(f"nfdump cannot read it: {err.splitlines()[-1]}", path=str(path)) from None
            raise
        proc.stdout.read()
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        if proc.wait() != 0:
            raise DataFormatError(
                f"nfdump failed (exit {proc.returncode}): {err.splitlines()[-1] if err else 'no message'}",
                path=str(path),
            )


# -- flows: Argus ----------------------------------------------------------------------------------


_ARGUS_REQUIRED = ("StartTime", "Proto", "SrcAddr", "Sport", "DstAddr", "Dport", "TotPkts", "TotBytes")


def _iter_argus(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    where = str(path)
    table = read_binetflow(path)
    _missing(table.column_names, _ARGUS_REQUIRED, where, "not an Argus binetflow file", 1)
    for offset in range(0, max(table.num_rows, 1), batch_rows):
        t = table.slice(offset, batch_rows).combine_chunks()
        if t.num_rows == 0:
            return
        b = t.to_batches()[0]
        lines = _lines(offset, b.num_rows, 2)
        tot_bytes = _int(_col(b, "TotBytes"), b.num_rows)
        tot_pkts = _int(_col(b, "TotPkts"), b.num_rows)
        src_b = _col(b, "SrcBytes")
        src_bytes = tot_bytes if src_b is None else _int(src_b, b.num_rows)
        src_p = _col(b, "SrcPkts")
        src_pkts = tot_pkts if src_p is None else _int(src_p, b.num_rows)
        yield _flow_batch(
            where,
            lines,
            flow_id=None,
            ts=b.column(b.schema.get_field_index("StartTime")).cast(FLOW_TIME),
            src_ip=b.column(b.schema.get_field_index("SrcAddr")),
            src_port=_col(b, "Sport"),
            dst_ip=b.column(b.schema.get_field_index("DstAddr")),
            dst_port=_col(b, "Dport"),
            proto=b.column(b.schema.get_field_index("Proto")),
            service=None,
            duration=_col(b, "Dur"),
            src_bytes=src_bytes,
            dst_bytes=pc.max_element_wise(pc.subtract(tot_bytes, src_bytes), 0),
            src_pkts=src_pkts,
            dst_pkts=pc.max_element_wise(pc.subtract(tot_pkts, src_pkts), 0),
            state=_col(b, "State"),
            label=_col(b, "Label"),
            detailed_label=None,
        )


# -- DNS -------------------------------------------------------------------------------------------


def _dns_batch(
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
        _text(flow_id, n),
        ts,
        client_ip,
        server_ip,
        name,
        _int(qtype, n, pa.int32(), -1),
        _int(rcode, n, pa.int32(), -1),
        _int(frame_len, n, pa.int32(), -1),
        _text(label, n),
        _text(detailed_label, n),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=DNS_SCHEMA)


def _iter_zeek_dns(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    where = str(path)
    for b, lines in _zeek_batches(path, batch_rows, _ZEEK_DNS_REQUIRED, "not a Zeek dns log"):
        yield _dns_batch(
            where,
            lines,
            flow_id=_col(b, "uid"),
            ts=_seconds_to_time(b.column(b.schema.get_field_index("ts")), lines),
            client_ip=b.column(b.schema.get_field_index("id.orig_h")),
            server_ip=b.column(b.schema.get_field_index("id.resp_h")),
            query=b.column(b.schema.get_field_index("query")),
            qtype=_col(b, "qtype"),
            rcode=_col(b, "rcode"),
            frame_len=None,
            label=_first_col(b, _LABEL_NAMES),
            detailed_label=_first_col(b, _DETAILED_NAMES),
        )


_TSHARK_TYPES = {
    "frame.time_epoch": pa.float64(),
    "frame.len": pa.int64(),
    "ip.src": pa.string(),
    "ip.dst": pa.string(),
    "ipv6.src": pa.string(),
    "ipv6.dst": pa.string(),
    "dns.qry.name": pa.string(),
    "dns.qry.type": pa.int64(),
    "dns.flags.rcode": pa.int64(),
    "dns.flags.response": pa.string(),
}


def _iter_tshark(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    where = str(path)
    with open_binary(path) as stream:
        header = stream.readline().decode("utf-8", "replace").strip()
    names = [n.strip().strip('"') for n in header.split(",")]
    _missing(names, _TSHARK_REQUIRED, where, "not a tshark DNS fields CSV", 1)
    if not any(n in names for n in ("ip.src", "ipv6.src")) or not any(n in names for n in ("ip.dst", "ipv6.dst")):
        raise DataFormatError(
            "not a tshark DNS fields CSV: missing ip.src/ip.dst (or ipv6.src/ipv6.dst)",
            path=where,
            line=1,
            hint="export with -e ip.src -e ip.dst",
        )
    types = {n: _TSHARK_TYPES.get(n, pa.string()) for n in names}
    try:
        with open_binary(path) as stream:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=1 << 22),
                convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True, null_values=[""]),
            )
            done = 0
            for raw in reader:
                for start in range(0, raw.num_rows, batch_rows):
                    b = raw.slice(start, batch_rows)
                    lines = _lines(done, b.num_rows, 2)
                    done += b.num_rows
                    yield _tshark_batch(b, lines, where)
    except pa.ArrowInvalid as err:
        reason, line = _csv_error(str(err), names, path)
        raise DataFormatError(
            reason, path=where, line=line, hint="expected `tshark -T fields -E header=y -E separator=,` output"
        ) from None


def _tshark_batch(b: pa.RecordBatch, lines: np.ndarray, where: str) -> pa.RecordBatch:
    src = _first_col(b, ("ip.src",))
    src6 = _first_col(b, ("ipv6.src",))
    dst = _first_col(b, ("ip.dst",))
    dst6 = _first_col(b, ("ipv6.dst",))
    src = src6 if src is None else src if src6 is None else pc.coalesce(src, src6)
    dst = dst6 if dst is None else dst if dst6 is None else pc.coalesce(dst, dst6)
    assert src is not None
    assert dst is not None
    response = _col(b, "dns.flags.response")
    if response is None:
        # Spot captured responses only (`dns.flags.response == 1`): the client is the destination.
        is_response = pa.array(np.ones(b.num_rows, dtype=bool))
    else:
        is_response = pc.fill_null(pc.is_in(pc.utf8_lower(response), pa.array(["1", "true"])), False)
    return _dns_batch(
        where,
        lines,
        flow_id=None,
        ts=_seconds_to_time(b.column(b.schema.get_field_index("frame.time_epoch")), lines),
        client_ip=pc.if_else(is_response, dst, src),
        server_ip=pc.if_else(is_response, src, dst),
        query=b.column(b.schema.get_field_index("dns.qry.name")),
        qtype=_col(b, "dns.qry.type"),
        rcode=_col(b, "dns.flags.rcode"),
        frame_len=_col(b, "frame.len"),
        label=None,
        detailed_label=None,
    )


# -- Parquet -----------------------------------------------------------------------------------------


def _iter_parquet(path: Path, batch_rows: int, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    import pyarrow.dataset as pads  # not at import: it pulls in pandas, and the CLI starts with every app

    dataset = pads.dataset(str(path), format="parquet")
    # Read ahead one batch of one file at a time: memory stays one batch, as for the text formats.
    batches = dataset.to_batches(columns=schema.names, batch_size=batch_rows, batch_readahead=1, fragment_readahead=1)
    for batch in batches:
        yield pa.RecordBatch.from_arrays([batch.column(i).cast(f.type) for i, f in enumerate(schema)], schema=schema)


# -- public entry points -------------------------------------------------------------------------------


def _flow_reader(src: SourceFile, nfdump: str) -> Callable[[Path, int], Iterator[pa.RecordBatch]]:
    if src.format == "zeek-conn":
        return _iter_zeek_conn
    if src.format == "nfdump-csv":
        return _iter_nfdump_csv
    if src.format == "nfcapd":
        return lambda p, n: _iter_nfcapd(p, n, nfdump)
    if src.format == "argus":
        return _iter_argus
    return lambda p, n: _iter_parquet(p, n, FLOW_SCHEMA)


def iter_records(
    src: SourceFile, *, batch_rows: int = DEFAULT_BATCH_ROWS, nfdump: str = "nfdump"
) -> Iterator[pa.RecordBatch]:
    """Batches of one recognised file, in the flow or DNS schema (``src.kind``)."""
    try:
        if src.kind == "flows":
            yield from _flow_reader(src, nfdump)(src.path, batch_rows)
        elif src.format == "zeek-dns":
            yield from _iter_zeek_dns(src.path, batch_rows)
        elif src.format == "tshark-dns":
            yield from _iter_tshark(src.path, batch_rows)
        else:
            yield from _iter_parquet(src.path, batch_rows, DNS_SCHEMA)
    except _BROKEN_STREAM as err:
        raise DataFormatError(
            f"corrupt or truncated compressed file ({err})",
            path=str(src.path),
            hint="the download or copy was probably cut short: fetch the file again",
        ) from None
    except DataFormatError as err:
        if err.path is not None:
            raise
        raise DataFormatError(err.reason, path=str(src.path), line=err.line, hint=err.hint) from None
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise DataFormatError(f"cannot read the records ({err})", path=str(src.path)) from None


def iter_flows(
    spec: Path | str, *, batch_rows: int = DEFAULT_BATCH_ROWS, nfdump: str = "nfdump"
) -> Iterator[pa.RecordBatch]:
    """Flow-schema batches from a log file, a Parquet file or a folder of either (streamed)."""
    for src in list_sources(Path(spec), "flows"):
        yield from iter_records(src, batch_rows=batch_rows, nfdump=nfdump)


def iter_dns(spec: Path | str, *, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """DNS-schema batches from a Zeek dns log, tshark CSV, Parquet, or a folder of them."""
    for src in list_sources(Path(spec), "dns"):
        yield from iter_records(src, batch_rows=batch_rows)


def read_flows(spec: Path | str, *, nfdump: str = "nfdump") -> pa.Table:
    """Every flow of ``spec`` as one table of :data:`~mlscale.apps.threat.schema.FLOW_SCHEMA`."""
    return pa.Table.from_batches(list(iter_flows(spec, nfdump=nfdump)), schema=FLOW_SCHEMA)


def read_dns(spec: Path | str) -> pa.Table:
    """Every DNS record of ``spec`` as one table of :data:`~mlscale.apps.threat.schema.DNS_SCHEMA`."""
    return pa.Table.from_batches(list(iter_dns(spec)), schema=DNS_SCHEMA)


@dataclass
class IngestReport:
    """What :func:`ingest` wrote: rows per kind, labelled rows, and each input file's format."""

    out: Path
    flows: int = 0
    dns: int = 0
    labelled: int = 0
    files: list[tuple[str, str, int]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{fmt:11} {rows:>12,}  {path}" for path, fmt, rows in self.files]
        lines.append(f"{self.flows:,} flows, {self.dns:,} DNS records ({self.labelled:,} labelled) -> {self.out}")
        return "\n".join(lines)


def ingest(
    spec: Path | str,
    out: Path | str,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    nfdump: str = "nfdump",
    part_rows: int = 1 << 23,
) -> IngestReport:
    """Convert the logs of ``spec`` (a file or a folder) to Parquet parts under ``out``.

    Flows go to ``out/flows/part-NNNNN.parquet``, DNS records to ``out/dns/``; a part
    holds at most ``part_rows`` rows. Writing is streamed (bounded memory) and each
    part becomes visible only once complete; a failed run (a bad file, a full disk)
    removes the parts it wrote, so the folders hold only what earlier runs completed.
    """
    out = Path(out)
    sources = list_sources(Path(spec))
    report = IngestReport(out=out)
    writers: dict[str, _PartWriter] = {}
    try:
        for src in sources:
            kind = src.kind
            if kind not in writers:
                writers[kind] = _PartWriter(out / kind, FLOW_SCHEMA if kind == "flows" else DNS_SCHEMA, part_rows)
            rows = 0
            for batch in iter_records(src, batch_rows=batch_rows, nfdump=nfdump):
                writers[kind].write(batch)
                rows += batch.num_rows
                report.labelled += batch.num_rows - batch.column(batch.schema.get_field_index("label")).null_count
            report.files.append((str(src.path), src.format, rows))
            if kind == "flows":
                report.flows += rows
            else:
                report.dns += rows
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    for writer in writers.values():
        writer.close()
    return report


class _PartWriter:
    """Parquet parts of at most ``part_rows`` rows, each written to a temporary name and renamed."""

    def __init__(self, folder: Path, schema: pa.Schema, part_rows: int) -> None:
        self.folder = folder
        self.schema = schema
        self.part_rows = part_rows
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None
        self._rows = 0
        self._index = 0
        self._done: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)
        existing = sorted(folder.glob("part-*.parquet"))
        if existing:
            self._index = int(existing[-1].stem.split("-")[1]) + 1

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._tmp = self.folder / f".part-{self._index:05d}.parquet.tmp"
            self._writer = pq.ParquetWriter(str(self._tmp), self.schema, compression="zstd")
        self._writer.write_batch(batch)
        self._rows += batch.num_rows
        if self._rows >= self.part_rows:
            self._finish()

    def _finish(self) -> None:
        if self._writer is None or self._tmp is None:
            return
        self._writer.close()
        done = self.folder / f"part-{self._index:05d}.parquet"
        self._tmp.rename(done)
        self._done.append(done)
        self._writer, self._tmp, self._rows = None, None, 0
        self._index += 1

    def close(self) -> None:
        self._finish()

    def abort(self) -> None:
        """Drop the part being written and those this run completed (a failed run leaves nothing)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):  # closing flushes: fails again on a full disk
                self._writer.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        for path in self._done:
            path.unlink(missing_ok=True)
        self._writer, self._tmp, self._rows, self._done = None, None, 0, []
