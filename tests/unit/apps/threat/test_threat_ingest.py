"""Every ingest format on the real samples, and clear errors (file, line, fix) for malformed logs."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mlscale.apps.threat import DNS_SCHEMA, FLOW_SCHEMA, detect_format, ingest, read_dns, read_flows
from mlscale.apps.threat.ingest import iter_flows, list_sources
from mlscale.errors import DataError, DataFormatError, DependencyError

ZEEK_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\torig_bytes\tresp_bytes\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tcount\tcount\n"
)


def test_nfdump_csv_drops_the_summary_trailer(slips: Path) -> None:
    src = detect_format(slips / "test1-malicious.nfdump.csv")
    table = read_flows(src.path)
    assert src.format == "nfdump-csv"
    assert table.schema.equals(FLOW_SCHEMA)
    assert table.num_rows == 4593  # 4597 lines - header - 3 summary lines
    assert table.column("line").to_pylist()[:2] == [2, 3]
    first = table.slice(0, 1).to_pylist()[0]
    assert (first["src_ip"], first["src_port"], first["dst_ip"], first["dst_port"]) == (
        "147.32.80.119",
        52324,
        "147.32.82.62",
        902,
    )
    assert first["proto"] == "tcp"
    assert first["src_bytes"] == 60
    assert first["src_pkts"] == 1
    assert table.column("label").null_count == table.num_rows


def test_nfcapd_through_the_nfdump_tool_matches_its_csv(slips: Path) -> None:
    if shutil.which("nfdump") is None:
        pytest.skip("the nfdump tool is not installed")
    src = detect_format(slips / "test1-malicious.nfcapd")
    assert (src.format, src.kind) == ("nfcapd", "flows")
    binary = read_flows(src.path)
    text = read_flows(slips / "test1-malicious.nfdump.csv")
    assert binary.num_rows == text.num_rows
    for column in ("src_ip", "dst_ip", "src_port", "dst_port", "proto", "src_bytes", "src_pkts", "ts"):
        assert binary.column(column).equals(text.column(column)), column


def test_nfcapd_without_the_tool_is_a_dependency_error(slips: Path) -> None:
    with pytest.raises(DependencyError, match="nfdump") as err:
        read_flows(slips / "test1-malicious.nfcapd", nfdump="nfdump-not-installed-here")
    assert "apt-get install nfdump" in str(err.value)


def test_zeek_conn_tsv_keeps_uid_and_labels_apart(strato: Path) -> None:
    table = read_flows(strato / "008-zeek-mixed" / "data" / "conn.log.labeled")
    assert table.num_rows == 5663
    assert table.column("line").to_pylist()[0] == 9  # after the 8 header lines
    first = table.slice(0, 1).to_pylist()[0]
    assert first["flow_id"] == "CHLXQF2OBY4onAR0Ug"
    assert first["src_bytes"] == 1016
    assert first["dst_bytes"] == 1226
    assert first["state"] == "SF"
    assert first["service"] == "ssl"
    labels = pc.value_counts(table.column("label")).to_pylist()
    assert {d["values"]: d["counts"] for d in labels} == {"Benign": 1402, "Malicious": 4201, "Background": 60}


def test_zeek_conn_json_lines(slips: Path) -> None:
    src = detect_format(slips / "test9-mixed-zeek" / "conn.log")
    table = read_flows(src.path)
    assert src.format == "zeek-conn"
    assert table.num_rows == 576
    assert table.column("flow_id").null_count == 0
    assert pc.min(table.column("line")).as_py() == 1
    assert "fe80::1cf4:44d2:904a:14f7" in table.column("src_ip").to_pylist()  # IPv6 accepted


def test_argus_binetflow(slips: Path) -> None:
    table = read_flows(slips / "test2-malicious.binetflow")
    assert table.num_rows == 6751
    first = table.slice(0, 1).to_pylist()[0]
    # TotBytes 142, SrcBytes 63; TotPkts 2, SrcPkts 1
    assert (first["src_bytes"], first["dst_bytes"], first["src_pkts"], first["dst_pkts"]) == (63, 79, 1, 1)
    assert first["state"] == "CON"
    assert first["proto"] == "udp"
    assert set(table.column("proto").to_pylist()) == {"tcp", "udp", "icmp", "igmp"}


def test_zeek_dns_tsv_and_json(strato: Path, slips: Path) -> None:
    tsv = read_dns(strato / "009-zeek-malicious" / "data" / "dns.log.labeled")
    assert tsv.schema.equals(DNS_SCHEMA)
    assert tsv.num_rows == 24181
    assert tsv.slice(0, 1).to_pylist()[0]["query"] == "www.msftncsi.com"
    assert pc.sum(pc.equal(tsv.column("label"), "Malicious")).as_py() == 6
    assert tsv.column("frame_len").to_pylist()[:1] == [-1]  # Zeek has no frame length
    js = read_dns(slips / "test9-mixed-zeek" / "dns.log")
    assert js.num_rows == 239
    assert js.slice(0, 1).to_pylist()[0]["rcode"] == 3


def test_tshark_fields_csv(tmp_path: Path) -> None:
    path = tmp_path / "dns.csv"
    path.write_text(
        "frame.time_epoch,frame.len,ip.src,ip.dst,dns.qry.name,dns.qry.type,dns.flags.rcode,dns.flags.response\n"
        "1700000000.5,120,8.8.8.8,10.0.0.5,Example.COM.,1,0,1\n"
        '1700000001.0,80,10.0.0.5,8.8.8.8,"abc.example.com",28,3,0\n'
    )
    src = detect_format(path)
    table = read_dns(path)
    assert (src.format, src.kind) == ("tshark-dns", "dns")
    rows = table.to_pylist()
    assert [r["client_ip"] for r in rows] == ["10.0.0.5", "10.0.0.5"]  # responses go to the client
    assert rows[0]["query"] == "example.com"
    assert rows[0]["frame_len"] == 120
    assert rows[1]["rcode"] == 3
    assert rows[0]["line"] == 2


def test_ingest_folder_to_parquet_and_back(slips: Path, tmp_path: Path) -> None:
    report = ingest(slips / "test18-ctu-sme-11", tmp_path / "out")
    assert report.flows == 766
    assert report.dns == 22
    assert report.labelled == 766 + 22
    part = tmp_path / "out" / "flows" / "part-00000.parquet"
    assert pq.read_schema(part).equals(FLOW_SCHEMA, check_metadata=False)
    again = read_flows(tmp_path / "out" / "flows")
    assert again.equals(read_flows(slips / "test18-ctu-sme-11" / "conn.log.labeled"))
    assert {s.format for s in list_sources(tmp_path / "out")} == {"parquet"}
    assert not list((tmp_path / "out" / "flows").glob(".*"))  # no temporary files left


def test_gzip_logs_are_read(strato: Path, tmp_path: Path) -> None:
    source = strato / "001-zeek-scenario-malicious" / "labeled-conn.log"
    gz = tmp_path / "conn.log.gz"
    gz.write_bytes(gzip.compress(source.read_bytes()))
    assert read_flows(gz).equals(read_flows(source))


def test_streaming_batches(strato: Path) -> None:
    batches = list(iter_flows(strato / "011-zeek-mixed" / "data" / "conn.log.labeled", batch_rows=1000))
    assert len(batches) == 10
    assert max(b.num_rows for b in batches) == 1000
    lines = np.concatenate([b.column("line").to_numpy() for b in batches])
    assert (np.diff(lines) == 1).all()


# -- malformed input -------------------------------------------------------------------------


def test_bad_ip_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    path.write_text(
        ZEEK_HEADER + "1.0\tC1\t10.0.0.1\t5000\t10.0.0.2\t80\ttcp\t1\t2\n"
        "2.0\tC2\t10.0.0.1\t5001\t999.1.2.3\t80\ttcp\t1\t2\n"
    )
    with pytest.raises(DataFormatError) as err:
        read_flows(path)
    assert err.value.line == 9
    assert err.value.path == str(path)
    assert "'999.1.2.3'" in str(err.value)
    assert "destination address" in str(err.value)


def test_missing_zeek_fields_are_named(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    path.write_text(
        "#separator \\x09\n#fields\tts\tid.orig_h\tid.orig_p\tproto\n#types\ttime\taddr\tport\tenum\n"
        "1.0\t10.0.0.1\t5000\ttcp\n"
    )
    with pytest.raises(DataFormatError, match=r"missing column\(s\) id\.resp_h, id\.resp_p") as err:
        read_flows(path)
    assert err.value.line == 2  # the #fields line


def test_wrong_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text("src,dst,port\n10.0.0.1,10.0.0.2,80\n")
    with pytest.raises(DataFormatError, match="cannot tell the format") as err:
        detect_format(path)
    assert err.value.line == 1
    assert "nfdump" in str(err.value)


def test_nfdump_bad_row_and_range_errors(tmp_path: Path) -> None:
    head = "ts,te,td,sa,da,sp,dp,pr,flg,ipkt,ibyt,opkt,obyt\n"
    good = "2018-01-12 15:37:30,2018-01-12 15:37:31,1.0,10.0.0.1,10.0.0.2,52324,443,TCP,.A....,3,180,0,0\n"
    port = tmp_path / "port.csv"
    port.write_text(head + good + good.replace(",443,", ",70000,"))
    with pytest.raises(DataFormatError, match="destination port.*70000") as err:
        read_flows(port)
    assert err.value.line == 3
    text = tmp_path / "text.csv"
    text.write_text(head + good + good.replace(",3,180,", ",3,lots,"))
    with pytest.raises(DataFormatError, match="column .ibyt.: expected int64, found .lots.") as err:
        read_flows(text)
    assert err.value.line == 3
    negative = tmp_path / "neg.csv"
    negative.write_text(head + good.replace(",3,180,", ",-3,180,"))
    with pytest.raises(DataFormatError, match="source packets.*-3"):
        read_flows(negative)


def test_tshark_without_addresses_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "dns.csv"
    path.write_text("frame.time_epoch,dns.qry.name\n1.0,example.com\n")
    with pytest.raises(DataFormatError, match="ip.src"):
        read_dns(path)
    empty = tmp_path / "empty.log"
    empty.write_text("")
    with pytest.raises(DataFormatError, match="empty"):
        detect_format(empty)
    with pytest.raises(DataError, match="no such file"):
        read_flows(tmp_path / "absent.log")


def test_folder_without_logs_and_wrong_kind(tmp_path: Path, strato: Path) -> None:
    (tmp_path / "README.md").write_text("# notes\n")
    with pytest.raises(DataError, match="no flow logs found"):
        list_sources(tmp_path, "flows")
    with pytest.raises(DataError, match="holds dns records"):
        read_flows(strato / "009-zeek-malicious" / "data" / "dns.log.labeled")


def test_json_zeek_with_a_bad_address(tmp_path: Path) -> None:
    rows = [
        {
            "ts": 1.0,
            "uid": "C1",
            "id.orig_h": "10.0.0.1",
            "id.orig_p": 1,
            "id.resp_h": "10.0.0.2",
            "id.resp_p": 2,
            "proto": "tcp",
        },
        {
            "ts": 2.0,
            "uid": "C2",
            "id.orig_h": "not-an-ip",
            "id.orig_p": 1,
            "id.resp_h": "10.0.0.2",
            "id.resp_p": 2,
            "proto": "tcp",
        },
    ]
    path = tmp_path / "conn.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataFormatError, match="source address.*not-an-ip") as err:
        read_flows(path)
    assert err.value.line == 2


def test_flow_schema_round_trip_types(capture001: pa.Table) -> None:
    assert capture001.schema.equals(FLOW_SCHEMA)
    assert capture001.column("src_port").type == pa.int32()
    assert pc.min(capture001.column("src_bytes")).as_py() >= 0


def test_a_failed_ingest_leaves_nothing_that_looks_complete(slips: Path, tmp_path: Path) -> None:
    source = tmp_path / "logs"
    source.mkdir()
    shutil.copy(slips / "test1-malicious.nfdump.csv", source / "a.csv")
    first = ingest(source, tmp_path / "out", part_rows=1000)
    assert first.flows == 4593
    # A second log whose rows go bad deep inside: the ingest stops, and the earlier parts stay as they were.
    good = (source / "a.csv").read_text().splitlines()
    bad = [*good[:3000], good[3000].replace("TCP", "TCP,extra,,", 1).replace(",", ",x", 3), *good[3001:]]
    (source / "b.csv").write_text("\n".join(bad) + "\n")
    before = sorted(p.name for p in (tmp_path / "out" / "flows").iterdir())
    with pytest.raises(DataFormatError):
        ingest(source, tmp_path / "out", part_rows=1000)
    assert sorted(p.name for p in (tmp_path / "out" / "flows").iterdir()) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["flows"]  # no temporary folder left
    assert pq.read_table(tmp_path / "out" / "flows").num_rows == 4593
