"""Parquet ingest and the atomic part writer: parts, swap, failure, disk full."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlscale.data.ingest import ingest_parquet, parse_size
from mlscale.data.readers import interaction_schema
from mlscale.data.writers import PartWriter
from mlscale.errors import DataError, ValidationError

INT64 = pa.int64()

#: The ``batches`` fixture (tests/unit/conftest.py).
BatchMaker = Callable[..., list[pa.RecordBatch]]


def test_parquet_parts_are_atomic(tmp_path: Path, batches: BatchMaker) -> None:
    users = np.arange(100)
    files = ingest_parquet(batches(users, users, 10), tmp_path / "out", rows_per_file=30)
    assert len(files) == 4
    assert pq.read_table(tmp_path / "out").num_rows == 100

    def failing() -> list[pa.RecordBatch]:
        yield from batches(users, users, 10)[:3]
        raise DataError("boom")

    with pytest.raises(DataError):
        ingest_parquet(failing(), tmp_path / "out")
    # the earlier output is untouched and no temp folder is left behind
    assert pq.read_table(tmp_path / "out").num_rows == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_parse_size() -> None:
    assert parse_size("1G") == 1 << 30
    with pytest.raises(ValidationError, match="--memory-budget"):
        parse_size("lots")


def test_part_writer_cuts_batches_at_the_part_size(tmp_path: Path, batches: BatchMaker) -> None:
    users = np.arange(100)
    with PartWriter(tmp_path / "out", rows_per_file=40) as parts:
        for batch in batches(users, users, 30):
            parts.write(batch)
        assert not (tmp_path / "out").exists()  # nothing visible before the commit
    assert [pq.ParquetFile(f).metadata.num_rows for f in parts.files] == [40, 40, 20]
    assert parts.rows == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_part_writer_refuses_an_existing_folder_without_overwrite(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(ValidationError, match="already exists"):
        PartWriter(tmp_path / "out", overwrite=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError, match="not a folder"):
        PartWriter(tmp_path / "file")
    with pytest.raises(ValidationError, match="does not exist"):
        PartWriter(tmp_path / "no" / "out", parents=False)


def _disk_full(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_part_writer_turns_a_full_disk_into_a_data_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batches: BatchMaker
) -> None:
    users = np.arange(100)
    ingest_parquet(batches(users, users, 10), tmp_path / "out", rows_per_file=30)

    def stream() -> Iterator[pa.RecordBatch]:
        yield from batches(users, users, 10)[:2]
        monkeypatch.setattr(pq.ParquetWriter, "write_batch", _disk_full)
        yield from batches(users, users, 10)[2:]

    with pytest.raises(DataError, match=r"part-00000\.parquet: cannot write \(No space left on device\)") as info:
        ingest_parquet(stream(), tmp_path / "out", rows_per_file=30)
    assert "disk is full" in str(info.value.hint)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left
    assert pq.read_table(tmp_path / "out").num_rows == 100  # the earlier output is untouched


def test_part_writer_reports_a_failed_swap_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batches: BatchMaker
) -> None:
    users = np.arange(10)
    parts = PartWriter(tmp_path / "out")
    parts.write(batches(users, users, 10)[0])
    monkeypatch.setattr(Path, "rename", _disk_full)
    with pytest.raises(DataError, match="out: cannot write"):
        parts.commit()
    assert list(tmp_path.iterdir()) == []


def test_part_writer_fixed_schema_and_empty_commit(tmp_path: Path, batches: BatchMaker) -> None:
    schema = interaction_schema(pa.int64())
    with PartWriter(tmp_path / "empty", schema=schema) as parts:
        pass
    assert parts.files == []
    assert list((tmp_path / "empty").iterdir()) == []
    with pytest.raises(ValueError, match="already committed"):
        parts.write(batches(np.arange(3), np.arange(3), 3)[0])
