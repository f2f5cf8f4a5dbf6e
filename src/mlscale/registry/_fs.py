"""Durable, atomic file-system steps the file store is built from.

Why each exists: a crash (or ``kill -9``) at any moment must leave either the
old state or the new one on disk, never a mix. Files are written to a temporary
name, flushed with ``fsync``, then renamed into place; the folder is synced so
the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write_bytes", "exclusive_lock", "fsync_dir", "fsync_file", "random_token"]


def random_token() -> str:
    """A short random string for temporary names that never collide."""
    return secrets.token_hex(6)


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (new, renamed, removed names) to disk; a no-op where unsupported."""
    if sys.platform == "win32":  # pragma: no cover - folders cannot be opened there
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new bytes, never a part."""
    tmp = path.with_name(f".{path.name}.{random_token()}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the ``with`` block.

    Serialises read-modify-write steps (aliases, version numbers) between
    processes on one machine. Where ``fcntl`` is missing (Windows) it does
    nothing, and the publish rename check alone keeps version numbers unique.
    """
    if sys.platform == "win32":  # pragma: no cover
        yield
        return
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask decides who may share it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
