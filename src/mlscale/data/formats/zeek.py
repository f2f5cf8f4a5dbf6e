"""Typed Arrow record batches from Zeek (Bro) logs, TSV or JSON lines.

A TSV log starts with ``#`` header lines: ``#separator`` (written as
``\\x09``), ``#set_separator``, ``#empty_field``, ``#unset_field``, ``#path``,
``#open``, then ``#fields`` (the column names) and ``#types`` (one Zeek type
per column); a ``#close`` line may end it. Values are typed from ``#types``:

================================ ====================================
Zeek type                        Arrow type
================================ ====================================
``time``, ``interval``, ``double``  ``float64`` (seconds)
``count``, ``int``, ``port``     ``int64``
``bool`` (``T``/``F``)           ``bool``
``addr``, ``string``, ``enum``... ``string``
``set[T]``, ``vector[T]``        ``list`` of T's type
================================ ====================================

The unset field (``-``) is null; the empty field (``(empty)``) is an empty
string or an empty list; ``\\xHH`` escapes in text are decoded. A JSON log has
one object per line with the same column names; it is recognised by its first
byte. gzip-compressed logs are read transparently.

Every error is a :class:`~mlscale.errors.DataFormatError` naming the file and
line: no ``#fields`` header before the first record, a record with the wrong
number of fields, a value that does not fit its type.

>>> import pathlib, tempfile
>>> log = ("#separator \\\\x09\\n#fields\\tts\\tid.orig_p\\tproto\\n#types\\ttime\\tport\\tenum\\n"
...        "1.5\\t53\\tudp\\n2.0\\t-\\ttcp\\n")
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp, "conn.log")
...     _ = path.write_text(log)
...     table = read_zeek(path)
>>> table.schema.field("id.orig_p").type, table.column("id.orig_p").to_pylist()
(DataType(int64), [53, None])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mlscale.data.formats.jsonl import read_json_lines
from mlscale.data.streams import open_binary
from mlscale.errors import DataFormatError

__all__ = ["DEFAULT_BATCH_ROWS", "ZeekHeader", "ZeekLog", "arrow_type", "iter_zeek_batches", "read_zeek"]

DEFAULT_BATCH_ROWS = 65_536

_FLOAT_TYPES = frozenset({"time", "interval", "double"})
_INT_TYPES = frozenset({"count", "int", "port", "counter"})
_CONTAINER = re.compile(r"^(set|vector|table)\[(.+)\]$")
_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")
# JSON logs carry no types; these columns are floats even when a value happens to be whole.
_JSON_FLOAT_COLUMNS = ("ts", "duration", "rtt")


def arrow_type(zeek_type: str) -> pa.DataType:
    """The Arrow type used for a Zeek type name.

    >>> arrow_type("port"), arrow_type("set[string]")
    (DataType(int64), ListType(list<item: string>))
    """
    container = _CONTAINER.match(zeek_type)
    if container:
        return pa.list_(arrow_type(container.group(2)))
    if zeek_type in _FLOAT_TYPES:
        return pa.float64()
    if zeek_type in _INT_TYPES:
        return pa.int64()
    if zeek_type == "bool":
        return pa.bool_()
    return pa.string()


@dataclass(frozen=True, slots=True)
class ZeekHeader:
    """What the ``#`` lines of a TSV Zeek log say."""

    fields: tuple[str, ...]
    types: tuple[str, ...]
    separator: str = "\t"
    set_separator: str = ","
    empty_field: str = "(empty)"
    unset_field: str = "-"
    path: str | None = None

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the records (each field's Zeek type kept as field metadata)."""
        fields = [
            pa.field(name, arrow_type(ztype), metadata={"zeek_type": ztype})
            for name, ztype in zip(self.fields, self.types, strict=True)
        ]
        metadata = {"zeek_path": self.path} if self.path else None
        return pa.schema(fields, metadata=metadata)


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode()).decode("utf-8", "backslashreplace")


class _FallbackError(Exception):
    """The fast path met input it cannot type; the line-by-line path takes over."""


class _TsvLog:
    """Parses a TSV log: header lines first, then records in batches."""

    def __init__(self, path: Path, batch_rows: int) -> None:
        self.path = path
        self.batch_rows = batch_rows
        self._where = str(path)
        self.header, self._first_record = self._read_header()

    def _error(self, message: str, line: int | None, hint: str | None = None) -> DataFormatError:
        return DataFormatError(message, path=self._where, line=line, hint=hint)

    def _lines(self) -> Iterator[tuple[int, str]]:
        with open_binary(self.path) as stream:
            for number, raw in enumerate(stream, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise self._error(f"not valid UTF-8 text ({err.reason})", number) from None
                yield number, text.rstrip("\n").rstrip("\r")

    def _read_header(self) -> tuple[ZeekHeader, int]:
        meta: dict[str, str] = {}
        separator = "\t"
        fields_line = 0
        for number, line in self._lines():
            if not line:
                continue
            if not line.startswith("#"):
                if "fields" not in meta:
                    raise self._error(
                        "missing #fields header: a record comes before any '#fields' line",
                        number,
                        hint="a Zeek TSV log starts with '#separator', '#fields' and '#types' lines; "
                        "was the header cut off?",
                    )
                return self._make_header(meta, separator, fields_line), number
            if line.startswith("#separator"):
                # This one line is separated by a space: the separator is not known yet.
                separator = _unescape(line[len("#separator") :].strip()) or "\t"
                continue
            key, _, value = line[1:].partition(separator)
            if key in meta and key in ("fields", "types") and meta[key] != value:
                raise self._error(f"a second, different #{key} line", number)
            meta[key] = value
            if key == "fields":
                fields_line = number
        if "fields" not in meta:
            raise self._error(
                "missing #fields header: no '#fields' line in the file",
                None,
                hint="is this a Zeek TSV log? expected '#fields' and '#types' lines before the records",
            )
        return self._make_header(meta, separator, fields_line), 0

    def _make_header(self, meta: dict[str, str], separator: str, fields_line: int) -> ZeekHeader:
        fields = tuple(meta["fields"].split(separator))
        if len(set(fields)) != len(fields):
            raise self._error("#fields names a column twice", fields_line)
        if "types" in meta:
            types = tuple(meta["types"].split(separator))
            if len(types) != len(fields):
                raise self._error(
                    f"#types lists {len(types)} types but #fields lists {len(fields)} columns", fields_line
                )
        else:
            types = ("string",) * len(fields)
        return ZeekHeader(
            fields=fields,
            types=types,
            separator=separator,
            set_separator=_unescape(meta.get("set_separator", ",")),
            empty_field=meta.get("empty_field", "(empty)"),
            unset_field=meta.get("unset_field", "-"),
            path=meta.get("path"),
        )

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if not self._first_record:
            return
        done = 0
        if len(self.header.separator) == 1:
            try:
                for batch in self._arrow_batches():
                    for start in range(0, batch.num_rows, self.batch_rows):
                        part = batch.slice(start, self.batch_rows)
                        done += part.num_rows
                        yield part
                return
            except _FallbackError:
                pass
        # Arrow stopped at something it cannot explain well: the line-by-line
        # parser takes over after the rows already yielded and names the line.
        yield from self._python_batches(skip=done)

    def _arrow_batches(self) -> Iterator[pa.RecordBatch]:
        """Fast path: Arrow's CSV reader splits the records, Arrow kernels type the columns."""
        header = self.header
        sep = header.separator
        repeated = {f"#fields{sep}{sep.join(header.fields)}", f"#types{sep}{sep.join(header.types)}"}

        def on_invalid_row(row: Any) -> str:
            text = str(row.text)
            if text.startswith("#") and (not text.startswith(("#fields", "#types")) or text in repeated):
                return "skip"  # #close, or the header of a log appended to itself
            return "error"

        read_options = pacsv.ReadOptions(
            skip_rows=self._first_record - 1, column_names=list(header.fields), block_size=1 << 22
        )
        parse_options = pacsv.ParseOptions(delimiter=sep, quote_char=False, invalid_row_handler=on_invalid_row)
        convert_options = pacsv.ConvertOptions(
            column_types=dict.fromkeys(header.fields, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
        )
        schema = header.schema
        with open_binary(self.path) as stream:
            try:
                reader = pacsv.open_csv(
                    stream,
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options,
                )
                for raw in reader:
                    first = raw.column(0)
                    comment = pc.starts_with(first, "#")
                    if pc.any(comment).as_py():
                        if pc.any(pc.is_in(first, pa.array(["#fields", "#types"]))).as_py():
                            raise _FallbackError
                        raw = raw.filter(pc.invert(comment))
                    arrays = [self._arrow_column(ztype, raw.column(i)) for i, ztype in enumerate(header.types)]
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, DataFormatError):
                raise _FallbackError from None

    def _arrow_column(self, ztype: str, column: pa.Array) -> pa.Array:
        header = self.header
        unset = pc.equal(column, header.unset_field)
        target = arrow_type(ztype)
        escaped = pc.any(pc.match_substring(column, "\\x")).as_py()
        container = _CONTAINER.match(ztype)
        if escaped or (container and container.group(2) == "bool"):
            # Rare: decode value by value (errors make the caller fall back and name the line).
            values = column.to_pylist()
            return self._column("", ztype, values, [0] * len(values))
        if container:
            lists = pc.split_pattern(column, header.set_separator)
            lists = pc.if_else(pc.equal(column, header.empty_field), pa.scalar([], lists.type), lists)
            lists = pc.if_else(unset, pa.scalar(None, lists.type), lists)
            return lists.cast(target)
        if ztype in _FLOAT_TYPES or ztype in _INT_TYPES:
            return pc.if_else(unset, pa.scalar(None, pa.string()), column).cast(target)
        if ztype == "bool":
            valid = pc.or_(pc.or_(pc.equal(column, "T"), pc.equal(column, "F")), unset)
            if not pc.all(valid).as_py():
                raise _FallbackError
            return pc.if_else(unset, pa.scalar(None, pa.bool_()), pc.equal(column, "T"))
        texts = pc.if_else(pc.equal(column, header.empty_field), "", column)
        return pc.if_else(unset, pa.scalar(None, pa.string()), texts)

    def _python_batches(self, skip: int) -> Iterator[pa.RecordBatch]:
        """Slow path: split and type line by line; every error names its line."""
        header = self.header
        width = len(header.fields)
        rows: list[list[str]] = []
        numbers: list[int] = []
        for number, line in self._lines():
            if number < self._first_record or not line:
                continue
            if line.startswith("#"):
                if line.startswith(("#fields", "#types")):
                    key, _, value = line[1:].partition(header.separator)
                    if tuple(value.split(header.separator)) != getattr(header, key):
                        raise self._error(
                            f"the #{key} header changes here",
                            number,
                            hint="this looks like several logs joined together; read them one by one",
                        )
                continue
            values = line.split(header.separator)
            if len(values) != width:
                raise self._error(
                    f"expected {width} tab-separated fields (as #fields says), found {len(values)}"
                    if header.separator == "\t"
                    else f"expected {width} fields (as #fields says), found {len(values)}",
                    number,
                    hint=f"#fields: {' '.join(header.fields)}",
                )
            if skip:
                skip -= 1
                continue
            rows.append(values)
            numbers.append(number)
            if len(rows) >= self.batch_rows:
                yield self._batch(rows, numbers)
                rows, numbers = [], []
        if rows:
            yield self._batch(rows, numbers)

    def _batch(self, rows: list[list[str]], numbers: list[int]) -> pa.RecordBatch:
        columns = list(zip(*rows, strict=True))
        arrays = [
            self._column(name, ztype, values, numbers)
            for name, ztype, values in zip(self.header.fields, self.header.types, columns, strict=True)
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=self.header.schema)

    def _column(self, name: str, ztype: str, values: Sequence[str], numbers: list[int]) -> pa.Array:
        header = self.header
        unset, empty = header.unset_field, header.empty_field
        container = _CONTAINER.match(ztype)
        if container:
            convert = self._scalar_converter(name, container.group(2))
            items: list[list[object] | None] = []
            for i, value in enumerate(values):
                if value == unset:
                    items.append(None)
                elif value == empty:
                    items.append([])
                else:
                    items.append([convert(part, numbers[i]) for part in value.split(header.set_separator)])
            return pa.array(items, type=arrow_type(ztype))
        if ztype in _FLOAT_TYPES or ztype in _INT_TYPES:
            target = arrow_type(ztype)
            strings = pa.array([None if v == unset else v for v in values], type=pa.string())
            try:
                return pc.cast(strings, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                self._raise_first_bad(name, ztype, values, numbers)
                raise  # pragma: no cover - _raise_first_bad always raises
        if ztype == "bool":
            flags: list[bool | None] = []
            for i, value in enumerate(values):
                if value == "T":
                    flags.append(True)
                elif value == "F":
                    flags.append(False)
                elif value == unset:
                    flags.append(None)
                else:
                    raise self._bad_value(name, ztype, value, numbers[i])
            return pa.array(flags, type=pa.bool_())
        texts = [None if v == unset else "" if v == empty else _unescape(v) if "\\x" in v else v for v in values]
        return pa.array(texts, type=pa.string())

    def _scalar_converter(self, name: str, ztype: str) -> Callable[[str, int], object]:
        def convert(value: str, line: int) -> object:
            try:
                if ztype in _FLOAT_TYPES:
                    return float(value)
                if ztype in _INT_TYPES:
                    return int(value)
            except ValueError:
                raise self._bad_value(name, ztype, value, line) from None
            if ztype == "bool":
                if value not in ("T", "F"):
                    raise self._bad_value(name, ztype, value, line)
                return value == "T"
            return _unescape(value) if "\\x" in value else value

        return convert

    def _bad_value(self, name: str, ztype: str, value: str, line: int) -> DataFormatError:
        return self._error(f"column {name!r} is a Zeek {ztype}, but the value is {value!r}", line)

    def _raise_first_bad(self, name: str, ztype: str, values: Sequence[str], numbers: list[int]) -> None:
        parse: Callable[[str], object] = float if ztype in _FLOAT_TYPES else int
        for i, value in enumerate(values):
            if value == self.header.unset_field:
                continue
            try:
                parse(value)
            except ValueError:
                raise self._bad_value(name, ztype, value, numbers[i]) from None
        raise self._error(f"column {name!r}: values do not fit the Zeek type {ztype}", None)


class ZeekLog:
    """A Zeek log file, TSV or JSON lines; iterate it for record batches.

    ``schema`` is known before the first batch (for TSV, from the header).
    """

    def __init__(self, path: Path, *, batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be >= 1")
        self.path = Path(path)
        self.batch_rows = batch_rows
        self.is_json = _first_byte(self.path) == b"{"
        self._tsv = None if self.is_json else _TsvLog(self.path, batch_rows)
        self._json: pa.Table | None = None

    @property
    def header(self) -> ZeekHeader | None:
        """The TSV header, or None for a JSON log."""
        return self._tsv.header if self._tsv is not None else None

    def _json_table(self) -> pa.Table:
        if self._json is None:
            table = read_json_lines(self.path)
            for name in _JSON_FLOAT_COLUMNS:
                index = table.schema.get_field_index(name)
                # Whole-number seconds are inferred as integers; ISO-8601 times stay as they are.
                if index >= 0 and pa.types.is_integer(table.schema.field(index).type):
                    table = table.set_column(index, name, table.column(index).cast(pa.float64()))
            self._json = table
        return self._json

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of every batch."""
        if self._tsv is not None:
            return self._tsv.header.schema
        return self._json_table().schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._tsv is not None:
            yield from self._tsv
        else:
            yield from self._json_table().to_batches(max_chunksize=self.batch_rows)

    def read_all(self) -> pa.Table:
        """Every record as one table."""
        return pa.Table.from_batches(list(self), schema=self.schema)

    @property
    def first_record_line(self) -> int:
        """1-based line of the first record (after a TSV log's ``#`` header); 1 for JSON."""
        if self.is_json:
            return 1
        with open_binary(self.path) as stream:
            for number, raw in enumerate(stream, start=1):
                if raw.strip() and not raw.startswith(b"#"):
                    return number
        return 1

    @property
    def fields_line(self) -> int | None:
        """1-based line of a TSV log's ``#fields`` header; None for JSON or a log without one."""
        if self.is_json:
            return None
        with open_binary(self.path) as stream:
            for number, raw in enumerate(stream, start=1):
                if raw.startswith(b"#fields"):
                    return number
                if not raw.startswith(b"#"):
                    return None
        return None


def _first_byte(path: Path) -> bytes:
    with open_binary(path) as stream:
        while chunk := stream.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[:1]
    raise DataFormatError("empty file: no '#fields' header and no records", path=str(path), hint="is this a Zeek log?")


def iter_zeek_batches(path: Path, *, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Yield the records of a Zeek log (TSV or JSON, plain or gzip) as typed record batches."""
    yield from ZeekLog(path, batch_rows=batch_rows)


def read_zeek(path: Path) -> pa.Table:
    """Read a whole Zeek log (TSV or JSON, plain or gzip) into a typed table."""
    return ZeekLog(path).read_all()
