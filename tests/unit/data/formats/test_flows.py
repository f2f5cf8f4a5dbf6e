"""nfdump CSV and Argus binetflow readers on the real Slips samples and on broken files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from mlscale.data.formats.argus import read_binetflow
from mlscale.data.formats.nfdump import read_nfdump_csv
from mlscale.errors import DataFormatError


def test_nfdump_csv_without_summary(shared_data: Path) -> None:
    table = read_nfdump_csv(shared_data / "slips-samples/test1-malicious.nfdump.csv")
    assert table.num_rows == 4_593  # the Summary trailer is gone
    assert table.schema.field("ts").type == pa.timestamp("s")
    assert table.schema.field("ibyt").type == pa.int64()
    assert table.schema.field("cl").type == pa.float64()
    assert sum(table.column("ibyt").to_pylist()) + sum(table.column("obyt").to_pylist()) == 241_025
    assert table.column("sa")[0].as_py() == "147.32.80.119"


def test_nfdump_header_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataFormatError, match="expected nfdump's CSV header") as info:
        read_nfdump_csv(path)
    assert info.value.line == 1


def test_binetflow(shared_data: Path) -> None:
    table = read_binetflow(shared_data / "slips-samples/test2-malicious.binetflow")
    assert table.num_rows == 6_751
    assert table.schema.field("StartTime").type == pa.timestamp("us")
    assert table.schema.field("Sport").type == pa.int64()
    assert set(table.column("Dir").to_pylist()) == {"->", "<->", "<?>"}
    assert table.column("Label").null_count == 6_751
    protos = {v["values"]: v["counts"] for v in table.column("Proto").value_counts().to_pylist()}
    assert protos == {"tcp": 3_925, "udp": 2_754, "icmp": 65, "igmp": 7}
    # ICMP type/code is written as a hex "port": 0x0303 is type 3, code 3.
    assert 0x0303 in table.column("Sport").to_pylist()


def test_binetflow_header_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "x.binetflow"
    path.write_text("ts,te\n")
    with pytest.raises(DataFormatError, match="Argus binetflow header"):
        read_binetflow(path)
