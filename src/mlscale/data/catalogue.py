"""The dataset catalogue: the real public data sets mlscale's applications use.

Each :class:`Dataset` entry says where the data comes from (official source,
licence, citation), which files make it up (relative path, size, sha256) and
how to read them. Files live in ``<data dir>/<name>/``, where the data dir is
``$MLSCALE_DATA_DIR`` (default ``~/.cache/mlscale/data``).

- :meth:`Dataset.verify` checks every file's size and checksum;
- :meth:`Dataset.require` fails with instructions when files are missing;
- :func:`fetch` downloads the official archives and rebuilds the files
  (see :mod:`mlscale.data._fetch`; ``MLSCALE_MIRROR`` points it elsewhere);
- :meth:`Dataset.read_interactions`, :meth:`Dataset.read_images` and
  :meth:`Dataset.read_table` read the data as typed Arrow tables (or NumPy
  arrays for images).

Some local files are not byte-identical to the official download (line
endings, a gzip re-compression, a prefix of a larger file). Each such file's
:class:`Origin` declares the small transform that rebuilds it, and gzip/zip
files are compared on their decompressed content (``content_sha256``), since
compressed bytes are not reproducible.

>>> ds = get_dataset("movielens-100k")
>>> ds.kind, ds.interactions.file, ds.file("u.data").size
('interactions', 'u.data', 1979173)
>>> sorted(DATASETS)[:3]
['amazon-musical-instruments-5core', 'dga-domains-wang2021', 'fashion-mnist']
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
from types import MappingProxyType
from typing import IO, Any, Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from mlscale.data.formats.argus import read_binetflow
from mlscale.data.formats.delimited import Delimited, read_delimited
from mlscale.data.formats.idx import read_idx
from mlscale.data.formats.jsonl import read_json_lines
from mlscale.data.formats.nfdump import read_nfdump_csv
from mlscale.data.formats.zeek import read_zeek
from mlscale.data.streams import open_binary
from mlscale.errors import DataError, DataFormatError, DatasetNotFoundError

__all__ = [
    "DATASETS",
    "DataFile",
    "Dataset",
    "Download",
    "FileCheck",
    "FileStatus",
    "ImageSplits",
    "InteractionSource",
    "Kind",
    "Origin",
    "VerifyReport",
    "fetch",
    "get_dataset",
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
        """The download and the transform, in words.

        >>> Origin(Download("https://x.org/a.zip"), member="a/r.dat", head_lines=10).describe()
        'https://x.org/a.zip, member a/r.dat, first 10 lines'
        """
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
            close = _closest(path, list(self._by_path))
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


def fetch(
    name: str,
    data_dir: Path | str,
    *,
    force: bool = False,
    timeout: float = 10.0,
    mirror: str | None = None,
    progress: bool | None = None,
) -> VerifyReport:
    """Download data set ``name`` from its official source into ``<data_dir>/<name>/``.

    See :func:`mlscale.data._fetch.fetch_dataset` for the details (mirror,
    atomic install, checks).
    """
    # Imported here: the fetch module builds on this one.
    from mlscale.data._fetch import fetch_dataset

    return fetch_dataset(
        get_dataset(name), Path(data_dir), force=force, timeout=timeout, mirror=mirror, progress=progress
    )


# --------------------------------------------------------------------------- the entries

_GROUPLENS_ML = "https://files.grouplens.org/datasets/movielens"
_HARPER_KONSTAN = (
    "F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context. "
    "ACM Transactions on Interactive Intelligent Systems (TiiS) 5, 4, Article 19. https://doi.org/10.1145/2827872"
)
_GROUPLENS_TERMS = (
    "GroupLens terms (see the data set's README): research use only, no commercial use without "
    "permission, no redistribution beyond these terms; cite the paper below."
)
# Sizes and sha256 of the official archives, as recorded by tensorflow/datasets.
_ML_100K_ZIP = Download(
    f"{_GROUPLENS_ML}/ml-100k.zip",
    4_924_029,
    "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
)
_ML_LATEST_SMALL_ZIP = Download(
    f"{_GROUPLENS_ML}/ml-latest-small.zip",
    978_202,
    "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
)
_ML_1M_ZIP = Download(
    f"{_GROUPLENS_ML}/ml-1m.zip",
    5_917_549,
    "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
)
_HETREC_LASTFM_ZIP = Download("https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip")
_AMAZON_MI_5 = Download(
    "https://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Musical_Instruments_5.json.gz"
)
_FASHION = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion"
_KDD_10 = Download("https://kdd.ics.uci.edu/databases/kddcup99/kddcup.data_10_percent.gz")
_DGA_REPO = "https://github.com/tisage/DGA-dataset/raw/b9c75bc92d16736875f094b05180befb163d756a"
_STRATO_COMMIT = "1c90a3692012ad7ee9c271241965da4e2799f957"
_STRATO_RAW = f"https://github.com/stratosphereips/security-datasets-for-testing/raw/{_STRATO_COMMIT}"
# The logs are Git LFS objects: the media host serves their content, not the pointer.
_STRATO_LFS = (
    f"https://media.githubusercontent.com/media/stratosphereips/security-datasets-for-testing/{_STRATO_COMMIT}"
)
_SLIPS_RAW = "https://github.com/stratosphereips/StratosphereLinuxIPS/raw/12f4fd20/dataset"

_ML_100K_RATINGS = Delimited(sep="\t", header=False, columns=("user_id", "item_id", "rating", "timestamp"))
_ML_100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_ML_1M_RATINGS = Delimited(sep="::", header=False, columns=("user_id", "movie_id", "rating", "timestamp"))
_AMAZON_COLUMNS = (
    "reviewerID", "asin", "reviewerName", "helpful", "reviewText", "overall", "summary", "unixReviewTime",
    "reviewTime",
)  # fmt: skip
_KDD_COLUMNS = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land", "wrong_fragment",
    "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised", "root_shell", "su_attempted",
    "num_root", "num_file_creations", "num_shells", "num_access_files", "num_outbound_cmds",
    "is_host_login", "is_guest_login", "count", "srv_count", "serror_rate", "srv_serror_rate",
    "rerror_rate", "srv_rerror_rate", "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate",
    "dst_host_count", "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate", "label",
)  # fmt: skip


def _ml100k(path: str, size: int, sha256: str, **kw: Any) -> DataFile:
    return DataFile(path, size, sha256, origin=Origin(_ML_100K_ZIP, member=f"ml-100k/{path}"), **kw)


def _ml100k_split(path: str, size: int, sha256: str, rows: int) -> DataFile:
    return _ml100k(path, size, sha256, reader=_ML_100K_RATINGS, rows=rows)


_MOVIELENS_100K = Dataset(
    name="movielens-100k",
    title="MovieLens 100K (1998)",
    kind="interactions",
    url=_ML_100K_ZIP.url,
    homepage="https://grouplens.org/datasets/movielens/100k/",
    licence="GroupLens research-only",
    licence_note=_GROUPLENS_TERMS,
    citation=_HARPER_KONSTAN,
    summary="100,000 ratings (1-5) by 943 users on 1,682 movies, with user and movie attributes "
    "and the standard u1..u5 / ua / ub train-test splits.",
    files=(
        _ml100k("README", 6_750, "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52"),
        _ml100k(
            "u.data",
            1_979_173,
            "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
            reader=_ML_100K_RATINGS,
            rows=100_000,
            note="the reference copy came from a GitHub repository whose u.data had 3 extra rows for a "
            "user 0 at the top; they were removed, which restores the official file (same rows as "
            "u1..u5.test together)",
        ),
        _ml100k(
            "u.genre",
            202,
            "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
            reader=Delimited(sep="|", header=False, columns=("genre", "genre_id")),
            rows=19,
        ),
        _ml100k("u.info", 36, "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b"),
        _ml100k(
            "u.item",
            236_344,
            "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
            reader=Delimited(
                sep="|",
                header=False,
                columns=(
                    "movie_id",
                    "title",
                    "release_date",
                    "video_release_date",
                    "imdb_url",
                    *_ML_100K_GENRES,
                ),
                encoding="latin-1",
                types=(("release_date", "string"), ("video_release_date", "string"), ("imdb_url", "string")),
            ),
            rows=1_682,
        ),
        _ml100k(
            "u.occupation",
            193,
            "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
            reader=Delimited(sep="|", header=False, columns=("occupation",)),
            rows=21,
        ),
        _ml100k(
            "u.user",
            22_628,
            "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
            reader=Delimited(
                sep="|",
                header=False,
                columns=("user_id", "age", "gender", "occupation", "zip_code"),
                types=(("zip_code", "string"),),
            ),
            rows=943,
        ),
        _ml100k_split("u1.base", 1_586_544, "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a", 80_000),
        _ml100k_split("u1.test", 392_629, "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950", 20_000),
        _ml100k_split("u2.base", 1_583_948, "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e", 80_000),
        _ml100k_split("u2.test", 395_225, "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3", 20_000),
        _ml100k_split("u3.base", 1_582_546, "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d", 80_000),
        _ml100k_split("u3.test", 396_627, "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d", 20_000),
        _ml100k_split("u4.base", 1_581_878, "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca", 80_000),
        _ml100k_split("u4.test", 397_295, "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9", 20_000),
        _ml100k_split("u5.base", 1_581_776, "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485", 80_000),
        _ml100k_split("u5.test", 397_397, "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634", 20_000),
        _ml100k_split("ua.base", 1_792_501, "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2", 90_570),
        _ml100k_split("ua.test", 186_672, "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42", 9_430),
        _ml100k_split("ub.base", 1_792_476, "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881", 90_570),
        _ml100k_split("ub.test", 186_697, "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da", 9_430),
    ),
    interactions=InteractionSource(
        file="u.data",
        sep="\t",
        header=False,
        columns=("user_id", "item_id", "rating", "timestamp"),
        user="user_id",
        item="item_id",
        rating="rating",
        timestamp="timestamp",
    ),
    notes=("The official zip also holds the scripts allbut.pl and mku.sh; they are not catalogued.",),
)


def _mlsmall(path: str, size: int, sha256: str, **kw: Any) -> DataFile:
    origin = Origin(_ML_LATEST_SMALL_ZIP, member=f"ml-latest-small/{path}", crlf_to_lf=True)
    return DataFile(path, size, sha256, origin=origin, **kw)


_MOVIELENS_LATEST_SMALL = Dataset(
    name="movielens-latest-small",
    title='MovieLens "ml-latest-small" (2018 release)',
    kind="interactions",
    url=_ML_LATEST_SMALL_ZIP.url,
    homepage="https://grouplens.org/datasets/movielens/latest/",
    licence="GroupLens research-only",
    licence_note="GroupLens terms (see README.txt): research use; redistribution only under the same terms; "
    "cite the paper below.",
    citation=_HARPER_KONSTAN,
    summary="100,836 ratings (0.5-5.0 stars) and 3,683 tags by 610 users on 9,742 movies.",
    files=(
        _mlsmall("README.txt", 8_342, "63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404"),
        _mlsmall(
            "links.csv",
            188_236,
            "028a4a1d17751ca9276e0e0718cfc22356350f224a996e1ec348c23274b9209d",
            reader=Delimited(types=(("imdbId", "string"),)),
            rows=9_742,
        ),
        _mlsmall(
            "movies.csv",
            484_688,
            "c47b783f23eb304413307e1bb05335e427737da20ec8d3c0e96335567dd5f3dc",
            reader=Delimited(),
            rows=9_742,
        ),
        _mlsmall(
            "ratings.csv",
            2_382_886,
            "80da8b3393dae325bbba5a31f291a6ba55d8d4f4396de3c456f2c1635b1b70e8",
            reader=Delimited(),
            rows=100_836,
            note="the reference copy had a fake row 999,999999,5.0,1493846415 appended; it was removed",
        ),
        _mlsmall(
            "tags.csv",
            114_976,
            "68eec00a0820c2faa8863a6df7032f13d5899a4462bce9a97213905297ff3d34",
            reader=Delimited(types=(("tag", "string"),)),
            rows=3_683,
        ),
    ),
    interactions=InteractionSource(
        file="ratings.csv",
        sep=",",
        header=True,
        columns=("userId", "movieId", "rating", "timestamp"),
        user="userId",
        item="movieId",
        rating="rating",
        timestamp="timestamp",
    ),
    notes=(
        "Line endings here are LF; the GroupLens zip uses CRLF, so fetch converts them "
        "(the sizes differ by one byte per line).",
        "GroupLens refreshes ml-latest-small from time to time; if the zip changes, fetch fails on the "
        "checksums instead of installing different data.",
    ),
)

_MOVIELENS_1M_PARTIAL = Dataset(
    name="movielens-1m-partial",
    title="MovieLens 1M, first 487,650 of 1,000,209 ratings (partial)",
    kind="interactions",
    url=_ML_1M_ZIP.url,
    homepage="https://grouplens.org/datasets/movielens/1m/",
    licence="GroupLens research-only",
    licence_note=_GROUPLENS_TERMS,
    citation=_HARPER_KONSTAN,
    summary="The first 487,650 ratings of MovieLens 1M (users 1..2999, 3,615 movies; user 2999 may be cut "
    "short) with the complete movie (3,883) and user (6,040) tables.",
    files=(
        DataFile(
            "README",
            5_577,
            "2d5ddce86ccbd247207456165827b4b9ddf27282bca93807d4c763e28414f133",
            origin=Origin(_ML_1M_ZIP, member="ml-1m/README"),
        ),
        DataFile(
            "movies.dat",
            171_308,
            "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9",
            origin=Origin(_ML_1M_ZIP, member="ml-1m/movies.dat"),
            reader=Delimited(sep="::", header=False, columns=("movie_id", "title", "genres"), encoding="latin-1"),
            rows=3_883,
        ),
        DataFile(
            "ratings.first487650.dat.gz",
            2_882_903,
            "2fedcf5405373a49df4041e3d3fe1e8db9eacf2c77c209ae1f686ea06b7a16d9",
            content_sha256="1273c4edfe3c0ff9e3a0a0d55819faeb947da0ad7df3927333b51ebefbeedc3d",
            content_size=11_908_773,
            origin=Origin(_ML_1M_ZIP, member="ml-1m/ratings.dat", head_lines=487_650),
            reader=_ML_1M_RATINGS,
            rows=487_650,
            note="the first 487,650 lines of ratings.dat, gzip-compressed (the full file is over the "
            "4 MiB limit of the reference copy)",
        ),
        DataFile(
            "users.dat",
            134_368,
            "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3",
            origin=Origin(_ML_1M_ZIP, member="ml-1m/users.dat"),
            reader=Delimited(
                sep="::",
                header=False,
                columns=("user_id", "gender", "age", "occupation", "zip_code"),
                types=(("zip_code", "string"),),
            ),
            rows=6_040,
        ),
    ),
    interactions=InteractionSource(
        file="ratings.first487650.dat.gz",
        sep="::",
        header=False,
        columns=("user_id", "movie_id", "rating", "timestamp"),
        user="user_id",
        item="movie_id",
        rating="rating",
        timestamp="timestamp",
    ),
    notes=(
        "PARTIAL: only the first 487,650 of 1,000,209 ratings. The reference copy appears to be the first "
        "lines of the official ratings.dat (same beginning, grouped by user); fetch rebuilds it that way and "
        "checks the result against the recorded content checksum.",
    ),
)

_LASTFM = Dataset(
    name="lastfm-hetrec2011-2k",
    title="Last.fm HetRec 2011 (1,892 users' top artists with play counts)",
    kind="interactions",
    url=_HETREC_LASTFM_ZIP.url,
    homepage="https://grouplens.org/datasets/hetrec-2011/",
    licence="HetRec non-commercial",
    licence_note="Data from Last.fm, released by GroupLens for the HetRec 2011 workshop for non-commercial "
    "research use; cite the workshop below and acknowledge Last.fm.",
    citation="Iván Cantador, Peter Brusilovsky and Tsvi Kuflik. 2nd Workshop on Information Heterogeneity "
    "and Fusion in Recommender Systems (HetRec 2011). Proceedings of RecSys 2011. http://ir.ii.uam.es/hetrec2011",
    summary="92,834 user-artist play counts (implicit feedback) of 1,892 users on 17,632 artists, "
    "with artist names, tags and the users' friend graph.",
    files=(
        DataFile(
            "artists.dat",
            1_925_879,
            "c173881362c6b28551368fecb3c0be5a6a30a6cd859e1f5775413dfe46d48648",
            origin=Origin(_HETREC_LASTFM_ZIP, member="artists.dat", crlf_to_lf=True),
            reader=Delimited(sep="\t", types=(("name", "string"), ("url", "string"), ("pictureURL", "string"))),
            rows=17_632,
        ),
        DataFile(
            "tags.dat",
            234_468,
            "e95175f259be4c0c47644ae23d66131cd6d5767142a1405000e79f5584691d70",
            origin=Origin(_HETREC_LASTFM_ZIP, member="tags.dat"),
            reader=Delimited(sep="\t", encoding="latin-1", types=(("tagValue", "string"),)),
            rows=11_946,
            note="CRLF line ends and Latin-1 text, as published",
        ),
        DataFile(
            "user_artists.dat",
            1_203_620,
            "254272fa721c3935e8be286d28c051b206844307128698ab4eaa41d483379416",
            origin=Origin(_HETREC_LASTFM_ZIP, member="user_artists.dat", crlf_to_lf=True),
            reader=Delimited(sep="\t"),
            rows=92_834,
            note="header line kept, LF line ends",
        ),
        DataFile(
            "user_friends.dat",
            251_565,
            "9a3a8f7fa5f5ec832335e5b58ed69a4cf27c6f6f6afcde62134810eea46445a7",
            origin=Origin(_HETREC_LASTFM_ZIP, member="user_friends.dat"),
            reader=Delimited(sep="\t"),
            rows=25_434,
            note="CRLF line ends, as published",
        ),
    ),
    interactions=InteractionSource(
        file="user_artists.dat",
        sep="\t",
        header=True,
        columns=("userID", "artistID", "weight"),
        user="userID",
        item="artistID",
        rating="weight",
    ),
    notes=(
        "The reference files came from two GitHub copies; their checksums are recorded here, and fetch "
        "checks the official zip's files against them (user_taggedartists*.dat are not catalogued).",
    ),
)

_AMAZON_MI = Dataset(
    name="amazon-musical-instruments-5core",
    title="Amazon reviews 2014: Musical Instruments, 5-core",
    kind="interactions",
    url=_AMAZON_MI_5.url,
    homepage="http://jmcauley.ucsd.edu/data/amazon/",
    licence="UCSD research use",
    licence_note="Amazon product data (2014) by J. McAuley, UCSD, for research use; cite both papers below.",
    citation="J. McAuley, C. Targett, Q. Shi and A. van den Hengel. Image-based recommendations on styles "
    "and substitutes. SIGIR 2015. R. He and J. McAuley. Ups and downs: modeling the visual evolution of "
    "fashion trends with one-class collaborative filtering. WWW 2016.",
    summary="10,261 reviews (1-5 stars, text) by 1,429 users on 900 items in which every user and item has "
    "at least 5 reviews.",
    files=(
        DataFile(
            "Musical_Instruments.json.zip",
            2_480_060,
            "27679efc609cb9ad12a6f6c4a23044a083f85994986ed69b9a654871f2d1466b",
            content_sha256="8e1aaab451ba61484dfe393f53d11886246bc426c7046b180b62352580f68c1d",
            content_size=7_445_886,
            origin=Origin(_AMAZON_MI_5, gunzip=True),
            reader=read_json_lines,
            rows=10_261,
            note="a zip holding Musical_Instruments.json, the JSON lines of reviews_Musical_Instruments_5.json.gz",
        ),
    ),
    interactions=InteractionSource(
        file="Musical_Instruments.json.zip",
        sep="jsonl",
        header=False,
        columns=_AMAZON_COLUMNS,
        user="reviewerID",
        item="asin",
        rating="overall",
        timestamp="unixReviewTime",
    ),
    notes=(
        "The reference zip came from a GitHub copy (recohut/coldstart-recsys); fetch rebuilds it from the "
        "official .json.gz and checks the decompressed content against it.",
    ),
)

_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def _fashion(path: str, size: int, sha256: str, content_sha256: str, content_size: int) -> DataFile:
    return DataFile(
        path,
        size,
        sha256,
        content_sha256=content_sha256,
        content_size=content_size,
        origin=Origin(Download(f"{_FASHION}/{path}"), gunzip=True),
        note="IDX array: read it with Dataset.read_images or mlscale.data.formats.read_idx",
    )


_FASHION_MNIST = Dataset(
    name="fashion-mnist",
    title="Fashion-MNIST",
    kind="images",
    url=f"{_FASHION}/train-images-idx3-ubyte.gz",
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    licence="MIT",
    licence_note="MIT licence (Zalando SE); see COPYRIGHT.debian.",
    citation="Han Xiao, Kashif Rasul and Roland Vollgraf. Fashion-MNIST: a Novel Image Dataset for "
    "Benchmarking Machine Learning Algorithms. arXiv:1708.07747, 2017.",
    summary="70,000 28x28 grey-scale images of clothes in 10 classes: 60,000 for training (6,000 per "
    "class), 10,000 for testing.",
    files=(
        DataFile(
            "COPYRIGHT.debian",
            1_349,
            "193c9c47fa3dc7e614dcd5f4ea5315d69c0a542b698b64dc34ac5bc4b09d5c3a",
            required=False,
            note="the Debian package's copyright file (not part of the official download)",
        ),
        _fashion(
            "t10k-images-idx3-ubyte.gz",
            4_422_079,
            "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            7_840_016,
        ),
        _fashion(
            "t10k-labels-idx1-ubyte.gz",
            5_125,
            "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            10_008,
        ),
        _fashion(
            "train-images-idx3-ubyte.gz",
            26_421_856,
            "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            47_040_016,
        ),
        _fashion(
            "train-labels-idx1-ubyte.gz",
            29_491,
            "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            60_008,
        ),
    ),
    images=ImageSplits(
        train=("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        test=("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        shape=(28, 28),
        classes=10,
        class_names=_FASHION_CLASSES,
    ),
    notes=(
        "The reference copy is Debian's dataset-fashion-mnist package, which re-gzipped the files; the "
        "decompressed IDX content is what is checked. `apt-get install dataset-fashion-mnist` also installs "
        "them, in /usr/share/datasets/fashion-mnist/.",
    ),
)

_KDDCUP99 = Dataset(
    name="kddcup99",
    title="KDD Cup 1999, 10% training set",
    kind="records",
    url=_KDD_10.url,
    homepage="http://kdd.ics.uci.edu/databases/kddcup99/kddcup99.html",
    licence="UCI KDD Archive (free, cite)",
    licence_note="Freely available from the UCI KDD Archive; cite the archive. Derived from the DARPA 1998 "
    "intrusion detection evaluation (MIT Lincoln Laboratory).",
    citation="KDD Cup 1999 Data. UCI KDD Archive, Information and Computer Science, University of "
    "California, Irvine, 1999. http://kdd.ics.uci.edu/databases/kddcup99/kddcup99.html",
    summary="494,021 labelled connection records: 41 features and a label (normal. or an attack name, "
    "with a trailing dot); no IP addresses. An old, much-criticised benchmark.",
    files=(
        DataFile(
            "kddcup.data_10_percent.gz",
            2_144_903,
            "8045aca0d84e70e622d1148d7df782496f6333bf6eb979a1b0837c42a9fd9561",
            content_sha256="f8c8267ebcd9c0ed1fd7d6277fe5bfff8732e9b7db8e61b873542b2a534b6f9a",
            content_size=74_889_749,
            origin=Origin(_KDD_10, gunzip=True),
            reader=Delimited(sep=",", header=False, columns=_KDD_COLUMNS, quoted=False),
            rows=494_021,
        ),
    ),
)

_UNSW_NB15 = Dataset(
    name="unsw-nb15",
    title='UNSW-NB15 partitioned set ("training-set", 82,332 flows)',
    kind="flows",
    url="https://research.unsw.edu.au/projects/unsw-nb15-dataset",
    homepage="https://research.unsw.edu.au/projects/unsw-nb15-dataset",
    licence="UNSW academic research",
    licence_note="Free for academic research; cite the paper below. Commercial use needs UNSW's permission.",
    citation="N. Moustafa and J. Slay. UNSW-NB15: a comprehensive data set for network intrusion detection "
    "systems (UNSW-NB15 network data set). Military Communications and Information Systems Conference "
    "(MilCIS), 2015.",
    summary="82,332 labelled flow records with 45 columns (id, dur, proto, service, state, ..., attack_cat, "
    "label): 45,332 attacks (label 1) and 37,000 normal (label 0); no IP addresses.",
    files=(
        DataFile(
            "UNSW_NB15_training-set.csv.gz",
            3_832_616,
            "611e2b334b3980ce1a7208a5ca55f751472b9dc47b8382e19b6bf89701ca31f7",
            content_sha256="734fe6642edf758f7c94d7d9149426b49d202fe8e7bf0bef47392489c3c0a559",
            content_size=15_380_800,
            reader=Delimited(sep=",", types=(("attack_cat", "string"), ("service", "string"))),
            rows=82_332,
            note="UNSW_NB15_training-set.csv (UTF-8 with BOM, CRLF) gzip-compressed",
        ),
    ),
    notes=('The 82,332-row file is distributed as the "training-set"; the naming is swapped upstream.',),
    manual="UNSW publishes the data through a SharePoint folder with no stable download link: open "
    "https://research.unsw.edu.au/projects/unsw-nb15-dataset, download "
    "'Training and Testing Sets/UNSW_NB15_training-set.csv' and gzip it "
    "(`gzip UNSW_NB15_training-set.csv`); any gzip of the same CSV passes `mlscale data verify`",
)


def _strato(path: str, size: int, sha256: str, **kw: Any) -> DataFile:
    lfs = path.endswith((".log", ".labeled"))
    url = f"{_STRATO_LFS if lfs else _STRATO_RAW}/{path}"
    reader = read_zeek if lfs else None
    return DataFile(path, size, sha256, origin=Origin(Download(url)), reader=reader, **kw)


_STRATOSPHERE = Dataset(
    name="stratosphere-zeek-labeled",
    title="Stratosphere Lab labelled Zeek logs (security-datasets-for-testing)",
    kind="flows",
    url=f"https://github.com/stratosphereips/security-datasets-for-testing/tree/{_STRATO_COMMIT}",
    homepage="https://github.com/stratosphereips/security-datasets-for-testing",
    licence="GPL-2.0",
    licence_note="GNU GPL version 2 (LICENSE.GPL-2.0); cite as CITATION.cff says.",
    citation="Sebastian Garcia and Veronica Valeros. Security Datasets for Testing: a set of security "
    "datasets for testing of tools and algorithms. Stratosphere Laboratory, AIC, FEL, Czech Technical "
    "University in Prague. https://github.com/stratosphereips/security-datasets-for-testing",
    summary="Real traffic with IP addresses as Zeek logs, each flow labelled Malicious, Benign or "
    "Background: conn logs of scenarios 001, 008, 010, 011, 012 (25,790 flows) and 24,181 DNS queries "
    "of scenario 009.",
    files=(
        _strato(
            "001-zeek-scenario-malicious/README.md",
            331,
            "64d5fd3b2a4e977b87b58be6ff4f928c84087dfb50735f361c029369467f28ab",
        ),
        _strato(
            "001-zeek-scenario-malicious/labeled-conn.log",
            146_618,
            "0871016451ce1ebf8713bc0b117079c490615290cbff034b735d096b35722e82",
            rows=992,
            note="first 1,000 log lines of CTU-Malware-Capture-Botnet-230-1 (NjRAT)",
        ),
        _strato(
            "008-zeek-mixed/README.md",
            1_073,
            "0ba034d49d81e8307182012ab56bb4bf0c1e854abf6246a6b48438e15cd98028",
        ),
        _strato(
            "008-zeek-mixed/data/conn.log.labeled",
            895_488,
            "d8ebdbd675c1659b4b283fcd26ad0dad8a2043ed6ca37f9806c11d99f24ba40f",
            rows=5_663,
        ),
        _strato(
            "009-zeek-malicious/README.md",
            705,
            "f4e415b4697c3a8f916740bc08d32e2e1c91861439d44a0e47ae6ae121cc1984",
        ),
        _strato(
            "009-zeek-malicious/data/dns.log.labeled",
            3_546_035,
            "da490551eabb74fdf34bccb015660143d493c61185848632e420896b609636fe",
            rows=24_181,
        ),
        _strato(
            "010-zeek-mixed/README.md",
            1_155,
            "0a35359fe1ca7577bf512c37844f715d4c0048ad3ee08b216cebb4d64d6f631e",
        ),
        _strato(
            "010-zeek-mixed/data/conn.log.labeled",
            848_849,
            "bb3695adceea9984948c9c784828a816f3d0e8d165f713503ec8e3facc1c4585",
            rows=5_347,
        ),
        _strato(
            "010-zeek-mixed/data/dns.log.labeled",
            1_970,
            "dcb3f3beaeb1c7f1187665892926360f43fd446a51bb8965ac3b58974ea9a11b",
            rows=8,
        ),
        _strato(
            "011-zeek-mixed/README.md",
            1_153,
            "6df5e8c7709dcd728b1f273bb4fc4f5fd108ef8bf40f6ba8db84ea2e46a91244",
        ),
        _strato(
            "011-zeek-mixed/data/conn.log.labeled",
            1_423_990,
            "77e50a7fd5f71568354b3c903d7823e51b570c51b408c62a108a9cd78cbeeb87",
            rows=9_048,
        ),
        _strato(
            "011-zeek-mixed/data/dns.log.labeled",
            1_216,
            "cd9ab64e566d4e1b008cfe8f18baa6d17c069be9e99d7ab956811f980a38ea6d",
            rows=4,
        ),
        _strato(
            "012-zeek-mixed/README.md",
            1_154,
            "5f35c1f1958925defa0e7c2b2e76cbefe051305345c2681906f6a394085872d7",
        ),
        _strato(
            "012-zeek-mixed/data/conn.log.labeled",
            747_900,
            "a882266e59c51d8ee8307bf95c152978071b057c7cafaacdd6f75ccc28edf0a3",
            rows=4_740,
        ),
        _strato(
            "012-zeek-mixed/data/dns.log.labeled",
            2_666,
            "6ef5bb9229c23e9e3bdea004f8e53fc62cde27590d59c2343b481be26eecb391",
            rows=12,
        ),
        _strato("CITATION.cff", 696, "bf3e13816f405992afeb715f60313842297e84b6e0044b9c306c7a7b148f191c"),
        _strato("LICENSE.GPL-2.0", 18_092, "8177f97513213526df2cf6184d8ff986c675afb514d4e68a404010521b880643"),
    ),
    notes=(
        "008, 010, 011 and 012 are days of the CTU-50 captures CTU-Normal-40..44 (a Windows host attacked "
        "from the Internet). The conn log of 009 and all of 007 are not included.",
        "The logs are Git LFS objects in the repository; fetch downloads them from GitHub's media host.",
    ),
)

_SLIPS = Dataset(
    name="slips-samples",
    title="Stratosphere Slips test captures (nfdump, Argus and Zeek samples)",
    kind="flows",
    url="https://github.com/stratosphereips/StratosphereLinuxIPS/tree/12f4fd20/dataset",
    homepage="https://github.com/stratosphereips/StratosphereLinuxIPS",
    licence="GPL-2.0",
    licence_note="GNU GPL version 2 (the Slips repository's licence).",
    citation="Stratosphere Laboratory, Czech Technical University in Prague. Slips: a free-software, "
    "machine-learning-based behavioural intrusion prevention system. "
    "https://github.com/stratosphereips/StratosphereLinuxIPS . test18 is part of CTU-SME-11, "
    "https://zenodo.org/records/7958259",
    summary="Real flow captures in four formats: an nfcapd file and its nfdump CSV (4,593 flows), Argus "
    "binetflow (6,751 malicious flows), labelled Zeek TSV logs of CTU-SME-11 (766 flows) and Zeek "
    "JSON-lines logs (576 flows, 239 DNS queries).",
    files=(
        DataFile(
            "test1-malicious.nfcapd",
            386_216,
            "5072b16a0f900cf66e9c43c90050e4e08c0b62410bc2140f93e190bcf82e0b00",
            origin=Origin(Download(f"{_SLIPS_RAW}/test1-malicious.nfdump")),
            note="binary nfcapd capture (nfdump 1.7 format, CTU network, 2018-01-12); read "
            "test1-malicious.nfdump.csv, or convert it with `nfdump -r FILE -o csv`",
        ),
        DataFile(
            "test1-malicious.nfdump.csv",
            1_639_971,
            "44186f6e6904d0327951f926736ef5c458f58186a7250fa5404295dd5b57c420",
            reader=read_nfdump_csv,
            rows=4_593,
            note="made locally with Debian's nfdump 1.7.1: "
            "`nfdump -r test1-malicious.nfcapd -o csv > test1-malicious.nfdump.csv`",
        ),
        DataFile(
            "test18-ctu-sme-11/README.md",
            418,
            "36ab220b1ee0abbff9f959776a0a9923b65a74ef4fcdd5ab09199f17c420fc7b",
            origin=Origin(Download(f"{_SLIPS_RAW}/test18-malicious-ctu-sme-11-win/README.md")),
        ),
        DataFile(
            "test18-ctu-sme-11/conn.log.labeled",
            147_409,
            "f7e0b7fa77e7bb65afbe6ffad283f35c0290ce9f047978b22b929c9b2a6e3fb1",
            origin=Origin(Download(f"{_SLIPS_RAW}/test18-malicious-ctu-sme-11-win/zeek-labeled/conn.log.labeled")),
            reader=read_zeek,
            rows=766,
        ),
        DataFile(
            "test18-ctu-sme-11/dns.log.labeled",
            4_220,
            "e99a996775a10a7bcf9705fca6dda1486aa5c6f2132f6d1002fcc7f6f8508da4",
            origin=Origin(Download(f"{_SLIPS_RAW}/test18-malicious-ctu-sme-11-win/zeek-labeled/dns.log.labeled")),
            reader=read_zeek,
            rows=22,
        ),
        DataFile(
            "test2-malicious.binetflow",
            706_213,
            "b6deecde4cbe9faa5d38ec8294e6bce9b1266e1576c475741524608d64115ecf",
            origin=Origin(Download(f"{_SLIPS_RAW}/test2-malicious.binetflow")),
            reader=read_binetflow,
            rows=6_751,
            note="Argus CSV of a malware capture; the Label column is empty (the traffic is malicious)",
        ),
        DataFile(
            "test9-mixed-zeek/conn.log",
            198_523,
            "212341d32d9c76ff698ceb93aa0505301a8479aeaa2a731add8fffa32da32586",
            origin=Origin(Download(f"{_SLIPS_RAW}/test9-mixed-zeek-dir/conn.log")),
            reader=read_zeek,
            rows=576,
            note="Zeek JSON lines, unlabelled",
        ),
        DataFile(
            "test9-mixed-zeek/dns.log",
            107_233,
            "100731f9da9fc913a695911a49758415d378d64434ecf9c0b50bffffa180f430",
            origin=Origin(Download(f"{_SLIPS_RAW}/test9-mixed-zeek-dir/dns.log")),
            reader=read_zeek,
            rows=239,
            note="Zeek JSON lines, unlabelled",
        ),
    ),
    notes=(
        "Upstream names differ: test1-malicious.nfdump (the nfcapd file), test18-malicious-ctu-sme-11-win/"
        "zeek-labeled/, test9-mixed-zeek-dir/.",
    ),
    manual="no download holds test1-malicious.nfdump.csv: make it from the nfcapd file with nfdump 1.7 "
    "(`nfdump -r test1-malicious.nfcapd -o csv > test1-malicious.nfdump.csv`, e.g. after "
    "`apt-get install nfdump`); other nfdump versions may print a different layout, which verify reports",
)

_DGA = Dataset(
    name="dga-domains-wang2021",
    title="Labelled DGA and legitimate domain names (Wang, Chen & Genc 2021)",
    kind="dns",
    url=f"{_DGA_REPO}/domains_features.gz",
    homepage="https://github.com/tisage/DGA-dataset",
    licence="MIT",
    licence_note="MIT licence (LICENSE).",
    citation="T. Wang, L. Chen and Y. Genc. A Dictionary-Based Method for Detecting Machine-Generated "
    "Domains. Information Security Journal: A Global Perspective 30(4), 205-218, 2021. "
    "https://doi.org/10.1080/19393555.2020.1834650",
    summary="91,599 domain names labelled dga (49,523) or legit (42,076, Alexa top list) with 7 lexical "
    "features; the upstream README says 100,033, the file holds fewer.",
    files=(
        DataFile(
            "LICENSE",
            1_069,
            "c34218f2715a9ca042cc6de55535099d85d747693582b4dea00e88be86a734f9",
            origin=Origin(Download(f"{_DGA_REPO}/LICENSE")),
        ),
        DataFile(
            "README.upstream.md",
            2_099,
            "8c382e947210afcfbe6c8486078ce61b5cab6246c9ee36eb5411349bb2c1be87",
            origin=Origin(Download(f"{_DGA_REPO}/README.md")),
            note="the repository's README.md, renamed",
        ),
        DataFile(
            "domains_features.csv.gz",
            2_548_042,
            "acba69ed939da1f13604dab21f15a59e162c379af374fe44176df3f5be468b7a",
            content_sha256="648aedbc7899314dc403b77578610945ca212691c33428f112786605fc8d7ef0",
            content_size=6_060_976,
            origin=Origin(Download(f"{_DGA_REPO}/domains_features.gz"), gunzip=True),
            reader=Delimited(sep=",", types=(("domain", "string"), ("class", "string"))),
            rows=91_599,
            note="upstream name domains_features.gz",
        ),
    ),
)

#: Every catalogue entry by name (read-only).
DATASETS: Mapping[str, Dataset] = MappingProxyType(
    {
        ds.name: ds
        for ds in (
            _MOVIELENS_100K,
            _MOVIELENS_LATEST_SMALL,
            _MOVIELENS_1M_PARTIAL,
            _LASTFM,
            _AMAZON_MI,
            _FASHION_MNIST,
            _STRATOSPHERE,
            _SLIPS,
            _UNSW_NB15,
            _KDDCUP99,
            _DGA,
        )
    }
)


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
        close = _closest(name, list(DATASETS))
        raise DatasetNotFoundError(
            f"unknown data set {name!r}; known: {', '.join(DATASETS)}",
            hint=f"did you mean {close!r}?" if close else "`mlscale data list` shows the catalogue",
        ) from None


def _closest(name: str, names: list[str]) -> str | None:
    """The known name the user most likely meant: one it begins, else the most similar."""
    extended = sorted((n for n in names if n.startswith(name)), key=len)
    if name and extended:
        return extended[0]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    return close[0] if close else None
