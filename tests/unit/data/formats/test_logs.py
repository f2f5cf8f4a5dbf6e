"""The data stage's network-log readers on the real samples: sniffing, nfdump/nfcapd streams, tshark, Zeek lines."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlscale.data.formats.columns import csv_error, line_numbers, require_columns
from mlscale.data.formats.nfdump import iter_nfcapd, iter_nfdump_file, read_nfdump_csv
from mlscale.data.formats.sniff import first_line, sniff_log
from mlscale.data.formats.tshark import iter_tshark_fields, tshark_columns
from mlscale.data.formats.zeek import ZeekLog
from mlscale.errors import DataError, DataFormatError, DependencyError


@pytest.fixture(scope="module")
def slips(shared_data: Path) -> Path:
    return shared_data / "slips-samples"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("test1-malicious.nfcapd", "nfcapd"),
        ("test1-malicious.nfdump.csv", "nfdump-csv"),
        ("test2-malicious.binetflow", "argus"),
        ("test18-ctu-sme-11/conn.log.labeled", "zeek-conn"),
        ("test18-ctu-sme-11/dns.log.labeled", "zeek-dns"),
        ("test9-mixed-zeek/conn.log", "zeek-conn"),
        ("test9-mixed-zeek/dns.log", "zeek-dns"),
        ("test18-ctu-sme-11/README.md", None),
    ],
)
def test_sniff_tells_the_real_samples_apart(slips: Path, name: str, expected: str | None) -> None:
    assert sniff_log(slips / name) == expected


def test_sniff_reads_through_gzip_and_refuses_empty_or_missing_files(slips: Path, tmp_path: Path) -> None:
    packed = tmp_path / "flows.bin"
    packed.write_bytes(gzip.compress((slips / "test1-malicious.nfdump.csv").read_bytes()))
    assert sniff_log(packed) == "nfdump-csv"
    assert first_line(packed).startswith("ts,te,td,sa,da")
    (tmp_path / "empty.log").write_text("\n\n")
    with pytest.raises(DataFormatError, match="empty file"):
        sniff_log(tmp_path / "empty.log")
    with pytest.raises(DataError, match="no such file"):
        sniff_log(tmp_path / "absent.log")


def test_streamed_nfdump_matches_the_whole_file_reader_and_numbers_lines(slips: Path) -> None:
    parts = list(iter_nfdump_file(slips / "test1-malicious.nfdump.csv", batch_rows=1000))
    assert max(b.num_rows for b, _ in parts) <= 1000
    assert np.concatenate([lines for _, lines in parts]).tolist() == list(range(2, 4593 + 2))
    whole = read_nfdump_csv(slips / "test1-malicious.nfdump.csv")
    streamed = pa.Table.from_batches([b for b, _ in parts])
    assert streamed.column("dp").to_pylist() == whole.column("dp").to_pylist()


@pytest.mark.skipif(shutil.which("nfdump") is None, reason="needs the nfdump tool (apt-get install nfdump)")
def test_nfcapd_through_the_tool_gives_the_csv_rows(slips: Path) -> None:
    rows = sum(b.num_rows for b, _ in iter_nfcapd(slips / "test1-malicious.nfcapd", batch_rows=1 << 16))
    assert rows == 4593


def test_nfcapd_without_the_tool_says_how_to_get_it(slips: Path) -> None:
    with pytest.raises(DependencyError, match="apt-get install nfdump"):
        next(iter_nfcapd(slips / "test1-malicious.nfcapd", batch_rows=10, nfdump="no-such-nfdump-tool"))


def test_tshark_fields_are_typed_and_a_bad_value_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "dns.csv"
    path.write_text(
        "frame.time_epoch,ip.src,ip.dst,dns.qry.name,dns.qry.type\n"
        "1.5,10.0.0.5,8.8.8.8,example.com,1\n"
        "2.5,10.0.0.5,8.8.8.8,example.org,\n"
    )
    assert tshark_columns(path)[:2] == ["frame.time_epoch", "ip.src"]
    [(batch, lines)] = list(iter_tshark_fields(path, batch_rows=10))
    assert batch.column("dns.qry.type").to_pylist() == [1, None]
    assert batch.schema.field("frame.time_epoch").type == pa.float64()
    assert lines.tolist() == [2, 3]
    path.write_text("frame.time_epoch,dns.qry.name\n1.5,a.com\nlate,b.com\n")
    with pytest.raises(DataFormatError, match=r"line 3: column 'frame.time_epoch': expected double, found 'late'"):
        list(iter_tshark_fields(path, batch_rows=10))


def test_zeek_header_and_record_lines(slips: Path) -> None:
    tsv = ZeekLog(slips / "test18-ctu-sme-11" / "conn.log.labeled")
    assert tsv.fields_line is not None
    assert tsv.first_record_line > tsv.fields_line
    json_log = ZeekLog(slips / "test9-mixed-zeek" / "conn.log")
    assert (json_log.fields_line, json_log.first_record_line) == (None, 1)


def test_column_helpers() -> None:
    assert line_numbers(3, 2, 2).tolist() == [5, 6]
    with pytest.raises(DataFormatError, match="x.csv, line 1: not a log: missing column"):
        require_columns(["a"], ("a", "b"), "x.csv", "not a log", 1)
    assert csv_error("CSV parse error: Expected 3 columns, got 2", ["a"], None) == ("Expected 3 columns, got 2", None)
