"""Typed tables from ``nfdump -o csv`` output (NetFlow/IPFIX flow records).

``nfdump -r FILE -o csv`` writes a header line (``ts,te,td,sa,da,sp,dp,pr,
flg,...``), one line per flow, and then a ``Summary`` trailer (a blank or
``Summary`` line followed by totals); the trailer is dropped. ``ts``/``te``/
``tr`` are timestamps as nfdump printed them (local time of the machine that
ran nfdump, no zone); counters are int64; ``cl``/``sl``/``al`` latencies
float64. :func:`read_nfdump_csv` reads a whole file; :func:`iter_nfdump_csv`
streams batches (with the file line of each record) from a file or a pipe, and
:func:`iter_nfcapd` streams nfdump's binary capture files through the
``nfdump`` tool, run with ``TZ=UTC``.

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

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mlscale.data.formats.columns import csv_error, line_numbers, require_columns
from mlscale.data.streams import ChunkStream, iter_chunks, open_binary, stop_at_line
from mlscale.errors import DataFormatError, DependencyError

__all__ = [
    "NFDUMP_COLUMNS",
    "NFDUMP_REQUIRED",
    "NFDUMP_TYPES",
    "iter_nfcapd",
    "iter_nfdump_csv",
    "iter_nfdump_file",
    "read_nfdump_csv",
]

#: The columns a flow needs; :func:`iter_nfdump_csv` refuses a file without them.
NFDUMP_REQUIRED = ("ts", "td", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt")
#: The columns :func:`iter_nfdump_csv` keeps (the rest are not read).
NFDUMP_COLUMNS = frozenset({"ts", "td", "sa", "da", "sp", "dp", "pr", "flg", "ipkt", "ibyt", "opkt", "obyt"})

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


def iter_nfdump_csv(
    stream: IO[bytes], where: str, *, batch_rows: int, source: Path | None = None
) -> Iterator[tuple[pa.RecordBatch, npt.NDArray[np.int64]]]:
    """Stream ``nfdump -o csv`` text: batches of :data:`NFDUMP_COLUMNS` and the file line of each record.

    ``where`` names the input in errors; ``source`` is the file to search for the
    line of a bad value (None for a pipe). The ``Summary`` trailer is dropped.
    """
    header = stream.readline().decode("utf-8", "replace").strip()
    names = header.split(",")
    if names[:2] != ["ts", "te"]:
        raise DataFormatError(
            f"expected nfdump's CSV header 'ts,te,td,sa,da,...', found {header[:60]!r}",
            path=where,
            line=1,
            hint="make the file with `nfdump -r FILE -o csv`",
        )
    require_columns(names, NFDUMP_REQUIRED, where, "not nfdump CSV", 1)
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
                include_columns=[n for n in names if n in NFDUMP_COLUMNS],
            ),
        )
        done = 0
        for raw in reader:
            for start in range(0, raw.num_rows, batch_rows):
                b = raw.slice(start, batch_rows)
                yield b, line_numbers(done, b.num_rows, 2)
                done += b.num_rows
    except pa.ArrowInvalid as err:
        reason, line = csv_error(str(err), names, source)
        raise DataFormatError(
            reason, path=where, line=line, hint="expected nfdump CSV rows (`nfdump -o csv`) up to the 'Summary' trailer"
        ) from None


def iter_nfdump_file(path: Path, *, batch_rows: int) -> Iterator[tuple[pa.RecordBatch, npt.NDArray[np.int64]]]:
    """:func:`iter_nfdump_csv` over a file (plain, gzip or one-file zip)."""
    with open_binary(path) as stream:
        yield from iter_nfdump_csv(stream, str(path), batch_rows=batch_rows, source=path)


def iter_nfcapd(
    path: Path, *, batch_rows: int, nfdump: str = "nfdump"
) -> Iterator[tuple[pa.RecordBatch, npt.NDArray[np.int64]]]:
    """Stream an nfcapd capture file through ``nfdump -r FILE -o csv`` (run with ``TZ=UTC``).

    A missing tool raises :class:`~mlscale.errors.DependencyError` with the install
    line; nfdump's own complaint is reported when it cannot read the file.
    """
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
            yield from iter_nfdump_csv(proc.stdout, f"{path} (via nfdump)", batch_rows=batch_rows)
        except DataFormatError:
            proc.kill()
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            proc.wait()
            if err:
                raise DataFormatError(f"nfdump cannot read it: {err.splitlines()[-1]}", path=str(path)) from None
            raise
        except GeneratorExit:
            # The reader stopped early (a bad record downstream): do not wait for nfdump to finish.
            proc.kill()
            raise
        proc.stdout.read()
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        if proc.wait() != 0:
            raise DataFormatError(
                f"nfdump failed (exit {proc.returncode}): {err.splitlines()[-1] if err else 'no message'}",
                path=str(path),
            )
