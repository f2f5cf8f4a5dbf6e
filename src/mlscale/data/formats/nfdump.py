"""Typed tables from ``nfdump -o csv`` output (NetFlow/IPFIX flow records).

``nfdump -r FILE -o csv`` writes a header line (``ts,te,td,sa,da,sp,dp,pr,
flg,...``), one line per flow, and then a ``Summary`` trailer (a blank or
``Summary`` line followed by totals); the trailer is dropped. ``ts``/``te``/
``tr`` are timestamps as nfdump printed them (local time of the machine that
ran nfdump, no zone); counters are int64; ``cl``/``sl``/``al`` latencies
float64.

>>> import pathlib, tempfile
>>> text = ("ts,te,td,sa,da,sp,dp,pr,ipkt,ibyt\\n"
...         "2018-01-12 15:37:30,2018-01-12 15:37:31,1.000,10.0.0.1,10.0.0.2,52324,443,TCP,3,180\\n"
...         "Summary\\nflows,bytes\\n1,180\\n")
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp, "flows.csv")
...     _ = path.write_text(text)
...     table = read_nfdump_csv(path)
>>> table.num_rows, table.column("dp").to_pylist(), str(table.schema.field("ts").type)
(1, [443], 'timestamp[s]')
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mlscale.data.streams import ChunkStream, iter_chunks, open_binary, stop_at_line
from mlscale.errors import DataFormatError

__all__ = ["NFDUMP_TYPES", "read_nfdump_csv"]

_INT = pa.int64()
_TIME = pa.timestamp("s")
#: Types of the columns nfdump 1.6/1.7 write; other columns are inferred.
NFDUMP_TYPES: dict[str, pa.DataType] = {
    "ts": _TIME,
    "te": _TIME,
    "td": pa.float64(),
    "sa": pa.string(),
    "da": pa.string(),
    "sp": _INT,
    "dp": _INT,
    "pr": pa.string(),
    "flg": pa.string(),
    **dict.fromkeys(("fwd", "stos", "ipkt", "ibyt", "opkt", "obyt", "in", "out", "sas", "das"), _INT),
    **dict.fromkeys(("smk", "dmk", "dtos", "dir", "svln", "dvln", "exid"), _INT),
    **dict.fromkeys(("nh", "nhb", "ismc", "odmc", "idmc", "osmc", "ra", "eng"), pa.string()),
    **{f"mpls{i}": pa.string() for i in range(1, 11)},
    "tr": pa.timestamp("ms"),
}
_PADDED_FLOATS = ("cl", "sl", "al")


def read_nfdump_csv(path: Path) -> pa.Table:
    """Read ``nfdump -o csv`` output (plain or gzip) into a typed table, without the summary trailer."""
    where = str(path)
    with open_binary(path) as stream:
        first = stream.readline().decode("utf-8", "replace").strip()
    names = first.split(",")
    if not first or names[:2] != ["ts", "te"]:
        raise DataFormatError(
            f"expected nfdump's CSV header 'ts,te,td,sa,da,...', found {first[:60]!r}",
            path=where,
            line=1,
            hint="make the file with `nfdump -r FILE -o csv`",
        )
    types = {name: NFDUMP_TYPES[name] for name in names if name in NFDUMP_TYPES}
    types.update({name: pa.string() for name in _PADDED_FLOATS if name in names})
    try:
        with open_binary(path) as stream:
            table = pacsv.read_csv(
                ChunkStream(stop_at_line(iter_chunks(stream), b"Summary")),
                parse_options=pacsv.ParseOptions(quote_char=False),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, timestamp_parsers=["%Y-%m-%d %H:%M:%S", pacsv.ISO8601]
                ),
            )
    except pa.ArrowInvalid as err:
        raise DataFormatError(
            str(err).replace("CSV parse error: ", ""),
            path=where,
            hint="expected nfdump CSV rows up to the 'Summary' trailer",
        ) from None
    for name in _PADDED_FLOATS:
        if name in table.column_names:
            index = table.schema.get_field_index(name)
            values = pc.cast(pc.utf8_trim_whitespace(table.column(index)), pa.float64())
            table = table.set_column(index, name, values)
    return table
