"""Zeek log reader: every real log of the shared data, and malformed logs written here."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from mlscale.data.formats.zeek import ZeekLog, arrow_type, iter_zeek_batches, read_zeek
from mlscale.errors import DataFormatError

# Rows and label counts from shared/data/README.md (and the logs' own README files).
REAL_LOGS = [
    ("stratosphere-zeek-labeled/001-zeek-scenario-malicious/labeled-conn.log", 992,
     {"Malicious": 244, "Benign": 9, "Background": 739}),
    ("stratosphere-zeek-labeled/008-zeek-mixed/data/conn.log.labeled", 5_663,
     {"Malicious": 4_201, "Benign": 1_402, "Background": 60}),
    ("stratosphere-zeek-labeled/010-zeek-mixed/data/conn.log.labeled", 5_347,
     {"Malicious": 3_373, "Benign": 1_937, "Background": 37}),
    ("stratosphere-zeek-labeled/011-zeek-mixed/data/conn.log.labeled", 9_048,
     {"Malicious": 3_951, "Benign": 4_771, "Background": 326}),
    ("stratosphere-zeek-labeled/012-zeek-mixed/data/conn.log.labeled", 4_740,
     {"Malicious": 3_028, "Benign": 782, "Background": 930}),
    ("stratosphere-zeek-labeled/009-zeek-malicious/data/dns.log.labeled", 24_181,
     {"Background": 18_998, "Benign": 5_177, "Malicious": 6}),
    ("stratosphere-zeek-labeled/010-zeek-mixed/data/dns.log.labeled", 8, None),
    ("stratosphere-zeek-labeled/011-zeek-mixed/data/dns.log.labeled", 4, None),
    ("stratosphere-zeek-labeled/012-zeek-mixed/data/dns.log.labeled", 12, None),
    ("slips-samples/test18-ctu-sme-11/conn.log.labeled", 766, {"Malicious": 719, "Benign": 44, "Unknown": 3}),
    ("slips-samples/test18-ctu-sme-11/dns.log.labeled", 22, None),
    ("slips-samples/test9-mixed-zeek/conn.log", 576, None),
    ("slips-samples/test9-mixed-zeek/dns.log", 239, None),
]  # fmt: skip

HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#open\t2024-01-01-00-00-00\n"
    "#fields\tts\tid.orig_h\tid.orig_p\tproto\tduration\tlocal_orig\ttunnel_parents\tlabel\n"
    "#types\ttime\taddr\tport\tenum\tinterval\tbool\tset[string]\tstring\n"
)


def _write(tmp_path: Path, text: str, name: str = "conn.log") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("rel", "rows", "labels"), REAL_LOGS, ids=[r[0].split("/", 1)[1] for r in REAL_LOGS])
def test_real_logs_have_documented_rows_and_labels(
    shared_data: Path, rel: str, rows: int, labels: dict[str, int] | None
) -> None:
    table = read_zeek(shared_data / rel)
    assert table.num_rows == rows
    assert table.schema.field("ts").type == pa.float64()
    assert table.schema.field("id.orig_p").type == pa.int64()
    assert table.schema.field("id.orig_h").type == pa.string()
    assert table.column("id.orig_h").null_count == 0
    if labels is not None:
        counts = {v["values"]: v["counts"] for v in table.column("label").value_counts().to_pylist()}
        assert counts == labels


def test_tsv_types_follow_the_types_header(shared_data: Path) -> None:
    table = read_zeek(shared_data / "stratosphere-zeek-labeled/009-zeek-malicious/data/dns.log.labeled")
    schema = table.schema
    assert schema.field("AA").type == pa.bool_()
    assert schema.field("answers").type == pa.list_(pa.string())
    assert schema.field("TTLs").type == pa.list_(pa.float64())
    assert schema.field("qtype").type == pa.int64()
    assert schema.field("ts").metadata == {b"zeek_type": b"time"}
    assert schema.metadata == {b"zeek_path": b"dns"}
    first = table.slice(0, 1).to_pylist()[0]
    assert first["query"] == "www.msftncsi.com"
    assert first["answers"][:2] == ["www.msftncsi.com.edgesuite.net", "a1961.g2.akamai.net"]
    assert first["TTLs"][0] == 3178.0
    assert first["RD"] is True
    assert first["AA"] is False


def test_json_log_is_detected_and_typed(shared_data: Path) -> None:
    log = ZeekLog(shared_data / "slips-samples/test9-mixed-zeek/conn.log")
    assert log.is_json
    assert log.header is None
    table = log.read_all()
    assert table.schema.field("duration").type == pa.float64()
    assert table.schema.field("resp_bytes").type == pa.int64()
    assert table.column("uid")[0].as_py() == "C6ce9q3xECAsonga21"


def test_unset_empty_and_escapes(tmp_path: Path) -> None:
    rows = (
        "1.5\t10.0.0.1\t53\tudp\t0.25\tT\t(empty)\tBenign\n"
        "2.5\t10.0.0.2\t-\ttcp\t-\tF\ta,b\\x2cc\t(empty)\n"
        "3.5\t10.0.0.3\t80\ttcp\t1\t-\t-\tx\\x09y\n"
        "#close\t2024-01-01-00-01-00\n"
    )
    table = read_zeek(_write(tmp_path, HEADER + rows))
    assert table.column("id.orig_p").to_pylist() == [53, None, 80]
    assert table.column("duration").to_pylist() == [0.25, None, 1.0]
    assert table.column("local_orig").to_pylist() == [True, False, None]
    assert table.column("tunnel_parents").to_pylist() == [[], ["a", "b,c"], None]
    assert table.column("label").to_pylist() == ["Benign", "", "x\ty"]


def test_batches_share_one_schema(tmp_path: Path) -> None:
    rows = "".join(f"{i}.0\t10.0.0.{i}\t{i}\ttcp\t0.1\tT\t(empty)\tBenign\n" for i in range(10))
    path = _write(tmp_path, HEADER + rows)
    batches = list(iter_zeek_batches(path, batch_rows=3))
    assert [b.num_rows for b in batches] == [3, 3, 3, 1]
    assert all(b.schema == batches[0].schema for b in batches)
    assert pa.Table.from_batches(batches).column("id.orig_p").to_pylist() == list(range(10))


def test_gzip_log(tmp_path: Path) -> None:
    path = tmp_path / "conn.log.gz"
    path.write_bytes(gzip.compress((HEADER + "1.0\t10.0.0.1\t1\ttcp\t0.1\tT\t(empty)\tB\n").encode()))
    assert read_zeek(path).num_rows == 1


def test_missing_fields_header_names_file_and_line(tmp_path: Path) -> None:
    text = "#separator \\x09\n#path\tconn\n1.0\t10.0.0.1\t53\n"
    path = _write(tmp_path, text)
    with pytest.raises(DataFormatError, match="missing #fields header") as info:
        read_zeek(path)
    assert info.value.line == 3
    assert str(path) in str(info.value)
    assert "line 3" in str(info.value)


def test_header_only_without_fields_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "#separator \\x09\n#path\tconn\n")
    with pytest.raises(DataFormatError, match="no '#fields' line") as info:
        read_zeek(path)
    assert info.value.path == str(path)


def test_wrong_field_count_names_the_line(tmp_path: Path) -> None:
    rows = "1.0\t10.0.0.1\t53\tudp\t0.1\tT\t(empty)\tB\n2.0\t10.0.0.2\t53\tudp\t0.1\tT\n"
    path = _write(tmp_path, HEADER + rows)
    with pytest.raises(DataFormatError, match="expected 8 tab-separated fields .*found 6") as info:
        read_zeek(path)
    assert info.value.line == 10  # 8 header lines, then the good record, then this one
    assert f"{path}, line 10" in str(info.value)


def test_bad_value_names_column_and_line(tmp_path: Path) -> None:
    rows = "1.0\t10.0.0.1\t53\tudp\t0.1\tT\t(empty)\tB\n2.0\t10.0.0.2\tfifty\tudp\t0.1\tT\t(empty)\tB\n"
    with pytest.raises(DataFormatError, match="'id.orig_p' is a Zeek port, but the value is 'fifty'") as info:
        read_zeek(_write(tmp_path, HEADER + rows))
    assert info.value.line == 10


def test_bad_bool_names_the_line(tmp_path: Path) -> None:
    rows = "1.0\t10.0.0.1\t53\tudp\t0.1\tyes\t(empty)\tB\n"
    with pytest.raises(DataFormatError, match="local_orig") as info:
        read_zeek(_write(tmp_path, HEADER + rows))
    assert info.value.line == 9


def test_types_and_fields_disagree(tmp_path: Path) -> None:
    text = "#separator \\x09\n#fields\ta\tb\n#types\tcount\n1\t2\n"
    with pytest.raises(DataFormatError, match="#types lists 1 types but #fields lists 2") as info:
        read_zeek(_write(tmp_path, text))
    assert info.value.line == 2


def test_changed_header_mid_file(tmp_path: Path) -> None:
    text = "#fields\ta\n#types\tcount\n1\n#fields\tb\n2\n"
    with pytest.raises(DataFormatError, match="header changes") as info:
        read_zeek(_write(tmp_path, text))
    assert info.value.line == 4


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="empty file"):
        read_zeek(_write(tmp_path, "\n\n"))


def test_bad_json_line_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"ts": 1.0, "uid": "a"}\n{"ts": 2.0, "uid": \n', name="conn.json.log")
    with pytest.raises(DataFormatError, match="not valid JSON") as info:
        read_zeek(path)
    assert info.value.line == 2


def test_arrow_type_mapping() -> None:
    assert arrow_type("interval") == pa.float64()
    assert arrow_type("count") == pa.int64()
    assert arrow_type("subnet") == pa.string()
    assert arrow_type("vector[count]") == pa.list_(pa.int64())


def test_error_after_many_good_blocks_names_the_line(tmp_path: Path) -> None:
    # More than one Arrow block of good records before the bad one: the fast path has
    # yielded some when the slow path takes over to name the line.
    good = "1.0\t10.0.0.1\t53\tudp\t0.1\tT\t(empty)\tBenign\n" * 120_000
    path = _write(tmp_path, HEADER + good + "2.0\t10.0.0.2\t53\n")
    seen: list[int] = []

    def consume() -> None:
        for batch in iter_zeek_batches(path):
            seen.append(batch.num_rows)

    with pytest.raises(DataFormatError, match="found 3") as info:
        consume()
    assert 0 < sum(seen) <= 120_000  # no row twice; rows of the failing batch are not yielded
    assert info.value.line == 8 + 120_000 + 1


def test_large_log_over_several_blocks(tmp_path: Path) -> None:
    good = "".join(f"{i}.5\t10.0.0.1\t{i % 65536}\tudp\t0.1\tF\ta,b\tBenign\n" for i in range(120_000))
    table = read_zeek(_write(tmp_path, HEADER + good))
    assert table.num_rows == 120_000
    assert table.column("ts")[119_999].as_py() == 119_999.5
    assert table.column("tunnel_parents")[5].as_py() == ["a", "b"]


def test_json_whole_seconds_become_floats_iso_times_stay(tmp_path: Path) -> None:
    whole = read_zeek(_write(tmp_path, '{"ts": 1, "duration": 2, "uid": "C1"}\n', name="a.log"))
    assert whole.schema.field("ts").type == pa.float64()
    assert whole.schema.field("duration").type == pa.float64()
    iso = read_zeek(_write(tmp_path, '{"ts": "2024-01-01T00:00:00Z", "uid": "C1"}\n', name="b.log"))
    assert iso.num_rows == 1
    assert not pa.types.is_floating(iso.schema.field("ts").type)
