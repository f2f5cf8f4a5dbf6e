"""The reader's multi-threaded path (plain files): same rows, same bad-row reports, in file order."""

from __future__ import annotations

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
