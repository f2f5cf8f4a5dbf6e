"""Per-host ranking: the infected host first with its reasons; analyst feedback moves it down."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.apps.threat import ThreatDetector
from mlscale.apps.threat.beacon import beacon_table
from mlscale.apps.threat.evaluate import seeded_mixture
from mlscale.apps.threat.feedback import FeedbackLog, Verdict, pattern_weights
from mlscale.apps.threat.hosts import HOST_COLUMNS, analyse_log, host_precision_at, rank_hosts
from mlscale.apps.threat.rank import rank_records, write_table

INFECTED = "192.168.1.115"


def _ranking(flows: pa.Table, verdicts: list[Verdict]) -> pa.Table:
    """What the next training and scoring give, feedback included."""
    weights = pattern_weights(verdicts, 1000)
    det = ThreatDetector(topics=8, passes=3, seed=0).fit(flows, reweight=weights)
    beacons = beacon_table(flows, weights=weights)
    ranked = rank_records(det, flows.to_batches(256), beacons=beacons, beacon_weight=4.0)
    return rank_hosts(ranked, beacons=beacons, verdicts=verdicts)


def test_infected_host_first_with_reasons(capture001: pa.Table, tmp_path: Path) -> None:
    hosts = _ranking(seeded_mixture(capture001, 0.03, seed=0), [])
    assert tuple(hosts.column_names) == HOST_COLUMNS
    top = hosts.slice(0, 1).to_pylist()[0]
    assert top["host"] == INFECTED
    assert top["beacon"] > 0.3
    assert top["flow"] > 0.9
    assert "beacons every" in top["reasons"]
    assert "41.108.179.197:1177/tcp" in top["reasons"]
    assert hosts.column("rank").to_pylist() == list(range(1, hosts.num_rows + 1))
    assert host_precision_at(hosts, {INFECTED}, 10) == 1.0
    # Score files: the host list writes like the flow list.
    write_table(hosts, tmp_path / "hosts.csv")
    assert (tmp_path / "hosts.csv").read_text().splitlines()[0].startswith('"rank","host","score"')


def test_feedback_on_a_host_lowers_it_in_the_next_training(capture001: pa.Table, tmp_path: Path) -> None:
    flows = seeded_mixture(capture001, 0.03, seed=0)
    log = FeedbackLog(tmp_path / "feedback.jsonl")
    log.record([Verdict(3, "pattern", {"src_ip": INFECTED})])
    hosts = _ranking(flows, log.read())
    rank = dict(zip(hosts.column("host").to_pylist(), hosts.column("rank").to_pylist(), strict=True))
    assert rank[INFECTED] > 5
    row = hosts.filter(pc.equal(hosts.column("host"), INFECTED)).to_pylist()[0]
    assert row["beacon"] == 0.0  # its series left the beacon evidence
    assert "rated low risk by an analyst" in row["reasons"]


def test_feedback_on_a_pattern_keeps_the_host_but_drops_that_series(capture001: pa.Table) -> None:
    flows = seeded_mixture(capture001, 0.03, seed=0)
    verdicts = [Verdict(3, "pattern", {"dst_ip": "41.108.179.197", "dst_port": 1177})]
    hosts = _ranking(flows, verdicts)
    row = hosts.filter(pc.equal(hosts.column("host"), INFECTED)).to_pylist()[0]
    assert "41.108.179.197" not in row["reasons"]
    assert "rated low risk" not in row["reasons"]  # the verdict was on a pattern, not on the host


def test_dns_evidence_joins_the_host_list() -> None:
    flows = pa.table(
        {
            "src_ip": ["10.0.0.1", "10.0.0.2"],
            "rank": [1, 2],
            "dst_ip": ["a", "b"],
            "dst_port": [1, 2],
            "proto": ["tcp"] * 2,
        }
    )
    dns = pa.table(
        {
            "client_ip": ["10.0.0.3"] * 3 + ["10.0.0.1"] * 17,
            "query": ["xkq3vz.info"] * 3 + ["google.com"] * 17,
            "dga": np.r_[np.full(3, 9.0), np.zeros(17)],
        }
    )
    hosts = rank_hosts(flows, dns=dns)
    by_host = {r["host"]: r for r in hosts.to_pylist()}
    assert by_host["10.0.0.3"]["dns"] == 1.0
    assert by_host["10.0.0.3"]["queries"] == 3
    assert "generated-looking names such as xkq3vz.info" in by_host["10.0.0.3"]["reasons"]
    assert hosts.column("host")[0].as_py() == "10.0.0.1"  # first flow + its DNS
    assert rank_hosts().num_rows == 0


def test_host_precision_caps_at_the_number_of_malicious_hosts() -> None:
    ranked = pa.table({"host": [f"h{i}" for i in range(20)]})
    assert host_precision_at(ranked, {"h0", "h15"}, 10) == 0.5
    assert host_precision_at(ranked, {f"h{i}" for i in range(12)}, 10) == 1.0
    assert np.isnan(host_precision_at(ranked, set(), 10))


def test_analyse_log_streams_two_passes_with_a_bounded_top(capture001: pa.Table) -> None:
    flows = seeded_mixture(capture001, 0.03, seed=0)
    det = ThreatDetector(topics=8, passes=3, seed=0).fit(flows)
    report = analyse_log(det, lambda: iter(flows.to_batches(100)), top=40, beacon_weight=4.0)
    assert report.flows.num_rows == 40
    assert report.beacons.column("dst_ip")[0].as_py() == "41.108.179.197"
    assert report.hosts.column("host")[0].as_py() == INFECTED
    # Ranks are out of every flow of the log, not out of the top.
    assert "of 771" in report.hosts.column("reasons")[0].as_py()
