"""Synthetic flows: schema, daily rhythms, injected attacks, streamed and reproducible."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mlscale.apps.threat import FLOW_SCHEMA, generate_flows, iter_synthetic_flows
from mlscale.errors import ValidationError


def test_schema_labels_and_attack_kinds() -> None:
    t = generate_flows(30_000, hosts=100, attack_rate=0.01, seed=2)
    assert t.schema.equals(FLOW_SCHEMA)
    assert t.num_rows == 30_000
    kinds = pc.value_counts(t.column("detailed_label")).to_pylist()
    counts = {d["values"]: d["counts"] for d in kinds}
    assert set(counts) == {None, "port-scan", "beaconing", "exfiltration"}
    attacks = t.filter(pc.equal(t.column("label"), "Malicious"))
    assert 200 < attacks.num_rows < 400
    scans = t.filter(pc.equal(t.column("detailed_label"), "port-scan"))
    assert set(scans.column("state").to_pylist()) == {"S0"}
    assert pc.max(scans.column("dst_pkts")).as_py() == 0
    exfil = t.filter(pc.equal(t.column("detailed_label"), "exfiltration"))
    assert pc.min(exfil.column("src_bytes")).as_py() >= 100 << 20


def test_daily_rhythm_of_office_hosts() -> None:
    t = generate_flows(50_000, hosts=200, attack_rate=0.0, seed=0)
    hours = (t.column("ts").cast(pa.int64()).to_numpy() // 3_600_000_000) % 24
    by_hour = np.bincount(hours, minlength=24)
    assert by_hour[10:16].mean() > 3 * by_hour[[20, 21, 22, 23, 5, 6]].mean()


def test_streamed_flows_do_not_depend_on_batch_size() -> None:
    a = pa.Table.from_batches(list(iter_synthetic_flows(150_000, hosts=50, seed=7, batch_rows=40_000)))
    b = pa.Table.from_batches(list(iter_synthetic_flows(150_000, hosts=50, seed=7, batch_rows=1 << 20)))
    assert a.equals(b)
    sizes = [x.num_rows for x in iter_synthetic_flows(150_000, hosts=50, seed=7, batch_rows=40_000)]
    assert max(sizes) <= 65_536
    assert sum(sizes) == 150_000


def test_arguments_are_checked() -> None:
    with pytest.raises(ValidationError, match="hosts"):
        generate_flows(10, hosts=1)
    with pytest.raises(ValidationError, match="attack_rate"):
        generate_flows(10, attack_rate=1.5)
