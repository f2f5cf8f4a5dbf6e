"""Cut a byte stream into blocks of whole lines with one copy, and count lines without the GIL.

:func:`line_blocks` reads straight into each block's own buffer
(``readinto``), so a block costs one copy from the page cache and nothing is
joined or sliced afterwards; only the partial last line is carried over to the
next block. A line longer than a block makes that block longer (it never
loops on it), up to ``max_line_bytes``: a longer line raises
:class:`LineTooLongError` after every block before it was yielded.
:func:`count_lines` counts ``\\n`` with NumPy, which releases the GIL, so a worker
thread can do it while another thread works.

>>> import io
>>> [bytes(b) for b in line_blocks(io.BytesIO(b"a,1\\nbb,2\\nc,3"), 6)]
[b'a,1\\n', b'bb,2\\n', b'c,3\\n']
>>> count_lines(b"a\\nb\\n\\n")
3
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import numpy as np

__all__ = ["LineTooLongError", "count_lines", "line_blocks"]

_NEWLINE = 10


class LineTooLongError(ValueError):
    """A line longer than ``max_line_bytes``: it starts right after the last block yielded."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a line longer than {limit:,} bytes")
        self.limit = limit


def count_lines(block: bytes | bytearray | memoryview) -> int:
    """Number of ``\\n`` bytes in ``block``."""
    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == _NEWLINE))


def line_blocks(fh: IO[bytes], block_bytes: int, max_line_bytes: int | None = None) -> Iterator[bytearray]:
    """Yield blocks of about ``block_bytes`` bytes, each ending with a complete line.

    The last block gets a ``\\n`` when the stream does not end with one; an
    empty or whitespace-only tail is not yielded. Each block is a fresh
    ``bytearray`` the caller may keep (hand it to a parser in another thread).
    """
    if block_bytes < 1:
        raise ValueError(f"expected block_bytes >= 1, got {block_bytes}")
    carry = b""
    while True:
        buf = bytearray(len(carry) + block_bytes)
        buf[: len(carry)] = carry
        view = memoryview(buf)
        got = len(carry)
        # readinto may return less than asked (pipes, zip members): fill the block before cutting it.
        while got < len(buf):
            n = fh.readinto(view[got:])  # type: ignore[attr-defined]
            if not n:
                break
            got += n
        view.release()
        eof = got < len(buf)
        cut = buf.rfind(b"\n", 0, got) + 1
        if eof:
            del buf[got:]
            if buf.strip():
                if not buf.endswith(b"\n"):
                    buf += b"\n"
                yield buf
            return
        if cut == 0:
            # No line end in the whole block: keep reading this line into a bigger block,
            # up to the limit (a binary or one-line JSON file would grow it without bound).
            if max_line_bytes is not None and got > max_line_bytes:
                raise LineTooLongError(max_line_bytes)
            carry = bytes(buf)
            continue
        carry = bytes(buf[cut:])
        del buf[cut:]
        yield buf
