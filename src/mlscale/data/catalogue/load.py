"""Catalogue entries from data: one TOML file per data set, checked field by field on load.

A file ``<name>.toml`` beside this module holds one :class:`~mlscale.data.catalogue.model.Dataset`:

- top-level strings ``name`` (the file's stem), ``title``, ``kind``, ``url``, ``homepage``,
  ``licence``, ``licence_note``, ``citation``, ``summary``; optional ``notes`` (strings)
  and ``manual`` (how to get files no download makes);
- ``[downloads.KEY]`` tables (``url``, optional ``size``, ``sha256``): official archives
  several files come from, referred to by ``origin = { download = "KEY", ... }``;
- ``[interactions]`` and ``[images]`` as :class:`InteractionSource` and :class:`ImageSplits`;
- ``[[files]]``: ``path``, ``size``, ``sha256``, optional ``content_sha256``,
  ``content_size``, ``rows``, ``required``, ``note``, ``origin`` (``download`` or ``url``,
  ``member``, ``gunzip``, ``crlf_to_lf``, ``head_lines``) and ``reader``
  (``format`` one of :data:`READERS`; ``delimited`` takes the fields of
  :class:`~mlscale.data.formats.delimited.Delimited`).

Unknown keys, missing keys and wrong types are refused with a
:class:`~mlscale.errors.DataFormatError` naming the file and the field
(``files[3].origin.member``), so a typo never turns into a silently absent value.

>>> ds = load_entry(ENTRIES / "movielens-100k.toml")
>>> ds.file("u.data").origin.describe()
'https://files.grouplens.org/datasets/movielens/ml-100k.zip, member ml-100k/u.data'
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, cast, get_args

from mlscale.data.catalogue.model import (
    DataFile,
    Dataset,
    Download,
    ImageSplits,
    InteractionSource,
    Kind,
    Origin,
    TableReader,
    closest,
)
from mlscale.data.formats.argus import read_binetflow
from mlscale.data.formats.delimited import Delimited
from mlscale.data.formats.jsonl import read_json_lines
from mlscale.data.formats.nfdump import read_nfdump_csv
from mlscale.data.formats.zeek import read_zeek
from mlscale.errors import DataFormatError, DatasetNotFoundError

__all__ = ["DATASETS", "ENTRIES", "READERS", "get_dataset", "load_catalogue", "load_entry"]

#: The folder of the entry files (shipped as package data).
ENTRIES = Path(str(files("mlscale.data.catalogue")))
#: The table readers a file's ``reader.format`` may name (``delimited`` takes options).
READERS: Mapping[str, TableReader] = MappingProxyType(
    {
        "zeek": read_zeek,
        "nfdump-csv": read_nfdump_csv,
        "argus-binetflow": read_binetflow,
        "json-lines": read_json_lines,
    }
)

_T = TypeVar("_T")
_INDEX = "index.toml"
_KINDS = get_args(Kind)


class _Fields:
    """One TOML table being read: typed getters that name the file and field on a mismatch."""

    def __init__(self, table: object, where: str, source: Path) -> None:
        if not isinstance(table, dict):
            raise DataFormatError(f"{where}: expected a table, got {_type(table)}", path=str(source))
        self.table: dict[str, Any] = table
        self.where = where
        self.source = source
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> DataFormatError:
        name = f"{self.where}.{key}" if self.where else key
        return DataFormatError(f"{name}: {message}", path=str(self.source))

    def get(self, key: str, kind: type[_T] | tuple[type, ...], what: str, default: object) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is _REQUIRED:
                raise self.error(key, f"missing (expected {what})")
            return default
        value = self.table[key]
        # bool is an int to Python, never to a catalogue.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise self.error(key, f"expected {what}, got {_type(value)} {value!r}"[:200])
        return value

    def text(self, key: str, default: object = None) -> Any:
        return self.get(key, str, "a string", _REQUIRED if default is None else default)

    def opt_text(self, key: str) -> str | None:
        return cast("str | None", self.get(key, str, "a string", None))

    def whole(self, key: str, *, required: bool = True, minimum: int = 0) -> Any:
        value = self.get(key, int, "a whole number", _REQUIRED if required else None)
        if value is not None and value < minimum:
            raise self.error(key, f"expected a whole number >= {minimum}, got {value}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        return cast(bool, self.get(key, bool, "true or false", default))

    def texts(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        value = self.get(key, list, "a list of strings", _REQUIRED if required else [])
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise self.error(key, f"expected a list of strings, found {_type(bad[0])} {bad[0]!r}")
        return tuple(value)

    def sha256(self, key: str, *, required: bool = True) -> Any:
        value = self.text(key) if required else self.opt_text(key)
        if value is not None and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
            raise self.error(key, f"expected 64 lower-case hex digits, got {value!r}")
        return value

    def sub(self, key: str) -> _Fields | None:
        self.used.add(key)
        if key not in self.table:
            return None
        return _Fields(self.table[key], f"{self.where}.{key}" if self.where else key, self.source)

    def done(self) -> None:
        """Refuse keys nothing read: a typo must not pass as an absent optional field."""
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            hint = closest(unknown[0], sorted(self.used))
            raise DataFormatError(
                f"{self.where + ': ' if self.where else ''}unknown key {unknown[0]!r}"
                + (f" (did you mean {hint!r}?)" if hint else "")
                + f"; expected one of {', '.join(sorted(self.used))}",
                path=str(self.source),
            )


_REQUIRED = object()


def _type(value: object) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "a number"}.get(
        type(value), type(value).__name__
    )


def _reader(f: _Fields) -> TableReader:
    fmt = f.text("format")
    if fmt == "delimited":
        types = f.sub("types")
        pairs: tuple[tuple[str, str], ...] = ()
        if types is not None:
            pairs = tuple((name, types.text(name)) for name in types.table)
            types.done()
        columns = f.texts("columns") if "columns" in f.table else None
        quoted = f.get("quoted", bool, "true or false", None)
        reader: TableReader = Delimited(
            sep=f.text("sep", ","),
            header=f.flag("header", True),
            columns=columns,
            encoding=f.text("encoding", "utf-8"),
            types=pairs,
            quoted=quoted,
        )
    elif fmt in READERS:
        reader = READERS[fmt]
    else:
        raise f.error("format", f"unknown reader {fmt!r}; expected delimited or {', '.join(READERS)}")
    f.done()
    return reader


def _origin(f: _Fields, downloads: Mapping[str, Download]) -> Origin:
    key, url = f.opt_text("download"), f.opt_text("url")
    if (key is None) == (url is None):
        raise f.error("download", "expected exactly one of download (a [downloads] key) or url")
    if key is not None and key not in downloads:
        raise f.error("download", f"no [downloads.{key}] table; known: {', '.join(downloads) or 'none'}")
    origin = Origin(
        downloads[key] if key is not None else Download(cast(str, url)),
        member=f.opt_text("member"),
        gunzip=f.flag("gunzip", False),
        crlf_to_lf=f.flag("crlf_to_lf", False),
        head_lines=f.whole("head_lines", required=False, minimum=1),
    )
    f.done()
    return origin


def _file(f: _Fields, downloads: Mapping[str, Download]) -> DataFile:
    origin = f.sub("origin")
    reader = f.sub("reader")
    file = DataFile(
        path=f.text("path"),
        size=f.whole("size"),
        sha256=f.sha256("sha256"),
        content_sha256=f.sha256("content_sha256", required=False),
        content_size=f.whole("content_size", required=False),
        origin=_origin(origin, downloads) if origin is not None else None,
        reader=_reader(reader) if reader is not None else None,
        rows=f.whole("rows", required=False),
        required=f.flag("required", True),
        note=f.text("note", ""),
    )
    f.done()
    return file


def _pair(f: _Fields, key: str) -> tuple[str, str]:
    value = f.texts(key, required=True)
    if len(value) != 2:
        raise f.error(key, f"expected [images file, labels file], got {len(value)} names")
    return value[0], value[1]


def _images(f: _Fields) -> ImageSplits:
    shape = f.get("shape", list, "[rows, columns]", _REQUIRED)
    if len(shape) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape):
        raise f.error("shape", f"expected two positive whole numbers [rows, columns], got {shape!r}")
    splits = ImageSplits(
        train=_pair(f, "train"),
        test=_pair(f, "test"),
        shape=(shape[0], shape[1]),
        classes=f.whole("classes", minimum=1),
        class_names=f.texts("class_names"),
    )
    f.done()
    return splits


def _interactions(f: _Fields) -> InteractionSource:
    source = InteractionSource(
        file=f.text("file"),
        sep=f.text("sep"),
        header=f.flag("header", False),
        columns=f.texts("columns", required=True),
        user=f.text("user"),
        item=f.text("item"),
        rating=f.opt_text("rating"),
        timestamp=f.opt_text("timestamp"),
        encoding=f.text("encoding", "utf-8"),
    )
    f.done()
    return source


def _section(
    top: _Fields, key: str, parse: Callable[[_Fields], _T], paths: set[str], uses: Callable[[_T], tuple[str, ...]]
) -> _T | None:
    f = top.sub(key)
    if f is None:
        return None
    value = parse(f)
    for path in uses(value):
        if path not in paths:
            raise top.error(key, f"names {path!r}, which is not one of the [[files]]")
    return value


def load_entry(path: Path) -> Dataset:
    """Read and check one entry file; raises :class:`~mlscale.errors.DataFormatError` naming file and field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise DataFormatError(f"cannot read catalogue entry ({err})", path=str(path)) from None
    except tomllib.TOMLDecodeError as err:
        raise DataFormatError(f"not valid TOML ({err})", path=str(path)) from None
    top = _Fields(raw, "", path)
    name = top.text("name")
    if name != path.stem:
        raise top.error("name", f"expected {path.stem!r} (the file's name), got {name!r}")
    kind = top.text("kind")
    if kind not in _KINDS:
        raise top.error("kind", f"expected one of {', '.join(_KINDS)}, got {kind!r}")
    downloads: dict[str, Download] = {}
    table = top.sub("downloads")
    if table is not None:
        for key in table.table:
            d = table.sub(key)
            assert d is not None
            downloads[key] = Download(
                d.text("url"), d.whole("size", required=False), d.sha256("sha256", required=False)
            )
            d.done()
        table.done()
    entries = top.get("files", list, "an array of [[files]] tables", _REQUIRED)
    data_files = tuple(_file(_Fields(e, f"files[{i}]", path), downloads) for i, e in enumerate(entries))
    paths = {f.path for f in data_files}
    if len(paths) != len(data_files):
        raise top.error("files", "two [[files]] have the same path")
    dataset = Dataset(
        name=name,
        title=top.text("title"),
        kind=cast(Kind, kind),
        url=top.text("url"),
        homepage=top.text("homepage"),
        licence=top.text("licence"),
        licence_note=top.text("licence_note"),
        citation=top.text("citation"),
        summary=top.text("summary"),
        files=data_files,
        interactions=_section(top, "interactions", _interactions, paths, lambda s: (s.file,)),
        images=_section(top, "images", _images, paths, lambda s: (*s.train, *s.test)),
        notes=top.texts("notes"),
        manual=top.text("manual", ""),
    )
    top.done()
    return dataset


def load_catalogue(folder: Path = ENTRIES) -> Mapping[str, Dataset]:
    """Every entry of ``folder`` by name (read-only), in the order its ``index.toml`` lists them.

    The index (``entries = ["movielens-100k", ...]``) sets the order ``mlscale data list``
    shows; an entry file it does not list, or a name without a file, is refused.
    """
    index = folder / _INDEX
    try:
        listed = tomllib.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise DataFormatError(f"cannot read the catalogue index ({err})", path=str(index)) from None
    top = _Fields(listed, "", index)
    names = top.texts("entries", required=True)
    top.done()
    found = {p.stem for p in folder.glob("*.toml") if p.name != _INDEX}
    for name in names:
        if name not in found:
            raise top.error("entries", f"lists {name!r}, but there is no {name}.toml")
    unlisted = sorted(found - set(names))
    if unlisted:
        raise top.error("entries", f"does not list {unlisted[0]}.toml: add it (in the order `data list` shows)")
    return MappingProxyType({name: load_entry(folder / f"{name}.toml") for name in names})


#: Every catalogue entry by name (read-only), loaded once from :data:`ENTRIES`.
DATASETS: Mapping[str, Dataset] = load_catalogue()


def get_dataset(name: str) -> Dataset:
    """The catalogue entry called ``name``.

    >>> get_dataset("fashion-mnist").kind
    'images'
    >>> get_dataset("movielens-100")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlscale.errors.DatasetNotFoundError: unknown data set 'movielens-100'; known: ...
      hint: did you mean 'movielens-100k'?
    """
    try:
        return DATASETS[name]
    except KeyError:
        close = closest(name, list(DATASETS))
        raise DatasetNotFoundError(
            f"unknown data set {name!r}; known: {', '.join(DATASETS)}",
            hint=f"did you mean {close!r}?" if close else "`mlscale data list` shows the catalogue",
        ) from None
