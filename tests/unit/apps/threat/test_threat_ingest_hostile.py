"""Threat ingest on broken logs: a clear error naming the file (and line), never an Arrow or gzip traceback."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mlscale.apps.threat.ingest import ingest
from mlscale.errors import DataFormatError


@pytest.fixture
def conn_lines(strato: Path) -> list[str]:
    return (strato / "001-zeek-scenario-malicious" / "labeled-conn.log").read_text().splitlines(keepends=True)[:300]


def test_a_zeek_log_without_types_reads_its_epoch_seconds(tmp_path: Path, conn_lines: list[str]) -> None:
    log = tmp_path / "conn.log"
    log.write_text("".join(line for line in conn_lines if not line.startswith("#types")))
    report = ingest(log, tmp_path / "out")
    assert report.flows > 0


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_zeek_ts_names_the_line(tmp_path: Path, conn_lines: list[str], value: str) -> None:
    header = sum(1 for line in conn_lines if line.startswith("#"))
    lines = list(conn_lines)
    fields = lines[header + 2].split("\t")
    lines[header + 2] = "\t".join([value, *fields[1:]])
    log = tmp_path / "conn.log"
    log.write_text("".join(lines))
    with pytest.raises(DataFormatError, match="ts: expected finite epoch seconds") as info:
        ingest(log, tmp_path / "out")
    assert info.value.path == str(log)
    assert info.value.line == header + 3
    assert not list((tmp_path / "out").rglob("*.parquet"))


@pytest.mark.parametrize("keep", [0.1, 0.7])
def test_a_truncated_log_gz_is_a_clear_error(tmp_path: Path, conn_lines: list[str], keep: float) -> None:
    whole = gzip.compress("".join(conn_lines * 20).encode())
    log = tmp_path / "conn.log.gz"
    log.write_bytes(whole[: int(len(whole) * keep)])
    with pytest.raises(DataFormatError, match="corrupt or truncated compressed file") as info:
        ingest(log, tmp_path / "out")
    assert info.value.path == str(log)


def test_json_lines_with_wrong_types_are_a_clear_error(tmp_path: Path) -> None:
    base = {"ts": 1.5, "uid": "C1", "id.orig_h": "10.0.0.1", "id.orig_p": 5000, "id.resp_h": "10.0.0.2"}
    base |= {"id.resp_p": 80, "proto": "tcp", "orig_bytes": 10, "resp_bytes": 0, "conn_state": "SF"}
    log = tmp_path / "conn.json"
    log.write_text(json.dumps(base) + "\n" + json.dumps({**base, "ts": "yesterday"}) + "\n")
    with pytest.raises(DataFormatError, match="'ts' is a str here") as info:
        ingest(log, tmp_path / "out")
    assert info.value.line == 2
    log.write_text(json.dumps({**base, "id.orig_p": "http"}) + "\n")
    with pytest.raises(DataFormatError) as info:
        ingest(log, tmp_path / "out")
    assert info.value.path == str(log)
