"""Byte streams: the one place the data stage opens a file for reading.

Files may be stored plain, gzip-compressed or as a zip archive holding one
file; :func:`open_binary` hides the difference (every reader of the tree opens
its files with it), :func:`compression_of` says which it is and
:func:`consumed_bytes` how far into the file on disk a stream has read. :class:`ChunkStream` turns an
iterator of byte chunks into a read-only file object, so a reader can rewrite
a stream on the fly (``::`` to a one-byte separator, a trailer cut off) and
still hand it to Arrow's parsers without holding the whole file.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal, cast

from mlscale.errors import DataError, DataFormatError

__all__ = [
    "CHUNK_BYTES",
    "ChunkStream",
    "Compression",
    "compression_of",
    "consumed_bytes",
    "iter_chunks",
    "open_binary",
    "replace_separator",
    "stop_at_line",
]

CHUNK_BYTES = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"

#: How a file is stored, from its first bytes (None: plain).
Compression = Literal["gzip", "zip"] | None


def _raw_open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot open ({err.strerror})") from None


def _kind(head: bytes) -> Compression:
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head == _ZIP_MAGIC:
        return "zip"
    return None


def compression_of(path: Path) -> Compression:
    """``"gzip"``, ``"zip"`` or None (plain), from the first bytes of ``path``, not its name."""
    with _raw_open(path) as raw:
        return _kind(raw.read(4))


def consumed_bytes(stream: IO[bytes]) -> int:
    """Bytes of the file on disk read so far through ``stream`` (from :func:`open_binary`).

    For gzip and zip that is the compressed position, which is what a progress
    bar over the file's size needs.
    """
    # gzip.GzipFile keeps the file in ``fileobj``, zipfile.ZipExtFile in ``_fileobj``.
    inner = getattr(stream, "fileobj", None) or getattr(stream, "_fileobj", None)
    return int((inner or stream).tell())


def open_binary(path: Path) -> IO[bytes]:
    """Open ``path`` for binary reading, decompressing gzip and single-file zip transparently.

    The compression is detected from the first bytes, not the name. Errors of a
    corrupt gzip stream (``EOFError``, ``zlib.error``, ``gzip.BadGzipFile``)
    surface when reading, where the caller knows how far it got.
    """
    raw = _raw_open(path)
    kind = _kind(raw.read(4))
    raw.seek(0)
    if kind is None:
        return raw
    raw.close()
    if kind == "gzip":
        # Opened by name, so that closing the gzip stream closes the file too.
        return cast("IO[bytes]", gzip.open(path, "rb"))
    return _open_zip_member(path)


def _open_zip_member(path: Path) -> IO[bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise DataFormatError(f"not a readable zip archive ({err})", path=str(path)) from None
    with archive:
        members = [info.filename for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            raise DataFormatError(
                f"expected a zip archive holding exactly one file, found {len(members)}: " + ", ".join(members[:5]),
                path=str(path),
                hint="unpack it and pass the file you mean",
            )
        # The member keeps the archive's file open until it is closed itself.
        return archive.open(members[0])


def iter_chunks(stream: IO[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes of ``stream`` in chunks of at most ``size`` bytes."""
    while chunk := stream.read(size):
        yield chunk


def replace_separator(chunks: Iterator[bytes], old: bytes, new: bytes) -> Iterator[bytes]:
    """Replace every ``old`` separator by ``new`` across chunk edges.

    ``old`` must be one byte repeated (such as ``b"::"``). A run of that byte at
    the end of a chunk is held back and glued to the next chunk, so the result
    is the same as replacing in the whole stream at once.

    >>> b"".join(replace_separator(iter([b"1:", b":2::", b"3"]), b"::", b"\\t"))
    b'1\\t2\\t3'
    """
    if not old or old.strip(old[:1]):
        raise ValueError("old must be one byte repeated, such as b'::'")
    unit = old[:1]
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        kept = data.rstrip(unit)
        carry = data[len(kept) :]
        if kept:
            yield kept.replace(old, new)
    if carry:
        yield carry.replace(old, new)


def stop_at_line(chunks: Iterator[bytes], marker: bytes) -> Iterator[bytes]:
    """The bytes before the first line that is exactly ``marker`` (a trailer is dropped).

    >>> b"".join(stop_at_line(iter([b"a,b\\n1,2\\nSum", b"mary\\nx\\n"]), b"Summary"))
    b'a,b\\n1,2\\n'
    """
    needle = b"\n" + marker + b"\n"
    pending = b"\n"  # a virtual newline so a marker on the first line is found too
    for chunk in chunks:
        pending += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
        at = pending.find(needle)
        if at >= 0:
            yield pending[1 : at + 1]
            return
        # Keep enough of the tail to find a marker split across chunks.
        cut = max(1, len(pending) - len(needle))
        yield pending[1:cut]
        pending = pending[cut - 1 :]
    if pending.endswith(b"\n" + marker):
        pending = pending[: -len(marker)]
    yield pending[1:]


class ChunkStream(io.RawIOBase):
    """A read-only binary file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n
