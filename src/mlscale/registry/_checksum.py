"""SHA-256 of files, read in 1 MiB blocks so memory stays flat for any file size.

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as tmp:
...     p = pathlib.Path(tmp) / "x.json"
...     _ = p.write_bytes(b"{}")
...     sha256_file(p)[:16]
'44136fa355b3678a'
"""

from __future__ import annotations

import hashlib
import os
import re

__all__ = ["BLOCK_SIZE", "SHA256_HEX", "sha256_file"]

#: Bytes read per step while hashing.
BLOCK_SIZE = 1 << 20

#: A lower-case hex SHA-256 digest.
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The lower-case hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    buffer = bytearray(BLOCK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            digest.update(view[:n])
    return digest.hexdigest()
