from __future__ import annotations

import io

import pytest

from mlscale.data.lineblocks import LineTooLongError, count_lines, line_blocks


def test_blocks_end_on_whole_lines_and_keep_every_byte() -> None:
    text = b"".join(f"{u},{u * 7},1.5\n".encode() for u in range(5000))
    blocks = list(line_blocks(io.BytesIO(text), 1000))
    assert len(blocks) > 10
    assert all(b.endswith(b"\n") for b in blocks)
    assert b"".join(blocks) == text
    assert sum(count_lines(b) for b in blocks) == 5000


def test_a_line_longer_than_the_block_makes_a_longer_block() -> None:
    long = b"1," + b"9" * 5000 + b",3\n"
    blocks = list(line_blocks(io.BytesIO(b"1,2,3\n" + long + b"4,5,6\n"), 64))
    assert b"".join(blocks) == b"1,2,3\n" + long + b"4,5,6\n"
    assert any(len(b) > 5000 for b in blocks)


def test_missing_last_newline_is_added_and_blank_tail_dropped() -> None:
    assert [bytes(b) for b in line_blocks(io.BytesIO(b"1,2\n3,4"), 4)] == [b"1,2\n", b"3,4\n"]
    assert list(line_blocks(io.BytesIO(b"1,2\n  \n"), 4)) == [bytearray(b"1,2\n")]
    assert list(line_blocks(io.BytesIO(b""), 4)) == []


class _Trickle(io.RawIOBase):
    """A stream that returns at most 3 bytes per read (a pipe, a zip member)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(min(3, len(b)))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_short_reads_still_fill_blocks() -> None:
    text = b"".join(f"{u},1\n".encode() for u in range(300))
    blocks = list(line_blocks(_Trickle(text), 200))  # type: ignore[arg-type]
    assert b"".join(blocks) == text
    assert all(len(b) > 150 for b in blocks[:-1])


def test_block_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="block_bytes"):
        list(line_blocks(io.BytesIO(b"1\n"), 0))


def test_a_line_past_the_limit_raises_after_the_blocks_before_it() -> None:
    stream = io.BytesIO(b"1,2,3\n" * 50 + b"9" * 5000 + b"\n4,5,6\n")
    got: list[bytes] = []
    with pytest.raises(LineTooLongError, match="1,000 bytes") as info:
        got.extend(bytes(b) for b in line_blocks(stream, 64, max_line_bytes=1000))
    assert info.value.limit == 1000
    assert b"".join(got) == b"1,2,3\n" * 50  # every whole line before it came out first
    # At the limit or under it the line is read.
    ok = list(line_blocks(io.BytesIO(b"9" * 900 + b"\n4,5,6\n"), 64, max_line_bytes=1000))
    assert b"".join(ok) == b"9" * 900 + b"\n4,5,6\n"
