"""Typed tables from JSON-lines files (one JSON object per line).

Arrow's JSON reader infers one schema for the whole file (a key missing on
some lines becomes null there). Files may be gzip-compressed or a zip archive
holding one file. When Arrow rejects the input, the file is scanned line by
line so the error names the first bad line.

>>> import pathlib, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp, "reviews.json")
...     _ = path.write_text('{"user": "a", "stars": 5}\\n{"user": "b"}\\n')
...     table = read_json_lines(path)
>>> table.column("stars").to_pylist()
[5, None]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pajson

from mlscale.data.streams import open_binary
from mlscale.errors import DataFormatError

__all__ = ["read_json_lines"]


def read_json_lines(path: Path, *, types: Mapping[str, pa.DataType] | None = None) -> pa.Table:
    """Read a JSON-lines file into an Arrow table.

    ``types`` fixes the type of some keys (others are inferred); a key listed
    there but absent from every line is not added.
    """
    parse_options = pajson.ParseOptions(newlines_in_values=False)
    try:
        with open_binary(path) as stream:
            table = pajson.read_json(
                stream, read_options=pajson.ReadOptions(block_size=1 << 22), parse_options=parse_options
            )
    except pa.ArrowInvalid as err:
        line, reason = _locate(path)
        raise DataFormatError(
            reason or str(err).replace("JSON parse error: ", ""),
            path=str(path),
            line=line,
            hint="expected one JSON object per line, the same type for a key on every line",
        ) from None
    if types:
        for name, wanted in types.items():
            index = table.schema.get_field_index(name)
            if index >= 0 and table.schema.field(index).type != wanted:
                try:
                    table = table.set_column(index, name, table.column(index).cast(wanted))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                    raise DataFormatError(f"key {name!r}: cannot read as {wanted} ({err})", path=str(path)) from None
    return table


def _locate(path: Path) -> tuple[int | None, str | None]:
    """The first line that is not a JSON object, or whose key types differ from earlier lines."""
    kinds: dict[str, str] = {}
    with open_binary(path) as stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as err:
                return number, f"not valid JSON ({err})"
            if not isinstance(value, dict):
                return number, f"expected a JSON object, found {type(value).__name__}"
            for key, item in value.items():
                kind = _kind(item)
                if kind == "null":
                    continue
                seen = kinds.setdefault(key, kind)
                if seen != kind and {seen, kind} != {"int", "float"}:
                    return number, f"key {key!r} is a {kind} here but a {seen} on earlier lines"
    return None, None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return type(value).__name__
