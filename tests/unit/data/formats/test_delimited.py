"""Delimited text reader: separators, encodings, archives and line-numbered errors."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pyarrow as pa
import pytest

from mlscale.data.formats.delimited import Delimited, read_delimited
from mlscale.errors import DataFormatError, ValidationError


def test_double_colon_separator_gzip_real_file(shared_data: Path) -> None:
    table = read_delimited(
        shared_data / "movielens-1m-partial/ratings.first487650.dat.gz",
        sep="::",
        header=False,
        columns=("user", "item", "rating", "ts"),
    )
    assert table.num_rows == 487_650
    counts = {v["values"]: v["counts"] for v in table.column("rating").value_counts().to_pylist()}
    # The ratings distribution given in shared/data/README.md.
    assert counts == {1: 27_472, 2: 53_838, 3: 127_216, 4: 170_579, 5: 108_545}
    assert table.slice(0, 1).to_pylist() == [{"user": 1, "item": 1193, "rating": 5, "ts": 978300760}]


def test_latin1_pipe_file(shared_data: Path) -> None:
    columns = ("movie_id", "title", "release", "video", "url", *(f"g{i}" for i in range(19)))
    table = Delimited(sep="|", header=False, columns=columns, encoding="latin-1")(shared_data / "movielens-100k/u.item")
    assert table.num_rows == 1_682
    titles = table.column("title").to_pylist()
    assert any("é" in t for t in titles)  # Latin-1 accents decoded, not mangled


def test_header_replaced_by_given_names(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text("userID\tartistID\tweight\n2\t51\t13883\n")
    table = read_delimited(path, sep="\t", columns=("u", "i", "w"), types={"w": "float32"})
    assert table.column_names == ["u", "i", "w"]
    assert table.schema.field("w").type == pa.float32()


def test_zip_with_one_member(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "r.zip", "w") as archive:
        archive.writestr("r.csv", "a,b\n1,2\n")
    assert read_delimited(tmp_path / "r.zip").to_pylist() == [{"a": 1, "b": 2}]


def test_wrong_column_count_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.dat.gz"
    path.write_bytes(gzip.compress(b"1::2::5::9\n1::3::4::9\n1::4\n"))
    with pytest.raises(DataFormatError, match="Expected 4 columns, got 2") as info:
        read_delimited(path, sep="::", header=False, columns=("u", "i", "r", "t"))
    assert info.value.line == 3
    assert info.value.path == str(path)


def test_bad_value_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("user,item\n1,2\n3,x4\n")
    with pytest.raises(DataFormatError, match="cannot convert to int64: invalid value 'x4'") as info:
        read_delimited(path, types={"item": "int64"})
    assert info.value.line == 3


def test_separator_and_names_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("1;;2\n")
    with pytest.raises(ValidationError, match="unsupported separator"):
        read_delimited(path, sep=";;", header=False, columns=("a", "b"))
    with pytest.raises(ValidationError, match="needs column names"):
        read_delimited(path, header=False)
