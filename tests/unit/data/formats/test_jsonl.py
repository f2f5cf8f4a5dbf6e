"""JSON-lines reader: inference, fixed types and line-numbered errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from mlscale.data.formats.jsonl import read_json_lines
from mlscale.errors import DataFormatError


def test_amazon_reviews_in_zip(shared_data: Path) -> None:
    table = read_json_lines(shared_data / "amazon-musical-instruments-5core/Musical_Instruments.json.zip")
    assert table.num_rows == 10_261
    assert table.schema.field("overall").type == pa.float64()
    assert table.column("reviewerID").unique().to_pylist()[:1] == ["A2IBPI20UZIR0U"]


def test_fixed_types_and_gzip(tmp_path: Path) -> None:
    path = tmp_path / "x.json.gz"
    path.write_bytes(gzip.compress(b'{"ts": 1, "n": 2}\n{"ts": 2}\n'))
    table = read_json_lines(path, types={"ts": pa.float64(), "absent": pa.int64()})
    assert table.schema.field("ts").type == pa.float64()
    assert "absent" not in table.column_names
    assert table.column("n").to_pylist() == [2, None]


def test_bad_json_line(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": \n')
    with pytest.raises(DataFormatError, match="not valid JSON") as info:
        read_json_lines(path)
    assert info.value.line == 3


def test_type_change_is_located(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}\n{"a": 2.5}\n{"a": "x"}\n')
    with pytest.raises(DataFormatError, match="key 'a' is a str here but a int") as info:
        read_json_lines(path)
    assert info.value.line == 3
