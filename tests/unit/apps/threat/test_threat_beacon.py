"""Beaconing evidence: jittered synthetic beacons found, busy irregular hosts not, real C&C on top."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mlscale.apps.threat import ThreatDetector
from mlscale.apps.threat.beacon import BeaconConfig, BeaconTracker, beacon_evidence, beacon_table
from mlscale.apps.threat.evaluate import labels_of, ranking_metrics, seeded_mixture
from mlscale.apps.threat.evidence import flow_scores, with_beacons
from mlscale.apps.threat.feedback import Verdict, pattern_weights
from mlscale.apps.threat.rank import rank_records
from mlscale.errors import ValidationError

T0 = 1_700_000_000_000_000  # microseconds


def _flows(ts_us: np.ndarray, src: str, dst: str, port: int, sizes: np.ndarray, proto: str = "tcp") -> pa.Table:
    n = ts_us.size
    return pa.table(
        {
            "ts": pa.array(np.asarray(ts_us, np.int64)).cast(pa.timestamp("us")),
            "src_ip": [src] * n,
            "dst_ip": [dst] * n,
            "dst_port": pa.array([port] * n, pa.int32()),
            "proto": [proto] * n,
            "src_bytes": pa.array(np.asarray(sizes, np.int64)),
            "dst_bytes": pa.array(np.zeros(n, np.int64)),
        }
    )


def _network(seed: int = 0) -> pa.Table:
    """A 60 s +- 0.5 s beacon with 2% size jitter for 4 h, beside a busy irregular host."""
    rng = np.random.default_rng(seed)
    beats = T0 + (np.arange(240) * 60e6 + rng.normal(0, 0.5e6, 240)).astype(np.int64)
    beacon = _flows(beats, "10.0.0.7", "203.0.113.66", 8443, rng.normal(420, 8, 240).astype(np.int64))
    # Poisson arrivals (mean 7 s) and log-normal sizes: a browser, not a clock.
    busy_ts = T0 + np.cumsum(rng.exponential(7e6, 2000)).astype(np.int64)
    busy = _flows(busy_ts, "10.0.0.8", "198.51.100.10", 443, rng.lognormal(8, 1.5, 2000).astype(np.int64))
    table = pa.concat_tables([beacon, busy])
    return table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending")]))


def _row(table: pa.Table, dst: str) -> dict[str, object]:
    rows = table.filter(pc.equal(table.column("dst_ip"), dst)).to_pylist()
    assert len(rows) == 1
    return rows[0]


def test_jittered_beacon_found_and_explained() -> None:
    b = beacon_table(_network())
    row = _row(b, "203.0.113.66")
    assert row["beacon"] > 0.9
    assert row["interval_s"] == pytest.approx(60.0, abs=0.2)
    assert row["interval_jitter_s"] == pytest.approx(0.5 * np.sqrt(2), rel=0.25)  # difference of two N(0, 0.5)
    assert row["reason"].startswith("every 60.0 s +- 0.")
    assert "to 203.0.113.66:8443/tcp for 4.0 h (240 flows" in row["reason"]
    assert b.column("dst_ip")[0].as_py() == "203.0.113.66"  # strongest first


def test_busy_irregular_host_is_no_beacon() -> None:
    row = _row(beacon_table(_network()), "198.51.100.10")
    assert row["flows"] == 2000
    assert row["beacon"] < 0.3
    assert row["interval_share"] < 0.2


def test_missed_beats_and_retries_still_a_beacon() -> None:
    rng = np.random.default_rng(1)
    beats = T0 + (np.arange(300) * 30e6 + rng.normal(0, 0.2e6, 300)).astype(np.int64)
    kept = beats[rng.random(300) > 0.2]  # a fifth of the beats lost
    row = _row(beacon_table(_flows(kept, "10.0.0.7", "203.0.113.5", 4444, np.full(kept.size, 96))), "203.0.113.5")
    assert row["interval_share"] > 0.7
    assert row["beacon"] > 0.8


def test_streaming_equals_one_batch_and_tolerates_late_flows() -> None:
    table = _network()
    whole = beacon_table(table)
    # Late flows within one window (Zeek writes a connection at its end) are still in their window.
    rng = np.random.default_rng(2)
    shuffled = table.take(pa.array(np.argsort(np.arange(table.num_rows) + rng.integers(0, 50, table.num_rows))))
    streamed = beacon_table(shuffled.to_batches(max_chunksize=97))
    assert streamed.column("dst_ip").to_pylist() == whole.column("dst_ip").to_pylist()
    for col in ("flows", "interval_share", "size_share"):
        assert streamed.column(col).to_pylist() == whole.column(col).to_pylist()
    np.testing.assert_allclose(streamed.column("beacon").to_numpy(), whole.column("beacon").to_numpy(), rtol=1e-9)


def test_memory_is_per_series_not_per_flow() -> None:
    tracker = BeaconTracker(BeaconConfig(window_s=600))
    for batch in _network().to_batches(max_chunksize=200):
        tracker.update(batch)
        # Only the open windows' flows are held: at most two windows' worth (~100 busy + 20 beacon flows).
        assert sum(o[0].size for o in tracker._open) < 600
    assert tracker.table().num_rows == 2


def test_multicast_and_bursts_get_no_beacon_evidence() -> None:
    beats = T0 + np.arange(50, dtype=np.int64) * 30_000_000
    multicast = _flows(beats, "fe80::1", "ff02::1:ff00:1", 135, np.full(50, 72), proto="icmp")
    burst_ts = T0 + np.arange(8, dtype=np.int64) * 300  # eight parallel connections in 2 ms
    burst = _flows(burst_ts, "10.0.0.9", "192.0.2.80", 80, np.full(8, 500))
    b = beacon_table(pa.concat_tables([multicast, burst]))
    assert _row(b, "ff02::1:ff00:1")["beacon"] == 0.0
    row = _row(b, "192.0.2.80")
    assert row["interval_share"] == 0.0
    assert "at no steady interval" in row["reason"]


def test_config_is_checked() -> None:
    with pytest.raises(ValidationError, match="beacon_min_flows"):
        BeaconConfig(min_flows=2)
    with pytest.raises(ValidationError, match="beacon_window"):
        BeaconConfig(window_s=0)


def test_low_risk_pattern_removes_a_series() -> None:
    verdicts = [Verdict(3, "pattern", {"dst_ip": "203.0.113.66"})]
    full = _network()
    weights = pattern_weights(verdicts, 1000)
    typed = full.append_column("src_port", pa.array(np.zeros(full.num_rows, np.int32)))
    b = beacon_table(typed, weights=weights)
    assert "203.0.113.66" not in b.column("dst_ip").to_pylist()


def test_real_command_and_control_is_the_strongest_series(capture001: pa.Table) -> None:
    b = beacon_table(capture001)
    top = b.slice(0, 1).to_pylist()[0]
    assert (top["src_ip"], top["dst_ip"], top["dst_port"]) == ("192.168.1.115", "41.108.179.197", 1177)
    assert top["reason"].startswith("every 9.0 s")
    score, row = beacon_evidence(capture001, b)
    cc = np.asarray(pc.equal(capture001.column("dst_ip"), "41.108.179.197").to_numpy(zero_copy_only=False))
    assert (row[cc] == 0).all()
    assert (score[cc] == top["beacon"]).all()


def test_beacons_raise_command_and_control_in_the_flow_ranking(capture001: pa.Table) -> None:
    mix = seeded_mixture(capture001, 0.03, seed=0)  # the C&C thinned to 3% of the flows
    det = ThreatDetector(topics=8, passes=3, seed=0).fit(mix)
    b = beacon_table(mix)
    ev = flow_scores(det, mix, b, weight=4.0)
    y = labels_of(mix)
    before, after = ranking_metrics(y, ev.model.score), ranking_metrics(y, ev.score)
    assert after["roc_auc"] > before["roc_auc"] + 0.05
    assert np.array_equal(with_beacons(det, ev.model, ev.beacon, 0.0), ev.model.score)
    ranked = rank_records(det, mix.to_batches(300), beacons=b, beacon_weight=4.0)
    assert {"beacon", "beacon_reason"} <= set(ranked.column_names)
    cc = ranked.filter(pc.equal(ranked.column("dst_ip"), "41.108.179.197"))
    assert cc.num_rows >= 0.8 * int(y.sum())  # most malicious flows are the C&C series
    assert all(
        r.startswith("every ") and "41.108.179.197:1177/tcp" in r for r in cc.column("beacon_reason").to_pylist()
    )
    np.testing.assert_allclose(np.sort(ranked.column("score").to_numpy()), np.sort(ev.score))
    with pytest.raises(ValidationError, match="beacon_weight"):
        with_beacons(det, ev.model, ev.beacon, -1.0)


def test_huge_batches_are_cut_so_series_codes_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlscale.apps.threat.beacon as beacon

    table = _network()
    whole = beacon_table(table)
    index = beacon.BeaconIndex(whole)
    expected = index.lookup(table)
    monkeypatch.setattr(beacon, "_MAX_ROWS", 100)
    cut = beacon_table(table)
    assert cut.column("reason").to_pylist() == whole.column("reason").to_pylist()
    got = index.lookup(table)
    assert np.array_equal(got[1], expected[1])
