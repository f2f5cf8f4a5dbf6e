"""Download a catalogue data set from its official source and install it atomically.

:func:`fetch_dataset` downloads each official archive once (HTTPS, urllib,
a tqdm progress bar on stderr), rebuilds every file the catalogue can make from
it (:class:`~mlscale.data.catalogue.model.Origin`: zip member, gunzip, CRLF to LF,
first N lines, re-gzip), checks every rebuilt file against the catalogue's
checksums and only then moves the folder into place. On any failure nothing is
left behind: the work happens in a hidden temporary folder of the data dir.

Mirror: ``mirror=`` or the ``MLSCALE_MIRROR`` environment variable replaces
the scheme and host of each official URL by a base URL, keeping host and path:
``https://files.grouplens.org/datasets/movielens/ml-100k.zip`` is fetched from
``$MLSCALE_MIRROR/files.grouplens.org/datasets/movielens/ml-100k.zip`` (the
layout ``wget --force-directories`` makes). ``file://`` mirrors work too.

>>> mirror_url("https://files.grouplens.org/datasets/movielens/ml-100k.zip", "http://127.0.0.1:8000/m")
'http://127.0.0.1:8000/m/files.grouplens.org/datasets/movielens/ml-100k.zip'
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast
from urllib.parse import urlsplit

from tqdm import tqdm

from mlscale._version import __version__
from mlscale.data.catalogue.load import get_dataset
from mlscale.data.catalogue.model import DataFile, Dataset, Download, FileCheck, VerifyReport
from mlscale.data.streams import iter_chunks
from mlscale.errors import ConfigError, DataError, DatasetNotFoundError

__all__ = ["DEFAULT_TIMEOUT", "MIRROR_ENV", "fetch", "fetch_dataset", "mirror_url"]

#: Seconds to wait for a connection (and for each read) before giving up.
DEFAULT_TIMEOUT = 10.0
#: Environment variable holding a mirror base URL.
MIRROR_ENV = "MLSCALE_MIRROR"
_SCHEMES = ("https", "http", "file")
_LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def mirror_url(url: str, mirror: str | None) -> str:
    """``url`` as served by ``mirror`` (host and path kept), or ``url`` itself without a mirror."""
    if not mirror:
        return url
    parts = urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def fetch(
    name: str,
    data_dir: Path | str,
    *,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    mirror: str | None = None,
    progress: bool | None = None,
) -> VerifyReport:
    """Download data set ``name`` from its official source into ``<data_dir>/<name>/``.

    See :func:`fetch_dataset` for the details (mirror, atomic install, checks).
    """
    return fetch_dataset(
        get_dataset(name), Path(data_dir), force=force, timeout=timeout, mirror=mirror, progress=progress
    )


def fetch_dataset(
    dataset: Dataset,
    data_dir: Path,
    *,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    mirror: str | None = None,
    progress: bool | None = None,
) -> VerifyReport:
    """Download ``dataset`` into ``<data_dir>/<name>/`` and return the final check of every file.

    Without ``force`` nothing is downloaded when the files already verify.
    Files no official download reproduces are kept if present; the returned
    report lists them as missing otherwise (with ``report.notes`` saying how
    to make them). Raises :class:`~mlscale.errors.DatasetNotFoundError` when a
    download fails (after ``timeout`` seconds without an answer) and
    :class:`~mlscale.errors.DataError` when a rebuilt file does not match the
    catalogue; the data dir is then left as it was.
    """
    if timeout <= 0:
        raise ConfigError(f"timeout={timeout}: expected a number of seconds > 0")
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if mirror and urlsplit(mirror).scheme not in _SCHEMES:
        raise ConfigError(f"{MIRROR_ENV}={mirror!r}: expected an http(s):// or file:// base URL")
    data_dir = Path(data_dir).expanduser()
    if not force:
        current = dataset.verify(data_dir)
        if current.ok:
            return current
    fetchable = tuple(f for f in dataset.files if f.origin is not None)
    if not fetchable:
        raise DatasetNotFoundError(
            f"{dataset.name}: no official download reproduces its files, so it cannot be fetched",
            hint=dataset.manual_instructions(data_dir),
        )
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{dataset.name}.fetch-", dir=data_dir))
    except OSError as err:
        raise DataError(f"cannot write to the data dir {data_dir}: {err.strerror or err}") from None
    notes: list[str] = []
    try:
        staging = work / dataset.name
        staging.mkdir()
        downloaded = _download_all(dataset, fetchable, work, data_dir, timeout, mirror, progress, notes)
        for file in fetchable:
            assert file.origin is not None
            _build(file, downloaded[file.origin.download.url], staging / file.path)
        checks = {c.file.path: c for c in dataset.verify(work).checks}
        bad = [checks[f.path] for f in fetchable if not checks[f.path].ok]
        if bad:
            raise DataError(
                f"{dataset.name}: {len(bad)} downloaded file(s) do not match the catalogue, nothing was "
                "installed:\n" + "\n".join("  " + c.describe() for c in bad) + "".join(f"\n  {n}" for n in notes),
                hint="the download may be corrupt (try again) or the upstream files changed; you can also "
                + dataset.manual_instructions(data_dir),
            )
        _keep_existing(dataset.path(data_dir), staging)
        _swap_in(staging, dataset.path(data_dir))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    final = dataset.verify(data_dir)
    missing = [c for c in final.checks if c.file.origin is None and not c.ok]
    if missing:
        notes.append(_manual_note(dataset, data_dir, missing))
    return VerifyReport(final.dataset, final.root, final.checks, tuple(notes))


def _manual_note(dataset: Dataset, data_dir: Path, missing: list[FileCheck]) -> str:
    names = ", ".join(c.file.path for c in missing)
    how = dataset.manual or "; ".join(c.file.note for c in missing if c.file.note)
    return f"not downloadable: {names} -> {dataset.path(data_dir)}/ ({how})"


def _download_all(
    dataset: Dataset,
    files: tuple[DataFile, ...],
    work: Path,
    data_dir: Path,
    timeout: float,
    mirror: str | None,
    progress: bool | None,
    notes: list[str],
) -> dict[str, Path]:
    downloads: dict[str, Download] = {}
    for file in files:
        assert file.origin is not None
        downloads.setdefault(file.origin.download.url, file.origin.download)
    folder = work / "downloads"
    folder.mkdir()
    done: dict[str, Path] = {}
    for index, (url, download) in enumerate(downloads.items()):
        target = folder / f"{index}-{Path(urlsplit(url).path).name or 'download'}"
        source = mirror_url(url, mirror)
        digest = _download(source, target, timeout=timeout, progress=progress, dataset=dataset, data_dir=data_dir)
        if download.sha256 is not None and digest != download.sha256:
            # The per-file checks decide; a re-packed archive with the same files is fine.
            notes.append(f"{source}: archive sha256 {digest} differs from the recorded {download.sha256}")
        done[url] = target
    return done


def _download(
    url: str, target: Path, *, timeout: float, progress: bool | None, dataset: Dataset, data_dir: Path
) -> str:
    """Stream ``url`` to ``target``; return its sha256."""
    hint = f"check the network (or set {MIRROR_ENV}); or " + dataset.manual_instructions(data_dir)
    if urlsplit(url).scheme not in _SCHEMES:
        raise ConfigError(f"{url}: only https, http and file URLs are fetched")
    request = urllib.request.Request(url, headers={"User-Agent": f"mlscale/{__version__}"})
    digest = hashlib.sha256()
    received = 0
    try:
        with contextlib.ExitStack() as stack:
            response = stack.enter_context(urllib.request.urlopen(request, timeout=timeout))
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            out = stack.enter_context(target.open("wb"))
            bar = stack.enter_context(
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=Path(urlsplit(url).path).name,
                    file=sys.stderr,
                    disable=None if progress is None else not progress,
                    leave=False,
                )
            )
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        err.close()
        raise DatasetNotFoundError(f"could not download {url}: HTTP {err.code} {err.reason}", hint=hint) from None
    except urllib.error.URLError as err:
        raise DatasetNotFoundError(f"could not download {url}: {err.reason}", hint=hint) from None
    except TimeoutError:
        raise DatasetNotFoundError(f"could not download {url}: no answer within {timeout:g} s", hint=hint) from None
    except OSError as err:
        raise DatasetNotFoundError(f"could not download {url}: {err.strerror or err}", hint=hint) from None
    if total is not None and received != total:
        raise DatasetNotFoundError(
            f"could not download {url}: the connection ended after {received:,} of {total:,} bytes", hint=hint
        )
    return digest.hexdigest()


# --------------------------------------------------------------------------- rebuilding files


def _zip_member(archive: zipfile.ZipFile, member: str, where: Path) -> str:
    names = [i.filename for i in archive.infolist() if not i.is_dir()]
    if member in names:
        return member
    # Archives differ on a top folder; accept the one file whose path ends the same way.
    tail = member.rsplit("/", 1)[-1]
    candidates = [n for n in names if n == tail or n.endswith("/" + tail)]
    if len(candidates) == 1:
        return candidates[0]
    raise DataError(f"{where.name}: the archive has no file {member!r} (it has {', '.join(names[:10])})")


@contextlib.contextmanager
def _open_source(download: Path, member: str | None) -> Iterator[IO[bytes]]:
    with download.open("rb") as raw:
        head = raw.read(len(_LFS_POINTER))
        raw.seek(0)
        if head == _LFS_POINTER:
            raise DataError(
                f"{download.name}: got a Git LFS pointer instead of the file",
                hint="the URL serves the LFS pointer; use the media.githubusercontent.com address",
            )
        if member is None:
            yield raw
            return
        try:
            archive = zipfile.ZipFile(raw)
        except zipfile.BadZipFile:
            raise DataError(f"{download.name}: the download is not a zip archive") from None
        with archive, archive.open(_zip_member(archive, member, download)) as stream:
            yield stream


def _crlf_to_lf(chunks: Iterator[bytes]) -> Iterator[bytes]:
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        # A CR at the very end may be the first half of a CRLF split across chunks.
        carry = b"\r" if data.endswith(b"\r") else b""
        yield data[: len(data) - len(carry)].replace(b"\r\n", b"\n")
    yield carry


def _head_lines(chunks: Iterator[bytes], lines: int) -> Iterator[bytes]:
    left = lines
    for chunk in chunks:
        count = chunk.count(b"\n")
        if count < left:
            left -= count
            yield chunk
            continue
        end = -1
        for _ in range(left):
            end = chunk.index(b"\n", end + 1)
        yield chunk[: end + 1]
        return


def _build(file: DataFile, download: Path, target: Path) -> None:
    origin = file.origin
    assert origin is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    plain = not (origin.crlf_to_lf or origin.head_lines is not None)
    try:
        with _open_source(download, origin.member) as source:
            if plain and origin.gunzip == (file.compression == "gzip"):
                # Same form as the download: keep its bytes (gzip bytes are not reproducible anyway).
                with target.open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                return
            stream = cast("IO[bytes]", gzip.GzipFile(fileobj=source, mode="rb")) if origin.gunzip else source
            chunks = iter_chunks(stream)
            if origin.crlf_to_lf:
                chunks = _crlf_to_lf(chunks)
            if origin.head_lines is not None:
                chunks = _head_lines(chunks, origin.head_lines)
            _write(chunks, target, file)
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{file.path}: cannot rebuild it from {download.name} ({err})") from None


def _write(chunks: Iterator[bytes], target: Path, file: DataFile) -> None:
    if file.compression == "zip":
        with (
            zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive,
            archive.open(file.zip_member, "w") as member,
        ):
            for chunk in chunks:
                member.write(chunk)
        return
    with target.open("wb") as raw:
        if file.compression == "gzip":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as packed:
                for chunk in chunks:
                    packed.write(chunk)
        else:
            for chunk in chunks:
                raw.write(chunk)


# --------------------------------------------------------------------------- installing


def _keep_existing(root: Path, staging: Path) -> None:
    """Copy files already in ``root`` that the fetch did not make (made by hand, or the user's own)."""
    if not root.is_dir():
        return
    for path in root.rglob("*"):
        if path.is_file():
            twin = staging / path.relative_to(root)
            if not twin.exists():
                twin.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, twin)


def _swap_in(staging: Path, root: Path) -> None:
    """Replace ``root`` by ``staging`` with renames, so readers never see a half-written folder."""
    backup: Path | None = None
    if root.exists():
        backup = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        backup.rmdir()
        root.replace(backup)
    try:
        staging.replace(root)
    except OSError:
        if backup is not None:
            backup.replace(root)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
