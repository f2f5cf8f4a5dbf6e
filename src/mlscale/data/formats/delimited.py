"""Typed tables from delimited text: CSV, TSV, ``|`` and MovieLens ``::`` files.

Arrow's CSV parser does the work. Its delimiter is one byte, so a ``::``
separator is rewritten to a tab on the fly (see
:func:`~mlscale.data.streams.replace_separator`); gzip and one-file zip
archives are read transparently. When Arrow rejects a row, the file is scanned
again to name the line, so the error says where to look.

>>> import pathlib, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp, "ratings.dat")
...     _ = path.write_text("1::10::5::978300760\\n2::10::3::978300761\\n")
...     table = read_delimited(path, sep="::", header=False, columns=("user", "item", "rating", "ts"))
>>> table.column_names, table.column("rating").to_pylist()
(['user', 'item', 'rating', 'ts'], [5, 3])
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pacsv

from mlscale.data.streams import ChunkStream, iter_chunks, open_binary, replace_separator
from mlscale.errors import DataFormatError, ValidationError

__all__ = ["Delimited", "read_delimited"]

_MULTI_BYTE_SEPARATORS = {"::": b"::"}
_COLUMN_COUNT = re.compile(r"Expected (\d+) columns, got (\d+)")
_BAD_VALUE = re.compile(r"In CSV column #(\d+): CSV conversion error to (\S+): invalid value '(.*)'", re.S)


@dataclass(frozen=True, slots=True)
class Delimited:
    """How to read one delimited text file; calling it reads a file into a table.

    ``types`` maps column names to Arrow type names (``"int64"``,
    ``"float32"``, ``"string"``...); other columns are inferred.

    >>> Delimited(sep="|", header=False, columns=("genre", "genre_id")).is_quoted
    False
    """

    sep: str = ","
    header: bool = True
    columns: tuple[str, ...] | None = None
    encoding: str = "utf-8"
    types: tuple[tuple[str, str], ...] = ()
    quoted: bool | None = None

    @property
    def is_quoted(self) -> bool:
        """Whether ``"`` quotes fields (default: only for comma-separated files)."""
        return self.sep == "," if self.quoted is None else self.quoted

    def __call__(self, path: Path) -> pa.Table:
        return read_delimited(
            path,
            sep=self.sep,
            header=self.header,
            columns=self.columns,
            encoding=self.encoding,
            types=dict(self.types),
            quoted=self.is_quoted,
        )


def _byte_chunks(path: Path, sep: str) -> tuple[IO[bytes], Iterator[bytes]]:
    stream = open_binary(path)
    chunks = iter_chunks(stream)
    if sep in _MULTI_BYTE_SEPARATORS:
        chunks = replace_separator(chunks, _MULTI_BYTE_SEPARATORS[sep], b"\t")
    return stream, chunks


def _parser_sep(sep: str) -> str:
    if sep in _MULTI_BYTE_SEPARATORS:
        return "\t"
    if len(sep) != 1:
        raise ValidationError(f"unsupported separator {sep!r}: use one character or '::'", field="sep")
    return sep


def read_delimited(
    path: Path,
    *,
    sep: str = ",",
    header: bool = True,
    columns: Sequence[str] | None = None,
    encoding: str = "utf-8",
    types: Mapping[str, str] | None = None,
    quoted: bool | None = None,
) -> pa.Table:
    """Read a delimited text file (plain, gzip or one-file zip) into an Arrow table.

    ``columns`` names the columns; with ``header=True`` the header line is then
    skipped instead of used. ``quoted`` (default: ``sep == ","``) says whether
    ``"`` quotes fields. Raises :class:`~mlscale.errors.DataFormatError` naming
    the file and line of the first row that does not parse.
    """
    parser_sep = _parser_sep(sep)
    is_quoted = sep == "," if quoted is None else quoted
    if not header and not columns:
        raise ValidationError("a file without a header line needs column names", field="columns")
    read_options = pacsv.ReadOptions(
        column_names=list(columns) if columns else None,
        skip_rows=1 if header and columns else 0,
        encoding=encoding,
        block_size=1 << 22,
    )
    parse_options = pacsv.ParseOptions(delimiter=parser_sep, quote_char='"' if is_quoted else False)
    column_types = {name: pa.type_for_alias(alias) for name, alias in (types or {}).items()}
    convert_options = pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=False)
    stream, chunks = _byte_chunks(path, sep)
    try:
        with stream:
            return pacsv.read_csv(
                ChunkStream(chunks),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
    except pa.ArrowInvalid as err:
        line = _locate(path, sep, encoding, is_quoted, str(err))
        raise DataFormatError(_plain_message(str(err)), path=str(path), line=line, hint=_hint(sep, columns)) from None
    except UnicodeDecodeError as err:
        raise DataFormatError(
            f"not valid {encoding} text ({err.reason})", path=str(path), hint="check the file's encoding"
        ) from None


def _plain_message(message: str) -> str:
    return message.replace("CSV parse error: ", "").replace("CSV conversion error to ", "cannot convert to ")


def _hint(sep: str, columns: Sequence[str] | None) -> str:
    expected = f"{len(columns)} columns ({', '.join(columns)})" if columns else "the header's columns"
    return f"expected {expected} separated by {sep!r} on every line"


def _locate(path: Path, sep: str, encoding: str, quoted: bool, message: str) -> int | None:
    """The 1-based line of the first row matching Arrow's complaint, if it can be found."""
    count = _COLUMN_COUNT.search(message)
    bad = _BAD_VALUE.search(message)
    if count is None and bad is None:
        return None
    stream, chunks = _byte_chunks(path, sep)
    with stream:
        text = io.TextIOWrapper(io.BufferedReader(ChunkStream(chunks)), encoding=encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=_parser_sep(sep), quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE)
        try:
            for row in reader:
                if not row:
                    continue
                if count is not None and len(row) == int(count.group(2)):
                    return reader.line_num
                if bad is not None:
                    col = int(bad.group(1))
                    if col < len(row) and row[col] == bad.group(3):
                        return reader.line_num
        except csv.Error:
            return reader.line_num
    return None
