"""Typed tables from Argus ``.binetflow`` files (the CTU-13 / Stratosphere flow CSV).

The header is ``StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,
sTos,dTos,TotPkts,TotBytes,SrcBytes[,SrcPkts],Label``. ``StartTime``
(``2019/04/04 16:23:00.325010``, no zone) becomes a microsecond timestamp;
``Dir`` loses its padding (``->``, ``<->``...). Ports are int64: Argus writes
ICMP type and code as a hex "port" (``0x0303`` = type 3, code 3), which is
decoded too. An empty ``Label`` is null.

>>> import pathlib, tempfile
>>> text = ("StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,State,sTos,dTos,TotPkts,TotBytes,"
...         "SrcBytes,Label\\n"
...         "2019/04/04 16:23:00.325010,0.02,udp,10.8.0.69,48427,  <->,8.8.8.8,53,CON,0,0,2,142,63,\\n"
...         "2019/04/04 16:23:01.000000,0.10,icmp,10.8.0.69,0x0303,   ->,8.8.8.8,,ECO,0,0,1,70,70,\\n")
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp, "flows.binetflow")
...     _ = path.write_text(text)
...     table = read_binetflow(path)
>>> table.column("Sport").to_pylist(), table.column("Dir").to_pylist(), table.column("Label").null_count
([48427, 771], ['<->', '->'], 2)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mlscale.data.streams import ChunkStream, iter_chunks, open_binary
from mlscale.errors import DataFormatError

__all__ = ["BINETFLOW_TYPES", "read_binetflow"]

#: Types of the usual Argus columns; other columns are inferred.
BINETFLOW_TYPES: dict[str, pa.DataType] = {
    "StartTime": pa.string(),
    "Dur": pa.float64(),
    "Proto": pa.string(),
    "SrcAddr": pa.string(),
    "Sport": pa.string(),
    "Dir": pa.string(),
    "DstAddr": pa.string(),
    "Dport": pa.string(),
    "State": pa.string(),
    "sTos": pa.int64(),
    "dTos": pa.int64(),
    "TotPkts": pa.int64(),
    "TotBytes": pa.int64(),
    "SrcBytes": pa.int64(),
    "SrcPkts": pa.int64(),
    "Label": pa.string(),
}


def read_binetflow(path: Path) -> pa.Table:
    """Read an Argus ``.binetflow`` CSV (plain or gzip) into a typed table."""
    where = str(path)
    with open_binary(path) as stream:
        first = stream.readline().decode("utf-8", "replace").strip()
    names = first.split(",")
    if names[:1] != ["StartTime"]:
        raise DataFormatError(
            f"expected an Argus binetflow header 'StartTime,Dur,Proto,...', found {first[:60]!r}",
            path=where,
            line=1,
        )
    types = {name: BINETFLOW_TYPES[name] for name in names if name in BINETFLOW_TYPES}
    try:
        with open_binary(path) as stream:
            table = pacsv.read_csv(
                ChunkStream(iter_chunks(stream)),
                parse_options=pacsv.ParseOptions(quote_char=False),
                convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True, null_values=[""]),
            )
    except pa.ArrowInvalid as err:
        raise DataFormatError(str(err).replace("CSV parse error: ", ""), path=where) from None
    table = _convert(table, "StartTime", _start_time, where)
    table = _convert(table, "Dir", pc.utf8_trim_whitespace, where)
    for port in ("Sport", "Dport"):
        table = _convert(table, port, _ports, where)
    return table


def _convert(table: pa.Table, name: str, fn: Callable[[Any], Any], where: str) -> pa.Table:
    index = table.schema.get_field_index(name)
    if index < 0:
        return table
    try:
        values = fn(table.column(index))
    except (pa.ArrowInvalid, ValueError) as err:
        raise DataFormatError(f"column {name!r}: {err}", path=where) from None
    return table.set_column(index, name, values)


def _start_time(column: pa.ChunkedArray) -> pa.ChunkedArray:
    iso = pc.replace_substring(pc.utf8_trim_whitespace(column), "/", "-")
    return pc.cast(iso, pa.timestamp("us"))


def _ports(column: pa.ChunkedArray) -> pa.Array:
    values: list[int | None] = []
    for text in column.to_pylist():
        text = (text or "").strip()
        values.append(int(text, 16) if text.lower().startswith("0x") else int(text) if text else None)
    return pa.array(values, type=pa.int64())
