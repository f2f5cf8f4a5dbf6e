from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from mlscale.data.readers import InteractionReader, sniff_format
from mlscale.errors import DataError, DataFormatError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "sep", "header"),
    [
        ("1\t10\t4\t100\n2\t11\t5\t101\n", "\t", False),
        ("user,item,rating\n1,10,4\n2,11,5\n", ",", True),
        ("1::10::4::100\n2::11::5::101\n", "::", False),
        ("u|i\n1|10\n2|11\n", "|", True),
    ],
)
def test_sniff_detects_separator_and_header(tmp_path: Path, text: str, sep: str, header: bool) -> None:
    fmt = sniff_format(write(tmp_path / "f.txt", text))
    assert (fmt.sep, fmt.header) == (sep, header)


def test_reads_movielens_100k_with_typed_schema(shared_data: Path) -> None:
    reader = InteractionReader(shared_data / "movielens-100k" / "u.data", block_bytes=256 << 10)
    batches = list(reader)
    table = pa.Table.from_batches(batches)
    assert len(batches) > 1  # really streamed in blocks
    assert table.num_rows == 100_000
    assert table.schema.types == [pa.int64(), pa.int64(), pa.float32(), pa.int64()]
    assert len(table.column("user").unique()) == 943
    assert len(table.column("item").unique()) == 1682
    assert table.slice(0, 1).to_pylist() == [{"user": 196, "item": 242, "rating": 3.0, "timestamp": 881250949}]


def test_reads_gzip_double_colon(shared_data: Path) -> None:
    reader = InteractionReader(shared_data / "movielens-1m-partial" / "ratings.first487650.dat.gz")
    assert reader.format.sep == "::"
    assert reader.format.compression == "gzip"
    assert sum(b.num_rows for b in reader) == 487_650


def test_header_names_are_mapped_to_roles(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "ts,reviewerID,asin,overall\n5,A1,B9,4.0\n6,A2,B9,3.0\n")
    table = InteractionReader(path).read_all()
    assert table.column("user").to_pylist() == ["A1", "A2"]
    assert table.column("timestamp").to_pylist() == [5, 6]
    assert table.schema.field("user").type == pa.string()


def test_missing_rating_means_one(tmp_path: Path) -> None:
    table = InteractionReader(write(tmp_path / "r.tsv", "1\t2\n3\t4\n")).read_all()
    assert table.column("rating").to_pylist() == [1.0, 1.0]
    assert table.column("timestamp").null_count == 2


def test_parquet_input(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    src = pa.table({"userId": [1, 2], "movieId": [5, 6], "rating": [3.5, 4.0]})
    pq.write_table(src, tmp_path / "r.parquet")
    table = InteractionReader(tmp_path / "r.parquet").read_all()
    assert table.column("item").to_pylist() == [5, 6]


# -- bad input ---------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        InteractionReader(tmp_path / "nope.csv")


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        InteractionReader(write(tmp_path / "e.csv", ""))


def test_header_only_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no interaction rows"):
        InteractionReader(write(tmp_path / "h.csv", "userId,movieId\n"), header=True).read_all()


def test_truncated_gzip_names_file_and_line(tmp_path: Path, shared_data: Path) -> None:
    src = (shared_data / "movielens-1m-partial" / "ratings.first487650.dat.gz").read_bytes()
    path = tmp_path / "cut.dat.gz"
    path.write_bytes(src[: len(src) // 3])
    with pytest.raises(DataFormatError, match="truncated gzip") as info:
        InteractionReader(path).read_all()
    assert info.value.path == str(path)
    assert info.value.line is not None
    assert info.value.line > 1000


def test_wrong_delimiter_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path / "r.tsv", "1\t2\t3\n4\t5\t6\n")
    with pytest.raises(DataFormatError, match="one field per line") as info:
        InteractionReader(path, sep=",")
    assert "'\\t'" in str(info.value)


def test_non_numeric_id_strict_names_line(tmp_path: Path) -> None:
    path = write(tmp_path / "r.tsv", "1\t2\t3\n4\t5\t6\n7\tabc\t8\n")
    with pytest.raises(DataFormatError, match="expected an integer, got 'abc'") as info:
        InteractionReader(path).read_all()
    assert info.value.line == 3
    assert str(path) in str(info.value)


def test_skip_mode_counts_and_lists_bad_rows(tmp_path: Path) -> None:
    text = "1\t2\t3\n\n4\t5\n6\tx\t8\n9\t10\t11\n"
    reader = InteractionReader(write(tmp_path / "r.tsv", text), on_error="skip")
    table = reader.read_all()
    assert table.column("user").to_pylist() == [1, 9]
    assert reader.bad_rows == 2
    assert [b.line for b in reader.bad_examples] == [3, 4]
    assert "found 2" in reader.bad_examples[0].reason


def test_strict_mode_reports_short_row_line_after_blank(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError) as info:
        InteractionReader(write(tmp_path / "r.tsv", "1\t2\t3\n\n\n4\t5\n"), sep="\t").read_all()
    assert info.value.line == 4


def test_all_rows_bad_in_skip_mode_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no interaction rows .*2 bad rows"):
        InteractionReader(write(tmp_path / "r.tsv", "1\ta\n2\tb\n"), id_type="int", on_error="skip").read_all()


def test_unknown_column_name(tmp_path: Path) -> None:
    from mlscale.errors import ValidationError

    with pytest.raises(ValidationError, match="--user-col"):
        InteractionReader(write(tmp_path / "r.csv", "a,b\n1,2\n"), user_col="uid")


def test_gzip_text_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("user,item\n" + "".join(f"{i},{i % 7}\n" for i in range(20_000)))
    reader = InteractionReader(path, block_bytes=1 << 16)
    assert sum(b.num_rows for b in reader) == 20_000
