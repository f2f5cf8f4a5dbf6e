"""The reader's multi-threaded path (plain files): same rows, same bad-row reports, in file order."""

from __future__ import annotations

import gzip
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlscale.data.readers import InteractionReader
from mlscale.errors import DataFormatError


def _write(path: Path, rows: int, bad: dict[int, str] | None = None, header: str = "user,item,rating\n") -> Path:
    lines = [f"{u % 97},{(u * 31) % 53},{1 + u % 5}\n" for u in range(rows)]
    for at, text in (bad or {}).items():
        lines[at] = text
    path.write_text(header + "".join(lines))
    return path


def _read(path: Path, workers: int, **kw: object) -> tuple[InteractionReader, pa.Table]:
    reader = InteractionReader(path, block_bytes=4096, **kw)  # type: ignore[arg-type]
    reader.parse_workers = workers
    return reader, reader.read_all()


def test_parallel_and_serial_reads_give_the_same_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", 20_000)
    _, one = _read(path, 1)
    _, two = _read(path, 3)
    assert one.num_rows == two.num_rows == 20_000
    assert one.equals(two)
    assert two.column("user").to_numpy()[:3].tolist() == [0, 1, 2]


def test_strict_mode_names_the_first_bad_line_across_blocks(tmp_path: Path) -> None:
    # Bad rows in several blocks: the first in file order is the one reported, with its file line.
    path = _write(tmp_path / "r.csv", 20_000, {15_000: "7,x,1\n", 9_000: "3,4\n"})
    with pytest.raises(DataFormatError) as err:
        _read(path, 3)
    assert err.value.line == 9_000 + 2  # header is line 1, row 0 is line 2
    assert "expected 3 fields" in str(err.value)


def test_skip_mode_counts_every_bad_row_in_file_order(tmp_path: Path) -> None:
    bad = {100: "1,2\n", 12_000: "a,b,c\n", 19_999: "5,6,z\n"}
    path = _write(tmp_path / "r.csv", 20_000, bad)
    reader, table = _read(path, 3, on_error="skip")
    assert reader.bad_rows == 3
    assert [b.line for b in reader.bad_examples] == [102, 12_002, 20_001]
    assert table.num_rows == 20_000 - 3


def test_byte_order_mark_and_header_only(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf1,2,3\n4,5,6\n")
    reader = InteractionReader(path, header=False, id_type="int")  # (sniffing a BOM is not this path's job)
    assert reader.read_all().column("user").to_pylist() == [1, 4]
    head = tmp_path / "head.csv"
    head.write_text("user,item,rating\n")
    with pytest.raises(Exception, match="no interaction rows"):
        InteractionReader(head).read_all()


def test_lines_longer_than_a_block_are_read(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("user,item,rating\n" + "1,2," + "0" * 10_000 + "3\n" + "4,5,6\n")
    reader = InteractionReader(path, block_bytes=1024)
    table = reader.read_all()
    assert table.column("rating").to_pylist() == [3.0, 6.0]
    assert np.array_equal(table.column("user").to_numpy(), [1, 4])


def test_skipped_timestamps_come_back_null_and_other_columns_equal(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("user,item,rating,timestamp\n" + "".join(f"{u},{u % 7},2.5,{1000 + u}\n" for u in range(9000)))
    full = InteractionReader(path, block_bytes=4096).read_all()
    reader = InteractionReader(path, block_bytes=4096)
    reader.skip_timestamps()
    lean = reader.read_all()
    assert full.column("timestamp").null_count == 0
    assert lean.column("timestamp").null_count == 9000
    assert lean.schema == full.schema
    assert lean.drop_columns(["timestamp"]).equals(full.drop_columns(["timestamp"]))


# -- the reliability rules (tests/unit/data/test_readers_hostile.py) on both paths ---------------------------
# "plain": a file of many blocks parsed on three threads; "gzip": the same bytes through the one-thread path.

_ROWS = 20_000  # about 30 blocks of 4 KiB


def _hostile(tmp_path: Path, kind: str, bad: dict[int, bytes], header: bytes = b"user,item,rating\n") -> Path:
    lines = [f"{u % 97},{(u * 31) % 53},{1 + u % 5}\n".encode() for u in range(_ROWS)]
    for at, text in bad.items():
        lines[at] = text
    data = header + b"".join(lines)
    if kind == "gzip":
        path = tmp_path / "r.csv.gz"
        path.write_bytes(gzip.compress(data))
    else:
        path = tmp_path / "r.csv"
        path.write_bytes(data)
    return path


def _reader(path: Path, **kw: object) -> InteractionReader:
    reader = InteractionReader(path, block_bytes=4096, **kw)  # type: ignore[arg-type]
    reader.parse_workers = 3
    return reader


def _read_in_time(reader: InteractionReader) -> pa.Table:
    # A hang (a line the cutter never finishes) fails the test instead of freezing the suite.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(reader.read_all).result(timeout=60)


@pytest.mark.parametrize("kind", ["plain", "gzip"])
def test_a_line_past_max_line_bytes_names_its_line_on_both_paths(tmp_path: Path, kind: str) -> None:
    path = _hostile(tmp_path, kind, {12_000: b"3," + b"9" * 40_000 + b",1.0\n"})
    with pytest.raises(DataFormatError, match="a line longer than 16,384 bytes") as info:
        _read_in_time(_reader(path, max_line_bytes=16_384))
    assert info.value.line == 12_002
    assert info.value.path == str(path)
    # An earlier bad row is still the one reported first (file order).
    path = _hostile(tmp_path, kind, {12_000: b"3," + b"9" * 40_000 + b",1.0\n", 5_000: b"1,2\n"})
    with pytest.raises(DataFormatError, match="expected 3 fields") as info:
        _read_in_time(_reader(path, max_line_bytes=16_384))
    assert info.value.line == 5_002


@pytest.mark.parametrize("kind", ["plain", "gzip"])
def test_a_line_longer_than_a_block_under_the_limit_is_read_on_both_paths(tmp_path: Path, kind: str) -> None:
    long_id = b"1" + b"0" * 17  # an int64 id; the line is padded past a block with spaces
    path = _hostile(tmp_path, kind, {12_000: long_id + b"," + b" " * 10_000 + b"7,2.0\n"})
    table = _read_in_time(_reader(path))
    assert table.num_rows == _ROWS
    assert table.column("user")[12_000].as_py() == int(long_id)
    assert table.column("item")[12_000].as_py() == 7


@pytest.mark.parametrize("kind", ["plain", "gzip"])
@pytest.mark.parametrize("rating", [b"nan", b"inf", b"-inf", b"-1.5"])
def test_unusable_ratings_in_a_later_block_are_bad_rows_on_both_paths(tmp_path: Path, kind: str, rating: bytes) -> None:
    path = _hostile(tmp_path, kind, {15_000: b"3,30," + rating + b"\n"})
    with pytest.raises(DataFormatError, match="expected a finite number >= 0") as info:
        _reader(path).read_all()
    assert info.value.line == 15_002
    skipping = _reader(path, on_error="skip")
    table = skipping.read_all()
    assert table.num_rows == _ROWS - 1
    assert skipping.bad_rows == 1
    assert skipping.bad_examples[0].line == 15_002
    assert bool(np.isfinite(table.column("rating").to_numpy()).all())


@pytest.mark.parametrize("kind", ["plain", "gzip"])
def test_a_nul_byte_in_a_later_block_is_a_clear_error_on_both_paths(tmp_path: Path, kind: str) -> None:
    path = _hostile(tmp_path, kind, {15_000: b"2,2\x000,1.0\n"})
    for on_error in ("raise", "skip"):
        with pytest.raises(DataFormatError, match="NUL byte") as info:
            _reader(path, on_error=on_error).read_all()
        assert info.value.line == 15_002


@pytest.mark.parametrize("kind", ["plain", "gzip"])
def test_19_digit_ids_on_both_paths(tmp_path: Path, kind: str) -> None:
    big = 9_123_456_789_012_345_678
    path = _hostile(tmp_path, kind, {0: f"{big},1,1.0\n".encode(), 15_000: f"5,{big},1.0\n".encode()})
    reader = _reader(path)
    assert reader.id_type == pa.int64()
    table = reader.read_all()
    assert table.column("user")[0].as_py() == big
    assert table.column("item")[15_000].as_py() == big
    over = _hostile(tmp_path, kind, {15_000: b"9999999999999999999,2,1.0\n"})
    with pytest.raises(DataFormatError, match="expected an integer that fits in 64 bits") as info:
        _reader(over).read_all()
    assert info.value.line == 15_002


@pytest.mark.parametrize("kind", ["plain", "gzip"])
def test_a_bom_before_the_header_on_both_paths(tmp_path: Path, kind: str) -> None:
    path = _hostile(tmp_path, kind, {}, header=b"\xef\xbb\xbfuserId,movieId,rating\n")
    reader = _reader(path)
    assert reader.roles.user == "userId"
    table = reader.read_all()
    assert table.num_rows == _ROWS
    assert table.column("user").to_pylist()[:3] == [0, 1, 2]
