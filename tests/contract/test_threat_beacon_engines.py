"""Beacon evidence on both engines: Spark computes the same numbers as the local streaming pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlscale.apps.threat import read_flows
from mlscale.apps.threat.beacon import BeaconConfig, beacon_table, spark_beacons
from mlscale.engines.spark import SparkEngine

CAPTURE = ("stratosphere-zeek-labeled", "001-zeek-scenario-malicious", "labeled-conn.log")
NUMBERS = ("flows", "interval_s", "interval_jitter_s", "interval_median_s", "interval_mad_s", "interval_share",
           "size_bytes", "size_share", "beacon")  # fmt: skip


@pytest.mark.spark
def test_spark_beacons_equal_local(shared_data: Path, tmp_path: Path, spark_engine: SparkEngine) -> None:
    flows = read_flows(shared_data.joinpath(*CAPTURE))
    # Several windows over the 50-minute capture; Zeek writes long ICMP "connections" at their end,
    # up to three windows late, and the streaming pass must wait for them to agree with Spark.
    config = BeaconConfig(window_s=900, grace_windows=4)
    local = beacon_table(flows.to_batches(max_chunksize=128), config)
    pq.write_table(flows, tmp_path / "flows.parquet")
    df = spark_engine.session.read.parquet(str(tmp_path / "flows.parquet"))
    spark = spark_beacons(df, config)
    key = ["src_ip", "dst_ip", "dst_port", "proto"]

    def ordered(t: pa.Table) -> pa.Table:
        return t.sort_by([(k, "ascending") for k in key])

    local, spark = ordered(local), ordered(spark)
    assert spark.num_rows == local.num_rows > 10
    for col in [*key, "first", "last", "reason"]:
        assert spark.column(col).to_pylist() == local.column(col).to_pylist(), col
    for col in NUMBERS:
        np.testing.assert_allclose(
            spark.column(col).to_numpy(zero_copy_only=False),
            local.column(col).to_numpy(zero_copy_only=False),
            rtol=1e-9,
            err_msg=col,
        )
