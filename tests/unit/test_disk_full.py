"""A full disk during every writer: a clear error, no traceback, and nothing left that looks complete.

The fault is injected (the only mock these tests use): the writer's file object or numpy's ``save`` fails
with ENOSPC part-way, as a full disk does.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from mlscale.cli import main
from mlscale.errors import RegistryError, WriteError


def _enospc(path: object = None) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if path is None else str(path))


@pytest.fixture
def full_parquet(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """``arm(n)``: the n-th Parquet batch write (and every later one) fails with ENOSPC."""
    original = pq.ParquetWriter.write_batch

    def arm(after: int) -> None:
        calls = {"n": 0}

        def write_batch(self: pq.ParquetWriter, *args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] >= after:
                raise _enospc()
            original(self, *args, **kwargs)

        monkeypatch.setattr(pq.ParquetWriter, "write_batch", write_batch)

    return arm


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    err = capsys.readouterr().err
    return rc, err


def _assert_clear(rc: int, err: str) -> None:
    assert rc == 74
    assert "No space left on device" in err
    assert "the disk is full" in err
    assert "Traceback" not in err


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".npy"))


def test_ingest_csr_on_a_full_disk(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_save = np.save
    calls = {"n": 0}

    def save(file: Any, arr: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # the third array: write half of it, then the disk is full
            Path(file).write_bytes(b"\x93NUMPY" + b"\0" * 64)
            raise _enospc(file)
        real_save(file, arr, **kwargs)

    monkeypatch.setattr(np, "save", save)
    out = tmp_path / "m"
    src = str(shared_data / "movielens-100k" / "u.data")
    _assert_clear(*_cli(capsys, "data", "ingest", src, "--out", str(out), "--quiet"))
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_ingest_csr_on_a_full_disk_keeps_the_earlier_matrix(
    tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m"
    src = str(shared_data / "movielens-100k" / "u.data")
    assert _cli(capsys, "data", "ingest", src, "--out", str(out), "--quiet")[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def save(file: Any, arr: Any, **kwargs: Any) -> None:
        raise _enospc(file)

    monkeypatch.setattr(np, "save", save)
    _assert_clear(*_cli(capsys, "data", "ingest", src, "--out", str(out), "--quiet"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_ingest_parquet_on_a_full_disk(
    tmp_path: Path, shared_data: Path, full_parquet: Callable[[int], None], capsys: pytest.CaptureFixture[str]
) -> None:
    full_parquet(1)
    out = tmp_path / "p"
    src = str(shared_data / "movielens-100k" / "u.data")
    _assert_clear(*_cli(capsys, "data", "ingest", src, "--out", str(out), "--to", "parquet", "--quiet"))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_synth_on_a_full_disk(
    tmp_path: Path, full_parquet: Callable[[int], None], capsys: pytest.CaptureFixture[str]
) -> None:
    full_parquet(2)
    out = tmp_path / "s"
    rc, err = _cli(capsys, "data", "synth", "--rows", "300000", "--chunk-rows", "50000", "--out", str(out), "--quiet")
    _assert_clear(rc, err)
    assert list(tmp_path.iterdir()) == []


def test_synth_csv_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import gzip

    real_write = gzip.GzipFile.write
    written = {"bytes": 0}

    def write(self: gzip.GzipFile, data: Any) -> int:  # the writer's file object: full after the first bytes
        written["bytes"] += len(data)
        if written["bytes"] > 1000:
            raise _enospc(self.name)
        return real_write(self, data)

    monkeypatch.setattr(gzip.GzipFile, "write", write)
    out = tmp_path / "s.csv.gz"
    _assert_clear(*_cli(capsys, "data", "synth", "--rows", "100000", "--out", str(out), "--quiet"))
    assert list(tmp_path.iterdir()) == []


def test_threat_ingest_on_a_full_disk(
    tmp_path: Path, shared_data: Path, full_parquet: Callable[[int], None], capsys: pytest.CaptureFixture[str]
) -> None:
    from mlscale.apps.threat.ingest import ingest

    log = shared_data / "stratosphere-zeek-labeled" / "001-zeek-scenario-malicious" / "labeled-conn.log"
    out = tmp_path / "t"
    full_parquet(4)
    # The data stage's part writer names the part it could not write (a WriteError, exit 74 at the CLI).
    with pytest.raises(WriteError, match="No space left") as info:
        ingest(log, out, batch_rows=100, part_rows=200)  # two parts complete before the disk fills
    assert info.value.exit_code == 74
    assert "part-" in str(info.value)
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == []
    shutil.rmtree(out)
    rc, err = _cli(capsys, "threat", "ingest", str(log), "--out", str(out))
    _assert_clear(rc, err)
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == []


def test_publish_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlscale.registry import open_store

    store = open_store(tmp_path / "reg")
    arrays = {"w": np.arange(10.0)}
    store.publish("demo", "m", arrays=arrays, params={}, engine="local", data_fingerprint="x")

    def save(file: Any, arr: Any, **kwargs: Any) -> None:  # half an array written, then the disk is full
        file.write(b"\x93NUMPY")
        raise _enospc(getattr(file, "name", None))

    monkeypatch.setattr(np, "save", save)
    with pytest.raises(RegistryError, match="could not publish demo/m") as info:
        store.publish("demo", "m", arrays=arrays, params={}, engine="local", data_fingerprint="x")
    assert "No space left" in str(info.value)
    model_dir = tmp_path / "reg" / "demo" / "m"
    assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(".lock")) == ["1"]
    assert [m.version for m in store.list()] == [1]
