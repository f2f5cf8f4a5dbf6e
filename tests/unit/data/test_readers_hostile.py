"""The interaction reader on hostile or careless input: every case ends in a clear error or a correct read."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlscale.data import InteractionReader
from mlscale.errors import DataFormatError


def _read_with_deadline(reader: InteractionReader, seconds: float = 60.0) -> pa.Table:
    """Read in a thread: a hang (the old carry loop) fails the test instead of freezing the suite."""
    out: list[object] = []

    def go() -> None:
        try:
            out.append(reader.read_all())
        except Exception as exc:
            out.append(exc)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the reader hangs"
    result = out[0]
    if isinstance(result, Exception):
        raise result
    assert isinstance(result, pa.Table)
    return result


def test_a_16_mb_line_is_an_error_naming_the_line_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "long.tsv"
    path.write_bytes(b"1\t10\t1.0\n2\t20\t1.0\n3\t" + b"9" * (16 << 20) + b"\t1.0\n4\t40\t1.0\n")
    reader = InteractionReader(path, block_bytes=1 << 20, max_line_bytes=8 << 20)
    with pytest.raises(DataFormatError, match="a line longer than 8,388,608 bytes") as info:
        _read_with_deadline(reader)
    assert info.value.line == 3
    assert info.value.path == str(path)


def test_a_line_longer_than_the_block_but_under_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    long_id = "x" * (3 << 20)
    path.write_text(f"a,b,1.0\n{long_id},c,2.0\nd,e,3.0\n")
    reader = InteractionReader(path, block_bytes=1 << 20)
    table = _read_with_deadline(reader)
    assert table.column("user").to_pylist() == ["a", long_id, "d"]


@pytest.mark.parametrize("rating", ["nan", "inf", "-inf", "-1.5"])
def test_unusable_ratings_are_bad_rows_with_file_and_line(tmp_path: Path, rating: str) -> None:
    path = tmp_path / "r.tsv"
    path.write_text(f"1\t10\t1.0\n2\t20\t2.0\n3\t30\t{rating}\n4\t40\t4.0\n")
    with pytest.raises(DataFormatError, match="expected a finite number >= 0") as info:
        InteractionReader(path).read_all()
    assert info.value.line == 3
    assert str(path) in str(info.value)
    skipping = InteractionReader(path, on_error="skip")
    table = skipping.read_all()
    assert table.column("user").to_pylist() == [1, 2, 4]
    assert skipping.bad_rows == 1
    assert skipping.bad_examples[0].line == 3


def test_unusable_ratings_in_parquet(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"user": [1, 2, 3], "item": [1, 2, 3], "rating": [1.0, float("nan"), -2.0]}), path)
    with pytest.raises(DataFormatError, match="row 2: rating column 'rating': expected a finite number"):
        InteractionReader(path).read_all()
    skipping = InteractionReader(path, on_error="skip")
    assert skipping.read_all().column("user").to_pylist() == [1]
    assert skipping.bad_rows == 2


def test_a_19_digit_int64_id_in_the_first_row_keeps_integer_ids(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    big = 9_123_456_789_012_345_678
    path.write_text(f"user,item,rating\n{big},1,1.0\n5,2,1.0\n")
    reader = InteractionReader(path)
    assert reader.id_type == pa.int64()
    assert reader.read_all().column("user").to_pylist() == [big, 5]


def test_an_id_beyond_int64_later_is_a_bad_row_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "over.csv"
    path.write_text("user,item,rating\n1,1,1.0\n9999999999999999999,2,1.0\n")
    with pytest.raises(DataFormatError, match="expected an integer that fits in 64 bits") as info:
        InteractionReader(path).read_all()
    assert info.value.line == 3


def test_a_nul_byte_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_bytes(b"1\x00,10,1.0\n2,20,1.0\n")
    with pytest.raises(DataFormatError, match="NUL byte") as info:
        InteractionReader(path).read_all()
    assert info.value.line == 1
    later = tmp_path / "later.csv"
    later.write_bytes(b"1,10,1.0\n" * 20_000 + b"2,2\x000,1.0\n")
    with pytest.raises(DataFormatError, match="NUL byte") as info:
        InteractionReader(later, block_bytes=1 << 16).read_all()
    assert info.value.line == 20_001


def test_a_utf8_bom_is_stripped_with_or_without_a_header(tmp_path: Path) -> None:
    with_header = tmp_path / "h.csv"
    with_header.write_bytes(b"\xef\xbb\xbfuserId,movieId,rating\n1,10,4.5\n")
    reader = InteractionReader(with_header)
    assert reader.roles.user == "userId"
    assert reader.read_all().column("user").to_pylist() == [1]
    bare = tmp_path / "b.csv"
    bare.write_bytes(b"\xef\xbb\xbf7,10,4.5\n8,11,1.0\n")
    reader = InteractionReader(bare)
    assert reader.id_type == pa.int64()
    assert reader.read_all().column("user").to_pylist() == [7, 8]


def test_a_one_file_zip_is_read_and_any_other_zip_says_unpack_it(tmp_path: Path) -> None:
    # The data stage opens a one-file zip transparently (data.streams.open_binary); any other
    # zip is a clear error naming the archive, never a confusing parse of its bytes.
    path = tmp_path / "ratings.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ratings.csv", "1,10,1.0\n2,20,3.0\n")
    assert _read_with_deadline(InteractionReader(path)).column("user").to_pylist() == [1, 2]
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("ratings.csv", "1,10,1.0\n")
        zf.writestr("README", "ratings\n")
    with pytest.raises(DataFormatError, match="zip archive") as info:
        InteractionReader(two)
    assert info.value.path == str(two)
    assert "unpack it" in str(info.value)
