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

The formats are read by the data stage (:mod:`mlscale.data.formats`: ``sniff``,
``zeek``, ``nfdump``, ``argus``, ``tshark``); this module maps each one's columns
onto the threat schemas (:mod:`mlscale.apps.threat.records`) and drives the
ingest. Labels, when the log has them, go to ``label`` / ``detailed_label`` and
are never used as features. Every record is checked: a bad address, a port out
of 0..65535, a negative counter or a missing required column stops the ingest
with a :class:`~mlscale.errors.DataFormatError` naming the file, the line and
the fix. Flows are converted with Arrow kernels, a batch at a time (no Python
loop over records); memory stays bounded by the batch size, except for Argus
files, which the shared reader loads whole.

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

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlscale.apps.threat.records import col, dns_batch, first_col, flow_batch, int_column, seconds_to_time
from mlscale.apps.threat.schema import DNS_SCHEMA, FLOW_SCHEMA, FLOW_TIME
from mlscale.data.formats.argus import read_binetflow
from mlscale.data.formats.columns import line_numbers, require_columns
from mlscale.data.formats.nfdump import iter_nfcapd, iter_nfdump_file
from mlscale.data.formats.sniff import (
    BROKEN_STREAM,
    LOG_FORMATS,
    TSHARK_DNS_REQUIRED,
    LogFormat,
    first_line,
    sniff_log,
)
from mlscale.data.formats.tshark import iter_tshark_fields, tshark_columns
from mlscale.data.formats.zeek import ZeekLog
from mlscale.data.writers import PartWriter
from mlscale.errors import DataError, DataFormatError, DatasetNotFoundError

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
    "resolve_data",
]

DEFAULT_BATCH_ROWS = 1 << 18
Format = LogFormat
Kind = Literal["flows", "dns"]
FORMATS: tuple[str, ...] = LOG_FORMATS
_KIND: dict[str, Kind] = {
    "zeek-conn": "flows",
    "nfdump-csv": "flows",
    "nfcapd": "flows",
    "argus": "flows",
    "zeek-dns": "dns",
    "tshark-dns": "dns",
}


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file, its recognised format and the kind of records it holds."""

    path: Path
    format: Format
    kind: Kind


# -- detection ----------------------------------------------------------------------------


def detect_format(path: Path) -> SourceFile:
    """What ``path`` holds, from its first bytes; an unknown layout raises a DataFormatError."""
    path = Path(path)
    fmt = sniff_log(path)
    if fmt == "parquet":
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
    if fmt is None:
        raise DataFormatError(
            f"cannot tell the format from the first line {first_line(path)[:80]!r}",
            path=str(path),
            line=1,
            hint="expected a Zeek conn/dns log, `nfdump -o csv` output, an nfcapd file, an Argus "
            "binetflow CSV or a tshark fields CSV with a header",
        )
    return SourceFile(path, fmt, _KIND[fmt])


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


# -- flows: Zeek ------------------------------------------------------------------------------


_ZEEK_CONN_REQUIRED = ("ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto")
_ZEEK_DNS_REQUIRED = ("ts", "id.orig_h", "id.resp_h", "query")
_LABEL_NAMES = ("label", "Label")
_DETAILED_NAMES = ("detailedlabel", "detailed_label", "detailed-label")


def _zeek_batches(
    path: Path, batch_rows: int, required: tuple[str, ...], what: str
) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
    log = ZeekLog(path, batch_rows=batch_rows)
    require_columns(list(log.schema.names), required, str(path), what, log.fields_line)
    first = log.first_record_line
    done = 0
    for batch in log:
        yield batch, line_numbers(done, batch.num_rows, first)
        done += batch.num_rows


def _iter_zeek_conn(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    where = str(path)
    for b, lines in _zeek_batches(path, batch_rows, _ZEEK_CONN_REQUIRED, "not a Zeek conn log"):
        orig = col(b, "orig_ip_bytes")
        resp = col(b, "resp_ip_bytes")
        yield flow_batch(
            where,
            lines,
            flow_id=col(b, "uid"),
            ts=seconds_to_time(b.column(b.schema.get_field_index("ts")), lines),
            src_ip=b.column(b.schema.get_field_index("id.orig_h")),
            src_port=col(b, "id.orig_p"),
            dst_ip=b.column(b.schema.get_field_index("id.resp_h")),
            dst_port=col(b, "id.resp_p"),
            proto=b.column(b.schema.get_field_index("proto")),
            service=col(b, "service"),
            duration=col(b, "duration"),
            src_bytes=orig if orig is not None else col(b, "orig_bytes"),
            dst_bytes=resp if resp is not None else col(b, "resp_bytes"),
            src_pkts=col(b, "orig_pkts"),
            dst_pkts=col(b, "resp_pkts"),
            state=col(b, "conn_state"),
            label=first_col(b, _LABEL_NAMES),
            detailed_label=first_col(b, _DETAILED_NAMES),
        )


# -- flows: nfdump ------------------------------------------------------------------------------


def _nfdump_flows(batches: Iterator[tuple[pa.RecordBatch, np.ndarray]], where: str) -> Iterator[pa.RecordBatch]:
    for b, lines in batches:
        yield flow_batch(
            where,
            lines,
            flow_id=None,
            ts=b.column(b.schema.get_field_index("ts")).cast(FLOW_TIME),
            src_ip=b.column(b.schema.get_field_index("sa")),
            src_port=col(b, "sp"),
            dst_ip=b.column(b.schema.get_field_index("da")),
            dst_port=col(b, "dp"),
            proto=b.column(b.schema.get_field_index("pr")),
            service=None,
            duration=col(b, "td"),
            src_bytes=col(b, "ibyt"),
            dst_bytes=col(b, "obyt"),
            src_pkts=col(b, "ipkt"),
            dst_pkts=col(b, "opkt"),
            state=col(b, "flg"),
            label=None,
            detailed_label=None,
        )


def _iter_nfdump_csv(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    yield from _nfdump_flows(iter_nfdump_file(path, batch_rows=batch_rows), str(path))


def _iter_nfcapd(path: Path, batch_rows: int, nfdump: str = "nfdump") -> Iterator[pa.RecordBatch]:
    yield from _nfdump_flows(iter_nfcapd(path, batch_rows=batch_rows, nfdump=nfdump), f"{path} (via nfdump)")


# -- flows: Argus ----------------------------------------------------------------------------------


_ARGUS_REQUIRED = ("StartTime", "Proto", "SrcAddr", "Sport", "DstAddr", "Dport", "TotPkts", "TotBytes")


def _iter_argus(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    where = str(path)
    table = read_binetflow(path)
    require_columns(table.column_names, _ARGUS_REQUIRED, where, "not an Argus binetflow file", 1)
    for offset in range(0, max(table.num_rows, 1), batch_rows):
        t = table.slice(offset, batch_rows).combine_chunks()
        if t.num_rows == 0:
            return
        b = t.to_batches()[0]
        lines = line_numbers(offset, b.num_rows, 2)
        tot_bytes = int_column(col(b, "TotBytes"), b.num_rows)
        tot_pkts = int_column(col(b, "TotPkts"), b.num_rows)
        src_b = col(b, "SrcBytes")
        src_bytes = tot_bytes if src_b is None else int_column(src_b, b.num_rows)
        src_p = col(b, "SrcPkts")
        src_pkts = tot_pkts if src_p is None else int_column(src_p, b.num_rows)
        yield flow_batch(
            where,
            lines,
            flow_id=None,
            ts=b.column(b.schema.get_field_index("StartTime")).cast(FLOW_TIME),
            src_ip=b.column(b.schema.get_field_index("SrcAddr")),
            src_port=col(b, "Sport"),
            dst_ip=b.column(b.schema.get_field_index("DstAddr")),
            dst_port=col(b, "Dport"),
            proto=b.column(b.schema.get_field_index("Proto")),
            service=None,
            duration=col(b, "Dur"),
            src_bytes=src_bytes,
            dst_bytes=pc.max_element_wise(pc.subtract(tot_bytes, src_bytes), 0),
            src_pkts=src_pkts,
            dst_pkts=pc.max_element_wise(pc.subtract(tot_pkts, src_pkts), 0),
            state=col(b, "State"),
            label=col(b, "Label"),
            detailed_label=None,
        )


# -- DNS -------------------------------------------------------------------------------------------


def _iter_zeek_dns(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    where = str(path)
    for b, lines in _zeek_batches(path, batch_rows, _ZEEK_DNS_REQUIRED, "not a Zeek dns log"):
        yield dns_batch(
            where,
            lines,
            flow_id=col(b, "uid"),
            ts=seconds_to_time(b.column(b.schema.get_field_index("ts")), lines),
            client_ip=b.column(b.schema.get_field_index("id.orig_h")),
            server_ip=b.column(b.schema.get_field_index("id.resp_h")),
            query=b.column(b.schema.get_field_index("query")),
            qtype=col(b, "qtype"),
            rcode=col(b, "rcode"),
            frame_len=None,
            label=first_col(b, _LABEL_NAMES),
            detailed_label=first_col(b, _DETAILED_NAMES),
        )


def _iter_tshark(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    where = str(path)
    names = tshark_columns(path)
    require_columns(names, TSHARK_DNS_REQUIRED, where, "not a tshark DNS fields CSV", 1)
    if not any(n in names for n in ("ip.src", "ipv6.src")) or not any(n in names for n in ("ip.dst", "ipv6.dst")):
        raise DataFormatError(
            "not a tshark DNS fields CSV: missing ip.src/ip.dst (or ipv6.src/ipv6.dst)",
            path=where,
            line=1,
            hint="export with -e ip.src -e ip.dst",
        )
    for b, lines in iter_tshark_fields(path, batch_rows=batch_rows):
        yield _tshark_batch(b, lines, where)


def _tshark_batch(b: pa.RecordBatch, lines: np.ndarray, where: str) -> pa.RecordBatch:
    src = first_col(b, ("ip.src",))
    src6 = first_col(b, ("ipv6.src",))
    dst = first_col(b, ("ip.dst",))
    dst6 = first_col(b, ("ipv6.dst",))
    src = src6 if src is None else src if src6 is None else pc.coalesce(src, src6)
    dst = dst6 if dst is None else dst if dst6 is None else pc.coalesce(dst, dst6)
    assert src is not None
    assert dst is not None
    response = col(b, "dns.flags.response")
    if response is None:
        # Spot captured responses only (`dns.flags.response == 1`): the client is the destination.
        is_response = pa.array(np.ones(b.num_rows, dtype=bool))
    else:
        is_response = pc.fill_null(pc.is_in(pc.utf8_lower(response), pa.array(["1", "true"])), False)
    return dns_batch(
        where,
        lines,
        flow_id=None,
        ts=seconds_to_time(b.column(b.schema.get_field_index("frame.time_epoch")), lines),
        client_ip=pc.if_else(is_response, dst, src),
        server_ip=pc.if_else(is_response, src, dst),
        query=b.column(b.schema.get_field_index("dns.qry.name")),
        qtype=col(b, "dns.qry.type"),
        rcode=col(b, "dns.flags.rcode"),
        frame_len=col(b, "frame.len"),
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
    """Batches of one recognised file, in the flow or DNS schema (``src.kind``).

    A broken file (a cut-short gzip stream, records Arrow cannot read) raises a
    :class:`~mlscale.errors.DataFormatError` naming it, never a gzip or Arrow traceback.
    """
    try:
        if src.kind == "flows":
            yield from _flow_reader(src, nfdump)(src.path, batch_rows)
        elif src.format == "zeek-dns":
            yield from _iter_zeek_dns(src.path, batch_rows)
        elif src.format == "tshark-dns":
            yield from _iter_tshark(src.path, batch_rows)
        else:
            yield from _iter_parquet(src.path, batch_rows, DNS_SCHEMA)
    except BROKEN_STREAM as err:
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
    holds at most ``part_rows`` rows. Writing is streamed (bounded memory) by
    :class:`~mlscale.data.writers.PartWriter`: each folder is swapped in (replacing an
    earlier one) only once every part of it is complete, and nothing is left on failure.
    """
    out = Path(out)
    sources = list_sources(Path(spec))
    report = IngestReport(out=out)
    writers: dict[str, PartWriter] = {}
    try:
        for src in sources:
            kind = src.kind
            if kind not in writers:
                schema = FLOW_SCHEMA if kind == "flows" else DNS_SCHEMA
                writers[kind] = PartWriter(out / kind, rows_per_file=part_rows, schema=schema, field="--out")
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
        for writer in writers.values():
            writer.commit()
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    return report


def resolve_data(spec: str, data_dir: Path) -> Path:
    """A path as given, else a catalogue data set's folder under the data dir."""
    path = Path(spec)
    if path.exists():
        return path
    candidate = data_dir / spec
    if candidate.exists():
        return candidate
    raise DatasetNotFoundError(
        f"{spec}: no such file or folder, and no data set of that name in {data_dir}",
        hint="pass a log file or folder, or fetch the data set with `mlscale data fetch NAME`",
    )
