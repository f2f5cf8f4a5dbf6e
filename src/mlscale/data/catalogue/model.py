"""What a catalogue entry is: :class:`Dataset`, its :class:`DataFile` s, and the checks and readers on them.

The entries themselves are data (one TOML file per data set, read by
:mod:`mlscale.data.catalogue.load`); this module holds the types they become
and what can be done with one: :meth:`Dataset.verify` (size and sha256 of
every file, or of the decompressed content of a re-compressed copy),
:meth:`Dataset.require` (instructions when files are missing) and the readers
:meth:`Dataset.read_interactions`, :meth:`Dataset.read_images` and
:meth:`Dataset.read_table`.

>>> Origin(Download("https://x.org/a.zip"), member="a/r.dat", head_lines=10).describe()
'https://x.org/a.zip, member a/r.dat, first 10 lines'
"""

from __future__ import annotations

import difflib
import hashlib
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from mlscale.data.formats.delimited import read_delimited
from mlscale.data.formats.idx import read_idx
from mlscale.data.formats.jsonl import read_json_lines
from mlscale.data.streams import open_binary
from mlscale.errors import DataError, DataFormatError, DatasetNotFoundError

__all__ = [
    "DataFile",
    "Dataset",
    "Download",
    "FileCheck",
    "FileStatus",
    "ImageSplits",
    "InteractionSource",
    "Kind",
    "Origin",
    "TableReader",
    "VerifyReport",
    "closest",
]

Kind = Literal["interactions", "images", "flows", "dns", "records"]
#: Reads one catalogue file into a table.
TableReader = Callable[[Path], pa.Table]

_HASH_CHUNK = 1 << 20


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class Download:
    """One official download; ``size``/``sha256`` when the published archive is known."""

    url: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """How :func:`fetch` rebuilds one catalogue file from an official download.

    The steps run in this order: take ``member`` from the downloaded zip (or
    the download itself), gunzip it when ``gunzip``, turn CRLF line ends into
    LF when ``crlf_to_lf``, keep the first ``head_lines`` lines; the result is
    stored as the catalogue file (gzip-compressed for ``.gz`` files, as the one
    member of a zip for ``.zip`` files).
    """

    download: Download
    member: str | None = None
    gunzip: bool = False
    crlf_to_lf: bool = False
    head_lines: int | None = None

    def describe(self) -> str:
        """The download and the transform, in words."""
        steps = [self.download.url]
        if self.member:
            steps.append(f"member {self.member}")
        if self.gunzip:
            steps.append("gunzip")
        if self.crlf_to_lf:
            steps.append("CRLF -> LF")
        if self.head_lines is not None:
            steps.append(f"first {self.head_lines:,} lines")
        return ", ".join(steps)


@dataclass(frozen=True, slots=True)
class DataFile:
    """One file of a data set, as stored in ``<data dir>/<name>/<path>``.

    ``size`` and ``sha256`` are those of the reference copy. For ``.gz`` and
    ``.zip`` files ``content_sha256``/``content_size`` describe the
    decompressed content, which is what a re-compressed copy must match.
    ``origin`` is None when no official download reproduces the file (``note``
    then says how to get it). ``rows`` is the documented number of records.
    """

    path: str
    size: int
    sha256: str
    content_sha256: str | None = None
    content_size: int | None = None
    origin: Origin | None = None
    reader: TableReader | None = None
    rows: int | None = None
    required: bool = True
    note: str = ""

    @property
    def compression(self) -> Literal["gzip", "zip", "none"]:
        """How the file is stored, from its name."""
        if self.path.endswith(".gz"):
            return "gzip"
        if self.path.endswith(".zip"):
            return "zip"
        return "none"

    @property
    def zip_member(self) -> str:
        """The name of the one file inside a ``.zip`` catalogue file."""
        return Path(self.path).name.removesuffix(".zip")


@dataclass(frozen=True, slots=True)
class InteractionSource:
    """The main user-item interaction file of a data set, described for a generic reader."""

    file: str  # relative to the dataset folder, e.g. "u.data" or "ratings.first487650.dat.gz"
    sep: str  # "\t", ",", "::" or "jsonl" (JSON lines, possibly inside a zip)
    header: bool
    columns: tuple[str, ...]  # names of ALL columns in file order; the roles below refer to them
    user: str
    item: str
    rating: str | None = None  # rating or play count (lastfm weight)
    timestamp: str | None = None
    encoding: str = "utf-8"


@dataclass(frozen=True, slots=True)
class ImageSplits:
    """IDX image and label files per split, and the expected image shape."""

    train: tuple[str, str]
    test: tuple[str, str]
    shape: tuple[int, int]
    classes: int
    class_names: tuple[str, ...] = ()


class FileStatus(StrEnum):
    """The outcome of checking one file."""

    OK = "ok"
    MISSING = "missing"
    SIZE_MISMATCH = "size mismatch"
    SHA256_MISMATCH = "sha256 mismatch"


@dataclass(frozen=True, slots=True)
class FileCheck:
    """One file's check: status, and what was found when it differs."""

    file: DataFile
    location: Path
    status: FileStatus
    actual_size: int | None = None
    actual_sha256: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the file is right, or is an optional file that is absent."""
        return self.status is FileStatus.OK or (self.status is FileStatus.MISSING and not self.file.required)

    def describe(self) -> str:
        """One line: path, status and the differing values."""
        path, status = self.file.path, self.status
        if status is FileStatus.OK:
            return f"ok       {path}" + (f" ({self.detail})" if self.detail else "")
        if status is FileStatus.MISSING:
            return f"missing  {path}" + ("" if self.file.required else " (optional)")
        if status is FileStatus.SIZE_MISMATCH:
            return f"BAD      {path}: size {self.actual_size:,} bytes, expected {self.file.size:,}"
        return f"BAD      {path}: sha256 {self.actual_sha256}, expected {self.file.sha256}" + (
            f"; {self.detail}" if self.detail else ""
        )


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Every file of a data set checked against the catalogue."""

    dataset: str
    root: Path
    checks: tuple[FileCheck, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every required file is present and matches."""
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> tuple[FileCheck, ...]:
        """The checks that are not ok."""
        return tuple(check for check in self.checks if not check.ok)

    def __str__(self) -> str:
        good = sum(check.status is FileStatus.OK for check in self.checks)
        head = f"{self.dataset}: {good}/{len(self.checks)} files ok in {self.root}"
        return "\n".join([head, *("  " + c.describe() for c in self.checks), *("  note: " + n for n in self.notes)])


# --------------------------------------------------------------------------- checks


def _sha256_stream(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(_HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _check_file(file: DataFile, root: Path) -> FileCheck:
    location = root / file.path
    if not location.is_file():
        return FileCheck(file, location, FileStatus.MISSING)
    size = location.stat().st_size
    if file.content_sha256 is None and size != file.size:
        return FileCheck(file, location, FileStatus.SIZE_MISMATCH, actual_size=size)
    with location.open("rb") as stream:
        digest, _ = _sha256_stream(stream)
    if digest == file.sha256:
        return FileCheck(file, location, FileStatus.OK, size, digest)
    if file.content_sha256 is None:
        return FileCheck(file, location, FileStatus.SHA256_MISMATCH, size, digest)
    # A re-compressed copy differs in its bytes; what must match is the content.
    try:
        with open_binary(location) as stream:
            content, content_size = _sha256_stream(stream)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, DataError) as err:
        return FileCheck(file, location, FileStatus.SHA256_MISMATCH, size, digest, f"cannot decompress it ({err})")
    if content == file.content_sha256:
        return FileCheck(
            file, location, FileStatus.OK, size, digest, "re-compressed copy; decompressed content matches"
        )
    return FileCheck(
        file,
        location,
        FileStatus.SHA256_MISMATCH,
        size,
        digest,
        f"decompressed content sha256 {content} ({content_size:,} bytes), "
        f"expected {file.content_sha256} ({file.content_size or 0:,} bytes)",
    )


# --------------------------------------------------------------------------- data sets


@dataclass(frozen=True, slots=True)
class Dataset:
    """One catalogue entry: provenance, files and readers of a public data set."""

    name: str
    title: str
    kind: Kind
    url: str
    homepage: str
    licence: str
    licence_note: str
    citation: str
    summary: str
    files: tuple[DataFile, ...]
    interactions: InteractionSource | None = None
    images: ImageSplits | None = None
    notes: tuple[str, ...] = ()
    manual: str = ""
    _by_path: Mapping[str, DataFile] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_path", {f.path: f for f in self.files})

    # -- where the files are

    def path(self, data_dir: Path | str) -> Path:
        """The folder of this data set: ``<data_dir>/<name>``."""
        return Path(data_dir).expanduser() / self.name

    def file(self, path: str) -> DataFile:
        """The catalogue file at ``path`` (relative to the data set folder)."""
        try:
            return self._by_path[path]
        except KeyError:
            close = closest(path, list(self._by_path))
            raise DataError(
                f"{self.name} has no file {path!r}; its files: {', '.join(self._by_path)}",
                hint=f"did you mean {close!r}?" if close else None,
            ) from None

    @property
    def size(self) -> int:
        """Total bytes of the catalogue files."""
        return sum(f.size for f in self.files)

    @property
    def fetchable(self) -> bool:
        """Whether :func:`fetch` can download at least some of the files."""
        return any(f.origin is not None for f in self.files)

    def present(self, data_dir: Path | str) -> int:
        """How many catalogue files exist on disk (unchecked)."""
        root = self.path(data_dir)
        return sum((root / f.path).is_file() for f in self.files)

    def verify(self, data_dir: Path | str) -> VerifyReport:
        """Check every file's presence, size and sha256 (gzip/zip: or decompressed content)."""
        root = self.path(data_dir)
        return VerifyReport(self.name, root, tuple(_check_file(f, root) for f in self.files))

    def manual_instructions(self, data_dir: Path | str, files: tuple[DataFile, ...] | None = None) -> str:
        """Where to put which files by hand, and where they come from."""
        wanted = files if files is not None else tuple(f for f in self.files if f.required)
        names = ", ".join(f.path for f in wanted)
        sources = sorted({f.origin.download.url for f in wanted if f.origin is not None})
        text = f"put {names} into {self.path(data_dir)}/"
        if sources:
            text += f" (from {', '.join(sources)}; see `mlscale data info {self.name}` for the steps)"
        if any(f.origin is None for f in wanted) and self.manual:
            text += f"; {self.manual}"
        return text

    def require(self, data_dir: Path | str, files: tuple[str, ...] | None = None) -> Path:
        """Return the data set folder; raise when required files (or ``files``) are missing.

        Only presence is checked here (cheap); :meth:`verify` checks contents.
        """
        root = self.path(data_dir)
        wanted = tuple(self.file(p) for p in files) if files is not None else tuple(f for f in self.files if f.required)
        missing = tuple(f for f in wanted if not (root / f.path).is_file())
        if missing:
            how = (
                f"run `mlscale data fetch {self.name}` to download them, or "
                if self.fetchable and any(f.origin is not None for f in missing)
                else ""
            )
            raise DatasetNotFoundError(
                f"data set {self.name!r} is not in {root}: missing {', '.join(f.path for f in missing)}",
                hint=how + self.manual_instructions(data_dir, missing),
            )
        return root

    # -- readers

    def read_table(self, data_dir: Path | str, file: str) -> pa.Table:
        """Read one catalogue file into a typed Arrow table (dispatching on its format)."""
        spec = self.file(file)
        if spec.reader is None:
            tables = [f.path for f in self.files if f.reader is not None]
            raise DataError(
                f"{self.name}/{file} is not a table ({spec.note or 'documentation'})",
                hint=f"tables in {self.name}: {', '.join(tables)}" if tables else None,
            )
        root = self.require(data_dir, (file,))
        return spec.reader(root / file)

    def read_interactions(self, data_dir: Path | str) -> pa.Table:
        """The interactions as a table ``user, item, rating (float32), timestamp (int64, nullable)``.

        ``user``/``item`` are int64 for numeric ids and string for Amazon's.
        The whole file is read into memory; stream large files with
        :class:`mlscale.data.readers.InteractionReader` instead.
        """
        src = self.interactions
        if src is None:
            raise DataError(f"data set {self.name!r} holds no user-item interactions ({self.kind})")
        root = self.require(data_dir, (src.file,))
        location = root / src.file
        if src.sep == "jsonl":
            table = read_json_lines(location)
            id_type = pa.string()
        else:
            types = {src.user: "int64", src.item: "int64"}
            if src.rating:
                types[src.rating] = "float32"
            if src.timestamp:
                types[src.timestamp] = "int64"
            table = read_delimited(
                location,
                sep=src.sep,
                header=src.header,
                columns=src.columns,
                encoding=src.encoding,
                types=types,
                quoted=src.sep == ",",
            )
            id_type = pa.int64()
        missing = [c for c in (src.user, src.item, src.rating, src.timestamp) if c and c not in table.column_names]
        if missing:
            raise DataFormatError(
                f"no column {', '.join(map(repr, missing))} (found {', '.join(table.column_names)})",
                path=str(location),
            )
        n = table.num_rows
        rating = (
            table.column(src.rating).cast(pa.float32())
            if src.rating
            else pa.array(np.ones(n, dtype=np.float32), type=pa.float32())
        )
        timestamp = table.column(src.timestamp).cast(pa.int64()) if src.timestamp else pa.nulls(n, type=pa.int64())
        return pa.table(
            {
                "user": table.column(src.user).cast(id_type),
                "item": table.column(src.item).cast(id_type),
                "rating": rating,
                "timestamp": timestamp,
            }
        )

    def read_images(
        self, data_dir: Path | str, split: Literal["train", "test"] = "train"
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """Images (N x rows x cols, uint8) and labels (N, uint8) of one split."""
        if self.images is None:
            raise DataError(f"data set {self.name!r} holds no images ({self.kind})")
        if split not in ("train", "test"):
            raise DataError(f"unknown split {split!r}: expected 'train' or 'test'")
        image_file, label_file = self.images.train if split == "train" else self.images.test
        root = self.require(data_dir, (image_file, label_file))
        images = read_idx(root / image_file, ndim=3)
        labels = read_idx(root / label_file, ndim=1)
        for array, path in ((images, image_file), (labels, label_file)):
            if array.dtype != np.uint8:
                raise DataFormatError(f"expected unsigned bytes, found {array.dtype}", path=str(root / path))
        if images.shape[1:] != self.images.shape:
            raise DataFormatError(
                f"images are {images.shape[1]}x{images.shape[2]}, expected "
                f"{self.images.shape[0]}x{self.images.shape[1]}",
                path=str(root / image_file),
            )
        if len(images) != len(labels):
            raise DataFormatError(
                f"{len(images)} images but {len(labels)} labels in {label_file}", path=str(root / image_file)
            )
        if len(labels) and int(labels.max()) >= self.images.classes:
            raise DataFormatError(
                f"label {int(labels.max())} out of range 0..{self.images.classes - 1}",
                path=str(root / label_file),
            )
        return images, labels


def closest(name: str, names: list[str]) -> str | None:
    """The known name the user most likely meant: one it begins, else the most similar."""
    extended = sorted((n for n in names if n.startswith(name)), key=len)
    if name and extended:
        return extended[0]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    return close[0] if close else None
