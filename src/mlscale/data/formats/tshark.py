"""Typed record batches from ``tshark -T fields -E header=y -E separator=,`` exports, streamed.

The header names the exported fields (``frame.time_epoch``, ``ip.src``,
``dns.qry.name``...); known fields get their types (:data:`TSHARK_TYPES`), the
others stay text, and an empty value is null. Each batch comes with the file
line of every record, for errors that name it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from mlscale.data.formats.columns import csv_error, line_numbers
from mlscale.data.streams import open_binary
from mlscale.errors import DataFormatError

__all__ = ["TSHARK_TYPES", "iter_tshark_fields", "tshark_columns"]

#: Types of the tshark fields mlscale reads; other fields are text.
TSHARK_TYPES: dict[str, pa.DataType] = {
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


def tshark_columns(path: Path) -> list[str]:
    """The field names of the export's header line."""
    with open_binary(path) as stream:
        header = stream.readline().decode("utf-8", "replace").strip()
    return [n.strip().strip('"') for n in header.split(",")]


def iter_tshark_fields(
    path: Path, *, batch_rows: int, hint: str = "expected `tshark -T fields -E header=y -E separator=,` output"
) -> Iterator[tuple[pa.RecordBatch, npt.NDArray[np.int64]]]:
    """Batches of at most ``batch_rows`` records and the file line of each; bad values name their line."""
    names = tshark_columns(path)
    types = {n: TSHARK_TYPES.get(n, pa.string()) for n in names}
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
                    yield b, line_numbers(done, b.num_rows, 2)
                    done += b.num_rows
    except pa.ArrowInvalid as err:
        reason, line = csv_error(str(err), names, path)
        raise DataFormatError(reason, path=str(path), line=line, hint=hint) from None
