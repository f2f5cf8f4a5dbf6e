"""Analyst verdicts: validated, durable, and re-injected so a low-risk pattern leaves the top of the list."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlscale.apps.threat import FeedbackLog, ThreatDetector, Verdict, rank_records
from mlscale.apps.threat.feedback import events_table, pattern_weights
from mlscale.errors import DataFormatError, ValidationError

PARAMS = {"topics": 8, "passes": 3, "seed": 0}


def test_verdicts_are_validated() -> None:
    with pytest.raises(ValidationError, match="severity"):
        Verdict(4, "pattern", {"dst_port": 80})
    with pytest.raises(ValidationError, match="unknown field"):
        Verdict(3, "pattern", {"dst_host": "x"})
    with pytest.raises(ValidationError, match="at least one"):
        Verdict(3, "pattern", {})
    with pytest.raises(ValidationError, match="an event needs"):
        Verdict(3, "event", {"src_ip": "10.0.0.1"})
    with pytest.raises(ValidationError, match="port"):
        Verdict(3, "pattern", {"dst_port": 70000})


def test_log_is_append_only_and_survives_a_torn_line(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "v.jsonl")
    log.record([Verdict(1, "pattern", {"dst_ip": "10.0.0.1"}, note="c2")])
    with open(log.path, "ab") as fh:  # a crash in the middle of a write
        fh.write(b'{"severity": 3, "kind": "pat')
    assert [v.note for v in log.read()] == ["c2"]
    log.record([Verdict(3, "pattern", {"dst_port": 53, "proto": "udp"})])
    got = log.read()
    assert [(v.severity, dict(v.match)) for v in got] == [
        (1, {"dst_ip": "10.0.0.1"}),
        (3, {"dst_port": 53, "proto": "udp"}),
    ]
    # A damaged line in the middle is an error naming the line, not silently dropped.
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join([lines[0], "garbage", lines[-1]]) + "\n")
    with pytest.raises(DataFormatError) as err:
        log.read()
    assert err.value.line == 2


def test_concurrent_writers_do_not_interleave(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "v.jsonl")

    def write(i: int) -> None:
        for j in range(20):
            log.record([Verdict(3, "pattern", {"dst_port": i * 100 + j}, note="x" * 2000)])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ports = sorted(int(v.match["dst_port"]) for v in log.read())
    assert ports == sorted(i * 100 + j for i in range(4) for j in range(20))
    assert log.path.stat().st_size > 80 * 2000


def test_pattern_weights_and_event_table(capture001: pa.Table) -> None:
    verdicts = [
        Verdict(3, "pattern", {"dst_port": 1177, "proto": "tcp"}),
        Verdict(1, "pattern", {"dst_port": 53}),  # high risk: not re-injected
        Verdict(
            3,
            "event",
            {"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "src_port": 5, "dst_port": 6, "proto": "udp", "src_bytes": 10},
        ),
    ]
    weights = pattern_weights(verdicts, 1000)(capture001)
    assert weights is not None
    hits = np.asarray(capture001.column("dst_port").to_numpy()) == 1177
    assert (weights[hits] == 1001).all()
    assert (weights[~hits] == 1).all()
    events = events_table(verdicts)
    assert events.num_rows == 1
    assert events.column("src_bytes").to_pylist() == [10]


def test_low_risk_pattern_leaves_the_top_of_the_list(capture001: pa.Table) -> None:
    before = rank_records(ThreatDetector(**PARAMS).fit(capture001), capture001.to_batches(), top=20)
    first = before.slice(0, 1).to_pylist()[0]
    pattern = {"dst_ip": first["dst_ip"], "dst_port": first["dst_port"]}
    flagged = sum(
        1 for r in before.to_pylist() if r["dst_ip"] == pattern["dst_ip"] and r["dst_port"] == pattern["dst_port"]
    )
    assert flagged >= 1
    verdicts = [Verdict(3, "pattern", pattern, note="known backup job")]
    det = ThreatDetector(**PARAMS).fit(capture001, reweight=pattern_weights(verdicts, 1000))
    after = rank_records(det, capture001.to_batches(), top=20)
    still = [r for r in after.to_pylist() if r["dst_ip"] == pattern["dst_ip"] and r["dst_port"] == pattern["dst_port"]]
    assert still == []


def test_low_risk_event_is_re_injected_spot_style(capture001: pa.Table) -> None:
    det = ThreatDetector(**PARAMS).fit(capture001)
    ranked = rank_records(det, capture001.to_batches())
    top = ranked.slice(0, 1).to_pylist()[0]
    event = {
        k: top[k]
        for k in (
            "src_ip",
            "src_port",
            "dst_ip",
            "dst_port",
            "proto",
            "src_bytes",
            "dst_bytes",
            "src_pkts",
            "dst_pkts",
            "duration",
            "state",
            "flow_id",
        )
    }
    events = events_table([Verdict(3, "event", event)])
    again = ThreatDetector(**PARAMS).fit(capture001, extra=[(events, 1000.0)])
    reranked = rank_records(again, capture001.to_batches())
    new_rank = reranked.filter(pa.compute.equal(reranked.column("line"), top["line"])).column("rank")[0].as_py()
    assert new_rank > 50
