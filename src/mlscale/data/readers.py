"""Stream interaction logs (user, item, rating, timestamp) from text or Parquet files.

(About 800 lines, over the usual 600: sniffing, cutting blocks of whole lines, the parallel fast path and the
checked slow path that names every bad row share the line bookkeeping; split apart, each would need it passed
around.)

The reader never holds a whole file: it cuts the text (plain, gzip or a
one-file zip, opened by :func:`mlscale.data.streams.open_binary`) into blocks
of whole lines, parses each block with Arrow's CSV parser and yields one
:class:`pyarrow.RecordBatch` per block, in file order, always with the same
schema (plain UTF-8 files are cut by :mod:`mlscale.data.lineblocks` and their
blocks parsed side by side on every core by :mod:`mlscale.data.pipeline`):

========== ====================== ==============================================
column     type                   meaning
========== ====================== ==============================================
user       int64 or string        user id as written in the file
item       int64 or string        item id as written in the file
rating     float32                rating / play count; 1.0 when the file has none
timestamp  int64 (nullable)       event time in seconds, null when absent
========== ====================== ==============================================

Separators ``\\t``, ``,``, ``;``, ``|``, space and MovieLens' ``::`` are
detected, and so is a header line. Columns are found by name in a header
(``userId``, ``user_id``, ``reviewerID``, ``movieId``, ``artistID``...) or by
position (user, item, rating, timestamp) without one.

Bad rows never pass silently (a rating that is NaN, infinite or negative is a
bad row too: no model can use it). In ``on_error="raise"`` mode (the default) the
first one stops the read with a :class:`~mlscale.errors.DataFormatError` naming
the file, the line and the reason; with ``on_error="skip"`` they are dropped,
counted in :attr:`InteractionReader.bad_rows` and the first ones kept as
examples.

>>> import pathlib, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp, "ratings.csv")
...     _ = path.write_text("userId,movieId,rating\\n1,10,4.5\\n2,10,3.0\\n")
...     reader = InteractionReader(path)
...     table = reader.read_all()
>>> table.column_names, table.num_rows, reader.format.sep
(['user', 'item', 'rating', 'timestamp'], 2, ',')
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlscale.data.lineblocks import LineTooLongError, count_lines, line_blocks
from mlscale.data.pipeline import default_workers, ordered_map
from mlscale.data.streams import Compression, compression_of, consumed_bytes, open_binary
from mlscale.errors import DataError, DataFormatError, ValidationError

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "BadRow",
    "IdType",
    "InteractionReader",
    "OnError",
    "TextFormat",
    "interaction_schema",
    "sniff_format",
]

IdType = Literal["auto", "int", "str"]
OnError = Literal["raise", "skip"]

# Block size of whole lines handed to the Arrow parser. Large enough for the
# parser's threads to pay off; parsing holds about 12x the block, so larger
# blocks cost memory without measured speed (benchmarks/README.md).
DEFAULT_BLOCK_BYTES = 4 << 20
#: Longest line the reader accepts. A longer one is not an interaction row (a
#: binary or one-line JSON file): the reader stops with an error naming the line
#: instead of growing its buffer without bound.
DEFAULT_MAX_LINE_BYTES = 64 << 20
_MAX_EXAMPLES = 10
_SEPARATORS = ("::", "\t", ",", ";", "|", " ")
# Arrow's parser takes one byte as delimiter, so "::" is rewritten to this one
# (ASCII unit separator: never part of an id or a number).
_UNIT_SEP = "\x1f"

_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "user_id", "reviewerid", "customerid", "customer_id", "uid", "visitorid"),
    "item": (
        "item",
        "itemid",
        "item_id",
        "movieid",
        "movie_id",
        "artistid",
        "artist_id",
        "asin",
        "productid",
        "product_id",
        "bookid",
        "book_id",
        "iid",
    ),
    "rating": ("rating", "weight", "count", "plays", "playcount", "overall", "score", "value", "confidence"),
    "timestamp": ("timestamp", "ts", "time", "unixreviewtime", "datetime", "date", "event_time"),
}
_ROLES = ("user", "item", "rating", "timestamp")
# Up to 19 digits: every int64 id fits (the few 19-digit values beyond int64 are
# refused by _int64_ok, not read as strings).
_INT_RE = r"^\s*[+-]?\d{1,19}\s*$"
_INT64_MAX = (1 << 63) - 1
_FLOAT_RE = r"^\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan))\s*$"


def interaction_schema(id_type: pa.DataType) -> pa.Schema:
    """The schema of every batch the reader yields, for ids of ``id_type``."""
    return pa.schema(
        [
            pa.field("user", id_type, nullable=False),
            pa.field("item", id_type, nullable=False),
            pa.field("rating", pa.float32(), nullable=False),
            pa.field("timestamp", pa.int64()),
        ]
    )


@dataclass(frozen=True, slots=True)
class TextFormat:
    """How a delimited text file is laid out.

    ``columns`` names every column in file order: from the header when there
    is one, else ``user, item, rating, timestamp`` (then ``col4``...).
    """

    sep: str
    header: bool
    columns: tuple[str, ...]
    compression: Compression = None
    encoding: str = "utf-8"


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be read: where, why, and what it held."""

    line: int
    reason: str
    text: str


@dataclass(slots=True)
class _Roles:
    user: str
    item: str
    rating: str | None
    timestamp: str | None

    def names(self) -> list[str]:
        return [n for n in (self.user, self.item, self.rating, self.timestamp) if n is not None]


def _int64_ok(value: str) -> bool:
    """Whether an integer literal (already matched by _INT_RE) fits in int64."""
    return -_INT64_MAX - 1 <= int(value) <= _INT64_MAX


def _nul_line(path: Path, block: bytes, start_line: int) -> DataFormatError:
    at = block.find(b"\x00")
    return DataFormatError(
        "a NUL byte in the text: this is not a UTF-8 text file (binary, or UTF-16)",
        path=str(path),
        line=start_line + block.count(b"\n", 0, at),
        hint="convert it to UTF-8 text first (for UTF-16: iconv -f UTF-16 -t UTF-8)",
    )


def _read_head(path: Path, nbytes: int = 64 << 10) -> bytes:
    try:
        with open_binary(path) as fh:
            return fh.read(nbytes)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataFormatError(f"corrupt or truncated gzip file ({exc})", path=str(path)) from None


def _looks_numeric(value: str) -> bool:
    return re.match(_FLOAT_RE, value) is not None


def _detect_sep(lines: Sequence[str]) -> str:
    """The first separator splitting over half the sample lines into one number (>= 2) of fields."""
    for sep in _SEPARATORS:
        counts = [len(line.split(sep)) for line in lines]
        mode = max(set(counts), key=counts.count)
        if mode >= 2 and counts.count(mode) > 0.5 * len(counts):
            return sep
    raise DataFormatError(
        "cannot tell the field separator: no separator among "
        + ", ".join(repr(s) for s in _SEPARATORS)
        + " splits the first lines into the same number of fields",
        hint="pass --sep explicitly",
    )


def sniff_format(
    path: Path,
    *,
    sep: str | None = None,
    header: bool | None = None,
    encoding: str = "utf-8",
) -> TextFormat:
    """Guess separator, header and compression of a delimited text file."""
    compression = compression_of(path)
    head = _read_head(path)
    if encoding.lower().replace("-", "") in ("utf8", "ascii"):
        head = head.removeprefix(b"\xef\xbb\xbf")  # a BOM is not part of the first column's name
        if b"\x00" in head:
            raise _nul_line(path, head, 1)
    text = head.decode(encoding, errors="replace")
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    if len(head) == 64 << 10 and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut short
    lines = [ln for ln in lines if ln.strip()][:20]
    if not lines:
        raise DataError(f"{path}: the file is empty: expected interaction rows (user, item, ...)")
    if sep is None:
        try:
            sep = _detect_sep(lines)
        except DataFormatError as exc:
            raise DataFormatError(exc.reason, path=str(path), line=1, hint=exc.hint) from None
    first = lines[0].split(sep)
    if header is None:
        # A header is a first line whose id fields are not numeric while the next line's are.
        second = lines[1].split(sep) if len(lines) > 1 else []
        header = bool(second) and not _looks_numeric(first[0]) and _looks_numeric(second[0])
        if not header and any(f.strip().lower() in _ALIASES["user"] for f in first):
            header = True
    if header:
        columns = tuple(f.strip().strip('"') for f in first)
    else:
        columns = tuple(_ROLES[i] if i < len(_ROLES) else f"col{i}" for i in range(len(first)))
    if len(set(columns)) != len(columns):
        raise DataFormatError(f"duplicate column names in the header: {list(columns)}", path=str(path), line=1)
    return TextFormat(sep=sep, header=header, columns=columns, compression=compression, encoding=encoding)


def _resolve_roles(
    path: Path,
    columns: Sequence[str],
    given: dict[str, str | None],
    has_header: bool,
) -> _Roles:
    lowered = {c.lower(): c for c in columns}
    found: dict[str, str | None] = {}
    for role in _ROLES:
        name = given.get(role)
        if name is not None:
            if name not in columns:
                raise ValidationError(
                    f"no column {name!r} in {path}; its columns are {list(columns)}",
                    field=f"--{role}-col",
                )
            found[role] = name
            continue
        found[role] = next((lowered[a] for a in _ALIASES[role] if a in lowered), None)
    if not has_header:
        for i, role in enumerate(_ROLES):
            if found[role] is None and i < len(columns):
                found[role] = columns[i]
    for role in ("user", "item"):
        if found[role] is None:
            raise DataFormatError(
                f"cannot find the {role} column among {list(columns)}",
                path=str(path),
                line=1,
                hint=f"name it with --{role}-col",
            )
    user, item = found["user"], found["item"]
    if user is None or item is None:  # pragma: no cover - raised above
        raise AssertionError
    return _Roles(user=user, item=item, rating=found["rating"], timestamp=found["timestamp"])


class InteractionReader:
    """Stream one interaction file as record batches of a fixed schema.

    Parameters are all optional: the format is sniffed from the file.
    ``id_type="auto"`` reads ids as integers when the first data row's ids are
    integers that fit in int64, else as strings; a later non-integer id is then
    a bad row. A line longer than ``max_line_bytes`` stops the read with a
    :class:`~mlscale.errors.DataFormatError` naming it.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sep: str | None = None,
        header: bool | None = None,
        columns: Sequence[str] | None = None,
        user_col: str | None = None,
        item_col: str | None = None,
        rating_col: str | None = None,
        time_col: str | None = None,
        id_type: IdType = "auto",
        on_error: OnError = "raise",
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        encoding: str = "utf-8",
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self.path = Path(path)
        self.on_error: OnError = on_error
        self.block_bytes = block_bytes
        self.max_line_bytes = max_line_bytes
        self.bad_rows = 0
        self.bad_examples: list[BadRow] = []
        self.rows = 0
        #: Bytes of the file on disk consumed so far (compressed bytes for gzip), for progress bars.
        self.bytes_read = 0
        if on_error not in ("raise", "skip"):
            raise ValidationError(f"expected 'raise' or 'skip', got {on_error!r}", field="on_error")
        if id_type not in ("auto", "int", "str"):
            raise ValidationError(f"expected 'auto', 'int' or 'str', got {id_type!r}", field="id_type")
        if not self.path.exists():
            raise DataError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise DataError(f"{self.path}: is a folder; pass one file (or use a catalogue name)")
        self.is_parquet = _is_parquet(self.path)
        given = {"user": user_col, "item": item_col, "rating": rating_col, "timestamp": time_col}
        if self.is_parquet:
            try:
                pschema = pq.read_schema(self.path)
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataFormatError(f"unreadable Parquet file ({exc})", path=str(self.path)) from None
            self.format = TextFormat(sep="", header=True, columns=tuple(pschema.names))
            self.roles = _resolve_roles(self.path, pschema.names, given, True)
            self.id_type = _parquet_id_type(pschema.field(self.roles.user).type, id_type)
        else:
            if self.path.stat().st_size == 0:
                raise DataError(f"{self.path}: the file is empty: expected interaction rows (user, item, ...)")
            fmt = sniff_format(self.path, sep=sep, header=header, encoding=encoding)
            if columns is not None:
                fmt = TextFormat(fmt.sep, fmt.header, tuple(columns), fmt.compression, fmt.encoding)
            if len(fmt.columns) < 2:
                try:
                    guess = sniff_format(self.path, header=header, encoding=encoding).sep
                except DataFormatError:
                    guess = None
                raise DataFormatError(
                    f"splitting on {fmt.sep!r} gives one field per line: expected at least user and item",
                    path=str(self.path),
                    line=1,
                    hint=f"the file looks {guess!r}-separated: pass --sep {guess!r}" if guess else "check --sep",
                )
            self.format = fmt
            self.roles = _resolve_roles(self.path, fmt.columns, given, fmt.header)
            self.id_type = self._sniff_id_type(id_type)
        self.schema = interaction_schema(self.id_type)

    # -- public -----------------------------------------------------------------

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self.is_parquet:
            yield from self._iter_parquet()
            return
        for batch in self._text_batches():
            if batch.num_rows:
                self.rows += batch.num_rows
                yield batch
        if self.rows == 0:
            raise DataError(
                f"{self.path}: no interaction rows" + (f" ({self.bad_rows} bad rows skipped)" if self.bad_rows else "")
            )

    def read_all(self) -> pa.Table:
        """Read the whole file into one table (for data that fits in memory)."""
        return pa.Table.from_batches(list(self), schema=self.schema)

    @property
    def total_bytes(self) -> int:
        """Size of the file on disk (compressed size for gzip), for progress bars."""
        return self.path.stat().st_size

    # -- text blocks ------------------------------------------------------------

    #: Threads parsing blocks side by side (plain UTF-8 files); None: one per core (at most 4).
    parse_workers: int | None = None
    #: False when the consumer ignores event times: plain files then leave the timestamp column
    #: unparsed (null), about a sixth less parsing. See :meth:`skip_timestamps`.
    read_timestamps: bool = True

    def skip_timestamps(self) -> None:
        """Tell the reader its consumer ignores timestamps: they come back null, unparsed and unchecked.

        Only the multi-threaded path (plain UTF-8 files) skips them; a block
        with a bad row is still read and checked whole.
        """
        self.read_timestamps = False

    def _text_batches(self) -> Iterator[pa.RecordBatch]:
        plain = self.format.compression is None and self.format.sep != "::"
        if plain and self.format.encoding.lower().replace("-", "") in ("utf8", "ascii"):
            yield from self._parallel_batches()
            return
        for start_line, block in self._blocks():
            yield self._parse_block(block, start_line)

    def _parallel_batches(self) -> Iterator[pa.RecordBatch]:
        """Plain files: blocks parsed on every core, in file order; line numbers counted only in bulk.

        A block the fast parse rejects is parsed again by :meth:`_parse_block`
        in this thread, in file order, so bad rows are reported (or skipped and
        counted) exactly as on the one-thread path.
        """
        types = self._types()
        stamp = self.roles.timestamp
        if stamp is not None and not self.read_timestamps:
            del types[stamp]
        read, parse, convert = self._csv_options(types)
        read.use_threads = False  # the blocks run side by side instead
        convert.include_columns = list(types)
        header = self.format.header
        rating = self.roles.rating
        unread = pa.int64() if stamp is not None and stamp not in types else None

        def work(job: tuple[bool, bytearray | None]) -> tuple[int, int, bytearray | None, pa.RecordBatch | None]:
            first, block = job
            if block is None:  # the line past max_line_bytes: reported in order by the loop below
                return 0, 0, None, None
            lines, skipped = count_lines(block), 0
            if first:
                if block.startswith(b"\xef\xbb\xbf"):
                    del block[:3]
                if header:
                    del block[: block.find(b"\n") + 1]
                    skipped = 1
            if block.find(b"\x00") >= 0:
                return lines, skipped, block, _NUL
            if not block.strip():
                return lines, skipped, block, _EMPTY
            opts = read
            if len(block) > read.block_size:
                # A block grown around a line longer than the usual block: Arrow's block must hold it.
                opts = self._csv_options(types, size=len(block))[0]
                opts.use_threads = False
            try:
                table = pacsv.read_csv(pa.py_buffer(block), opts, parse, convert)
            except pa.ArrowInvalid:
                return lines, skipped, block, None
            if rating is not None and not _ratings_ok(table.column(rating)).all():
                return lines, skipped, block, None  # NaN, inf or negative: the checked path names the rows
            if unread is not None:
                table = table.append_column(pa.field(stamp, unread), pa.nulls(table.num_rows, unread))
            return lines, skipped, block, self._to_batch(table)

        def jobs(fh: IO[bytes]) -> Iterator[tuple[bool, bytearray | None]]:
            try:
                for k, block in enumerate(line_blocks(fh, self.block_bytes, self.max_line_bytes)):
                    yield k == 0, block
            except LineTooLongError:
                # Queued after the blocks before it, so a bad row earlier in the file is reported first.
                yield False, None

        line = 1
        workers = self.parse_workers or default_workers()
        with open_binary(self.path) as fh:
            for lines, skipped, block, batch in ordered_map(work, jobs(fh), workers=workers):
                self.bytes_read = consumed_bytes(fh)
                if block is None:
                    raise DataFormatError(
                        f"a line longer than {self.max_line_bytes:,} bytes: not an interaction row",
                        path=str(self.path),
                        line=line,
                        hint="check the file is the interaction log (not binary or one-line JSON)",
                    )
                if batch is _NUL:
                    raise _nul_line(self.path, bytes(block), line + skipped)
                if batch is None:
                    batch = self._parse_block(bytes(block), line + skipped)
                line += lines
                if batch is not _EMPTY:
                    yield batch

    def _sniff_id_type(self, id_type: IdType) -> pa.DataType:
        if id_type == "int":
            return pa.int64()
        if id_type == "str":
            return pa.string()
        head = _read_head(self.path).decode(self.format.encoding, errors="replace")
        head = head.removeprefix("\ufeff")
        lines = [ln for ln in head.split("\n") if ln.strip()]
        if self.format.header:
            lines = lines[1:]
        if not lines:
            return pa.int64()
        fields = lines[0].rstrip("\r").replace(self.format.sep, _UNIT_SEP).split(_UNIT_SEP)
        cols = list(self.format.columns)
        ids = [
            fields[cols.index(c)].strip().strip('"')
            for c in (self.roles.user, self.roles.item)
            if cols.index(c) < len(fields)
        ]
        return pa.int64() if all(re.match(_INT_RE, v) and _int64_ok(v) for v in ids) else pa.string()

    def _blocks(self) -> Iterator[tuple[int, bytes]]:
        """Yield (first line number, bytes of whole lines) blocks of the file."""
        line = 1
        carry = b""
        first = True
        # Read in small pieces so a truncated gzip is reported near where it ends.
        piece = min(self.block_bytes, 64 << 10 if self.format.compression else 4 << 20)
        fh = open_binary(self.path)
        try:
            eof = False
            want = self.block_bytes
            while not eof:
                parts = [carry]
                size = len(carry)
                while size < want:
                    try:
                        chunk = fh.read(piece)
                    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                        whole = b"".join(parts)
                        at = line + whole.count(b"\n")
                        raise DataFormatError(
                            f"corrupt or truncated gzip file: the data ends after line {at - 1} ({exc})",
                            path=str(self.path),
                            line=at,
                            hint="the download or copy was probably cut short: fetch the file again",
                        ) from None
                    if not chunk:
                        eof = True
                        break
                    parts.append(chunk)
                    size += len(chunk)
                self.bytes_read = consumed_bytes(fh)
                data = b"".join(parts)
                if eof:
                    if data.strip():
                        yield from self._emit(data if data.endswith(b"\n") else data + b"\n", line, first)
                    return
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    # One line longer than the block: read on (the old loop
                    # re-read nothing and spun forever), up to the line limit.
                    if len(data) > self.max_line_bytes:
                        raise DataFormatError(
                            f"a line longer than {self.max_line_bytes:,} bytes: not an interaction row",
                            path=str(self.path),
                            line=line,
                            hint="check the file is the interaction log (not binary or one-line JSON)",
                        )
                    carry = data
                    want = len(data) + self.block_bytes
                    continue
                want = self.block_bytes
                block, carry = data[:cut], data[cut:]
                yield from self._emit(block, line, first)
                line += block.count(b"\n")
                first = False
        finally:
            fh.close()

    def _emit(self, block: bytes, line: int, first: bool) -> Iterator[tuple[int, bytes]]:
        if first and self.format.header:
            end = block.find(b"\n") + 1
            block, line = block[end:], line + 1
        if first and block.startswith(b"\xef\xbb\xbf"):
            block = block[3:]
        if b"\x00" in block and self.format.encoding.lower().replace("-", "") in ("utf8", "ascii"):
            raise _nul_line(self.path, block, line)
        if self.format.sep == "::":
            block = block.replace(b"::", _UNIT_SEP.encode())
        if self.format.encoding.lower().replace("-", "") not in ("utf8", "ascii"):
            block = block.decode(self.format.encoding).encode("utf-8")
        if block:
            yield line, block

    def _csv_options(
        self, types: dict[str, pa.DataType], handler: object = None, size: int = 0
    ) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
        sep = _UNIT_SEP if self.format.sep == "::" else self.format.sep
        block_size = max(1 << 20, min(self.block_bytes, 1 << 30))
        if size > block_size:
            # A block grown around a line longer than the usual block: Arrow's block must hold that line.
            block_size = size + 1
        read = pacsv.ReadOptions(
            column_names=list(self.format.columns),
            use_threads=handler is None,
            block_size=block_size,
        )
        parse = pacsv.ParseOptions(
            delimiter=sep,
            quote_char='"' if sep == "," else False,
            invalid_row_handler=handler,
        )
        convert = pacsv.ConvertOptions(
            include_columns=self.roles.names(),
            column_types=types,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        return read, parse, convert

    def _types(self) -> dict[str, pa.DataType]:
        types: dict[str, pa.DataType] = {self.roles.user: self.id_type, self.roles.item: self.id_type}
        if self.roles.rating:
            types[self.roles.rating] = pa.float32()
        if self.roles.timestamp:
            types[self.roles.timestamp] = pa.int64()
        return types

    def _parse_block(self, block: bytes, start_line: int) -> pa.RecordBatch:
        read, parse, convert = self._csv_options(self._types(), size=len(block))
        try:
            table = pacsv.read_csv(pa.py_buffer(block), read, parse, convert)
        except pa.ArrowInvalid:
            # Slow path, only for blocks with bad rows: find them, with line numbers.
            table = self._parse_block_checked(block, start_line)
        else:
            if self.roles.rating and not _ratings_ok(table.column(self.roles.rating)).all():
                table = self._parse_block_checked(block, start_line)
        return self._to_batch(table)

    def _parse_block_checked(self, block: bytes, start_line: int) -> pa.Table:
        # Arrow numbers rows by non-empty lines from 1; mapped to file lines below.
        short_rows: list[tuple[int, str, str]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            reason = (
                f"expected {row.expected_columns} fields separated by {self.format.sep!r}, found {row.actual_columns}"
            )
            short_rows.append((row.number or 0, reason, row.text[:200]))
            return "skip"

        str_types = {c: pa.string() for c in self._types()}
        read, parse, convert = self._csv_options(str_types, on_invalid, len(block))
        try:
            table = pacsv.read_csv(pa.py_buffer(block), read, parse, convert)
        except pa.ArrowInvalid as exc:
            raise DataFormatError(f"unparseable text ({exc})", path=str(self.path), line=start_line) from None
        # Physical line of every non-empty line of the block, in order.
        nonempty = np.flatnonzero(np.array([bool(ln.strip()) for ln in block.split(b"\n")])) + start_line
        in_range = [n for n, _, _ in short_rows if 0 < n <= len(nonempty)]
        bad = [
            BadRow(line=int(nonempty[n - 1]) if 0 < n <= len(nonempty) else start_line, reason=r, text=t)
            for n, r, t in short_rows
        ]
        kept_lines = np.delete(nonempty, [n - 1 for n in in_range])
        keep = np.ones(table.num_rows, dtype=bool)
        row_reasons: list[tuple[int, str]] = []
        for name, typ in self._types().items():
            col = table.column(name)
            pattern = _INT_RE if pa.types.is_integer(typ) else _FLOAT_RE if pa.types.is_floating(typ) else r"\S"
            ok = np.array(pc.match_substring_regex(col, pattern).to_numpy(zero_copy_only=False), dtype=bool)
            role = next(r for r in _ROLES if getattr(self.roles, r) == name)
            expected = {"int64": "an integer", "float": "a number"}.get(str(typ), "a non-empty value")
            if pa.types.is_integer(typ):
                # 19 digits pass the pattern; those beyond int64 do not fit (rare: checked one by one).
                long = np.flatnonzero(ok & (pc.utf8_length(pc.utf8_trim_whitespace(col)).to_numpy() >= 19))
                for i in long:
                    if not _int64_ok(str(col[i].as_py())):
                        ok[i] = False
                expected = "an integer that fits in 64 bits" if len(long) else expected
            elif name == self.roles.rating:
                floats = pc.cast(pc.if_else(pa.array(ok), pc.utf8_trim_whitespace(col), "0"), pa.float64())
                finite = _ratings_ok(floats)
                for i in np.flatnonzero(ok & ~finite & keep):
                    row_reasons.append(
                        (int(i), f"rating column {name!r}: expected a finite number >= 0, got {col[i].as_py()!r}")
                    )
                keep &= ~(ok & ~finite)
            for i in np.flatnonzero(~ok & keep):
                row_reasons.append((int(i), f"{role} column {name!r}: expected {expected}, got {col[i].as_py()!r}"))
            keep &= ok
        for row, reason in row_reasons:
            bad.append(BadRow(line=int(kept_lines[row]), reason=reason, text=_row_text(table, row)))
        bad.sort(key=lambda b: b.line)
        if bad and self.on_error == "raise":
            first = bad[0]
            raise DataFormatError(
                f"{first.reason}: {first.text!r}",
                path=str(self.path),
                line=first.line,
                hint=self._hint(first),
            )
        self.bad_rows += len(bad)
        self.bad_examples.extend(bad[: max(0, _MAX_EXAMPLES - len(self.bad_examples))])
        table = table.filter(pa.array(keep))
        return table.cast(pa.schema([pa.field(n, self._types()[n]) for n in table.column_names]))

    def _hint(self, row: BadRow) -> str:
        if row.reason.startswith("expected") and row.text:
            try:
                actual = _detect_sep([row.text])
            except DataFormatError:
                actual = None
            if actual is not None and actual != self.format.sep:
                return f"the file looks {actual!r}-separated: pass --sep {actual!r}"
        if "expected an integer" in row.reason:
            return "ids are read as integers; pass --id-type str if they are names, or --on-error skip"
        return "fix the row, or pass --on-error skip to skip bad rows (they are counted and listed)"

    def _to_batch(self, table: pa.Table) -> pa.RecordBatch:
        n = table.num_rows
        rating = (
            table.column(self.roles.rating).cast(pa.float32())
            if self.roles.rating
            else pa.array(np.ones(n, dtype=np.float32))
        )
        timestamp = (
            table.column(self.roles.timestamp).cast(pa.int64()) if self.roles.timestamp else pa.nulls(n, pa.int64())
        )
        columns = [table.column(self.roles.user), table.column(self.roles.item), rating, timestamp]
        out = pa.Table.from_arrays(columns, schema=self.schema).combine_chunks()
        batches = out.to_batches()
        return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=self.schema)

    # -- parquet ----------------------------------------------------------------

    def _iter_parquet(self) -> Iterator[pa.RecordBatch]:
        pf = pq.ParquetFile(self.path)
        batch_rows = max(1, self.block_bytes // 32)
        for raw in pf.iter_batches(batch_size=batch_rows, columns=self.roles.names()):
            table = pa.Table.from_batches([raw])
            for role in ("user", "item"):
                col = table.column(getattr(self.roles, role))
                if col.null_count:
                    raise DataFormatError(
                        f"{col.null_count} null {role} ids in column {getattr(self.roles, role)!r}",
                        path=str(self.path),
                    )
            try:
                table = table.cast(pa.schema([pa.field(n, self._types()[n]) for n in table.column_names]), safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataFormatError(f"column types do not fit ({exc})", path=str(self.path)) from None
            if self.roles.rating:
                ok = _ratings_ok(table.column(self.roles.rating))
                if not ok.all():
                    bad = int(np.flatnonzero(~ok)[0])
                    value = table.column(self.roles.rating)[bad].as_py()
                    if self.on_error == "raise":
                        raise DataFormatError(
                            f"row {self.rows + bad + 1}: rating column {self.roles.rating!r}: "
                            f"expected a finite number >= 0, got {value!r}",
                            path=str(self.path),
                            hint="fix the row, or pass --on-error skip to skip bad rows (they are counted and listed)",
                        )
                    for i in np.flatnonzero(~ok)[: max(0, _MAX_EXAMPLES - len(self.bad_examples))]:
                        self.bad_examples.append(
                            BadRow(line=self.rows + int(i) + 1, reason="rating: not finite or negative", text="")
                        )
                    self.bad_rows += int((~ok).sum())
                    table = table.filter(pa.array(ok))
            self.bytes_read = self.total_bytes * (self.rows + table.num_rows) // max(pf.metadata.num_rows, 1)
            if table.num_rows:
                self.rows += table.num_rows
                yield self._to_batch(table)
        if self.rows == 0:
            raise DataError(f"{self.path}: no interaction rows")


def _ratings_ok(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Mask of ratings a model can use: finite and not negative (NaN compares false)."""
    values = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values >= 0)


# Marks a block with no rows (a header-only file) in _parallel_batches.
_EMPTY = pa.RecordBatch.from_pylist([], schema=pa.schema([]))
# Marks a block holding a NUL byte (not UTF-8 text) in _parallel_batches.
_NUL = pa.RecordBatch.from_pylist([], schema=pa.schema([]))


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"PAR1"


def _parquet_id_type(typ: pa.DataType, wanted: IdType) -> pa.DataType:
    if wanted == "int":
        return pa.int64()
    if wanted == "str":
        return pa.string()
    return pa.int64() if pa.types.is_integer(typ) else pa.string()


def _row_text(table: pa.Table, i: int) -> str:
    return " ".join(str(table.column(c)[i].as_py()) for c in table.column_names)[:200]
