"""An append-only log of lines kept in one object, merged with a local copy on each host.

What the object-store registry makes of an attachment (the threat app's
verdict log): every host appends to its own local file (the path
:meth:`~mlscale.registry.Store.attachment` gives, under the host cache) and
:func:`sync_line_log` then merges the two copies:

- complete lines of the local file that the object lacks are appended to it
  with a compare-and-swap on its ETag (``If-Match``; ``If-None-Match: *`` for
  the first line), retried when another host's sync landed in between, so no
  host's lines are ever overwritten;
- lines of the object that the local file lacks are appended to the local file.

The log is a *set* of lines in arrival order per host: a line already present
(byte for byte) is not added again, so a sync repeated after a crash, or run
by several processes of one host, adds nothing twice. Both copies only ever
grow by appending, which keeps every step crash-safe without any bookkeeping
file: an interrupted sync is simply done again by the next one. A torn last
line of the local file (a crash mid-append, never acknowledged) is cut off
first (the rule the verdict log's own writer follows). The cost is
one GET (and one PUT when there is something new) of the whole object per
sync: meant for small, human-made logs, not for bulk data.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlscale.errors import RegistryError
from mlscale.registry._fs import exclusive_lock
from mlscale.registry._s3 import PreconditionFailedError, S3Bucket

__all__ = ["sync_line_log"]

_MAX_CAS_ATTEMPTS = 50


def _complete_lines(data: bytes) -> list[bytes]:
    """The newline-terminated lines of ``data`` (a torn last line left out), each with its newline."""
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(keepends=True)


def sync_line_log(bucket: S3Bucket, key: str, path: Path, what: str) -> None:
    """Merge the local log ``path`` with the object ``key``: afterwards both hold every line of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The same exclusive lock the appending writers take on the file: nothing is appended while we merge.
    with exclusive_lock(path):
        local = path.read_bytes()
        lines = _complete_lines(local)
        for _ in range(_MAX_CAS_ATTEMPTS):
            got = bucket.get(key, f"read {what}")
            remote, etag = got if got is not None else (b"", "")
            if remote and not remote.endswith(b"\n"):  # never written so by a sync: refuse to guess
                raise RegistryError(f"{bucket.uri(key)}: the last line of {what} is incomplete", hint="fix the object")
            in_remote = set(remote.splitlines(keepends=True))
            missing = [line for line in dict.fromkeys(lines) if line not in in_remote]
            if not missing:
                break
            try:
                bucket.put(key, remote + b"".join(missing), f"append to {what}", if_none_match=not etag, if_match=etag)
            except PreconditionFailedError:
                continue  # another host appended in between: merge with what it wrote
            remote += b"".join(missing)
            break
        else:
            raise RegistryError(f"could not append to {what}: {_MAX_CAS_ATTEMPTS} concurrent changes")
        have = set(lines)
        new = [line for line in dict.fromkeys(remote.splitlines(keepends=True)) if line not in have]
        torn = len(local) - sum(len(line) for line in lines)
        if not new and not torn:
            return
        with open(path, "r+b") as f:
            f.truncate(len(local) - torn)
            f.seek(0, os.SEEK_END)
            f.write(b"".join(new))
            f.flush()
            os.fsync(f.fileno())
