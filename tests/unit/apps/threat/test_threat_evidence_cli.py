"""The threat evidence through the `mlscale` command: beacons and hosts in `threat score`, `threat hosts`,
host feedback into the next training and ranking, DNS scored with its DGA evidence, `evaluate --suite evidence`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mlscale.cli import main

FAST = ["--topics", "8", "--passes", "3"]
INFECTED = "192.168.1.115"
CNC = "41.108.179.197:1177/tcp"


@pytest.fixture(scope="module")
def log001(shared_data: Path) -> Path:
    return shared_data / "stratosphere-zeek-labeled" / "001-zeek-scenario-malicious" / "labeled-conn.log"


@pytest.fixture(scope="module")
def dns009(shared_data: Path) -> Path:
    return shared_data / "stratosphere-zeek-labeled" / "009-zeek-malicious" / "data" / "dns.log.labeled"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, log001: Path) -> Path:
    root = tmp_path_factory.mktemp("registry")
    assert main(["train", "threat", "--data", str(log001), "--name", "c001", "--registry", str(root), *FAST]) == 0
    return root


def _score(registry: Path, data: Path, out: Path, *extra: str, model: str = "c001") -> int:
    argv = ["threat", "score", "--model", model, "--data", str(data), "--out", str(out), "--registry", str(registry)]
    return main([*argv, *extra])


def _rank_of(hosts: pa.Table, host: str) -> int:
    row = hosts.filter(pc.equal(hosts.column("host"), host)).to_pylist()
    assert row, f"{host} not in the host list"
    return int(row[0]["rank"])


def test_score_folds_in_beacons_and_ranks_hosts(
    registry: Path, log001: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, hosts_file = tmp_path / "scores.parquet", tmp_path / "hosts.csv"
    assert _score(registry, log001, out, "--hosts", str(hosts_file)) == 0
    text = capsys.readouterr().out
    assert "scored 992 flows" in text
    assert "beacon evidence (weight 4)" in text
    # The CLI prints the first hosts with their reasons: the infected host first, its C&C beacon named.
    first = next(line for line in text.splitlines() if line.strip().startswith("1."))
    assert INFECTED in first
    assert "beacons every" in first
    assert CNC in first
    scored = pq.read_table(out)
    assert {"beacon", "beacon_reason"} <= set(scored.column_names)
    cnc = scored.filter(pc.equal(scored.column("dst_port"), 1177))
    assert min(cnc.column("beacon").to_pylist()) > 0.3
    assert CNC in cnc.column("beacon_reason")[0].as_py()
    hosts = pacsv.read_csv(hosts_file)
    assert hosts.column_names == ["rank", "host", "score", "flow", "beacon", "dns", "flows", "queries", "reasons"]
    assert hosts.column("host")[0].as_py() == INFECTED
    assert hosts.column("flows")[0].as_py() == 322  # every flow of the host was ranked


def test_no_beacons_and_weight_zero_are_the_topic_model(registry: Path, log001: Path, tmp_path: Path) -> None:
    plain, zero, default = tmp_path / "plain.parquet", tmp_path / "zero.parquet", tmp_path / "default.parquet"
    assert _score(registry, log001, plain, "--no-beacons") == 0
    assert _score(registry, log001, zero, "--beacon-weight", "0") == 0
    assert _score(registry, log001, default) == 0
    p, z, d = (pq.read_table(f) for f in (plain, zero, default))
    assert "beacon" not in p.column_names
    assert "beacon_reason" not in p.column_names
    assert z.column("line").to_pylist() == p.column("line").to_pylist()
    assert z.column("score").to_pylist() == pytest.approx(p.column("score").to_pylist())
    # With the default weight the C&C flows climb: the evidence changed the ranking.
    cnc_rank = [pc.mean(t.filter(pc.equal(t.column("dst_port"), 1177)).column("rank")).as_py() for t in (p, d)]
    assert cnc_rank[1] < cnc_rank[0]


def test_beacon_flags_reach_the_evidence(
    registry: Path, log001: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.parquet"
    assert _score(registry, log001, out, "--beacon-min-flows", "100000") == 0
    assert max(pq.read_table(out).column("beacon").to_pylist()) == 0.0
    assert _score(registry, log001, out, "--beacon-window", "0") != 0
    err = capsys.readouterr().err
    assert "beacon_window: expected a number >= 1" in err
    assert "Traceback" not in err


def test_host_feedback_lowers_the_host_in_the_next_training_and_ranking(
    registry: Path, log001: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = ["--registry", str(registry)]
    assert main(["train", "threat", "--data", str(log001), "--name", "hfb", *reg, *FAST]) == 0
    before = tmp_path / "before.csv"
    assert _score(registry, log001, tmp_path / "s.csv", "--hosts", str(before), model="hfb") == 0
    assert _rank_of(pacsv.read_csv(before), INFECTED) == 1
    assert main(["threat", "feedback", "--model", "hfb", "--host", INFECTED, "--severity", "3", *reg]) == 0
    assert main(["train", "threat", "--data", str(log001), "--name", "hfb", *reg, *FAST]) == 0
    capsys.readouterr()
    after = tmp_path / "after.csv"
    assert _score(registry, log001, tmp_path / "s2.csv", "--hosts", str(after), model="hfb") == 0
    assert "feedback: 1 verdict(s) applied" in capsys.readouterr().out
    hosts = pacsv.read_csv(after)
    assert _rank_of(hosts, INFECTED) > 5
    row = hosts.filter(pc.equal(hosts.column("host"), INFECTED)).to_pylist()[0]
    assert row["beacon"] == 0.0  # its series left the beacon evidence
    assert "rated low risk by an analyst" in row["reasons"]
    # --no-feedback scores as if nothing was recorded (the model itself was retrained with the verdict).
    ignored = tmp_path / "ignored.csv"
    assert _score(registry, log001, tmp_path / "s3.csv", "--hosts", str(ignored), "--no-feedback", model="hfb") == 0
    assert "rated low risk" not in " ".join(pacsv.read_csv(ignored).column("reasons").to_pylist())


def test_feedback_on_rows_of_a_host_list(
    registry: Path, log001: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = ["--registry", str(registry)]
    hosts = tmp_path / "hosts.parquet"
    assert _score(registry, log001, tmp_path / "s.csv", "--hosts", str(hosts)) == 0
    log = tmp_path / "verdicts.jsonl"
    argv = ["threat", "feedback", "--model", "c001", "--severity", "2", "--log", str(log), *reg]
    assert main([*argv, "--scores", str(hosts), "--rank", "1-2"]) == 0
    recorded = [json.loads(line) for line in log.read_text().splitlines()]
    names = pq.read_table(hosts).column("host").to_pylist()[:2]
    assert [(r["kind"], r["match"]) for r in recorded] == [("pattern", {"src_ip": h}) for h in names]
    assert main([*argv, "--host", INFECTED, "--src-ip", "10.0.0.1"]) != 0
    assert "--host and --src-ip" in capsys.readouterr().err


def test_hosts_command_rebuilds_the_ranking_from_score_files(
    registry: Path, log001: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full, direct = tmp_path / "all.parquet", tmp_path / "direct.parquet"
    assert _score(registry, log001, full, "--hosts", str(direct)) == 0
    rebuilt = tmp_path / "rebuilt.parquet"
    assert main(["threat", "hosts", "--scores", str(full), "--out", str(rebuilt)]) == 0
    assert INFECTED in capsys.readouterr().out
    a, b = pq.read_table(direct), pq.read_table(rebuilt)
    assert b.column("host").to_pylist() == a.column("host").to_pylist()
    assert b.column("score").to_pylist() == pytest.approx(a.column("score").to_pylist())
    # A top-only list, with the number of flows ranked: ranks out of all the flows. Only the beacons of
    # the listed flows are in it (the C&C flows are not in this top 50), so its host falls behind.
    top = tmp_path / "top.csv"
    assert _score(registry, log001, top, "--top", "50") == 0
    out = tmp_path / "top-hosts.json"
    assert main(["threat", "hosts", "--scores", str(top), "--total-flows", "992", "--out", str(out)]) == 0
    rows = {r["host"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert "ranks 2 of 992" in rows[INFECTED]["reasons"]
    assert CNC not in rows[INFECTED]["reasons"]
    assert rows[INFECTED]["rank"] <= 3


def test_dns_model_scores_with_dga_evidence_and_joins_the_hosts(
    registry: Path, log001: Path, dns009: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = ["--registry", str(registry)]
    assert main(["train", "threat", "--data", str(dns009), "--name", "d009", *reg, *FAST]) == 0
    dns, dns_hosts = tmp_path / "dns.parquet", tmp_path / "dns-hosts.csv"
    assert (
        _score(registry, dns009, dns, "--hosts", str(dns_hosts), "--summary", str(tmp_path / "ips.csv"), model="d009")
        == 0
    )
    assert "with threat/d009@1 and DGA evidence" in capsys.readouterr().out
    scored = pq.read_table(dns)
    assert {"dga", "dga_char_nll", "lda_score", "word", "score", "rank"} <= set(scored.column_names)
    assert scored.num_rows == 24_181
    scores = scored.column("score").to_pylist()
    assert scores == sorted(scores)
    hosts = pacsv.read_csv(dns_hosts)
    assert max(hosts.column("dns").to_pylist()) > 0.9
    assert max(hosts.column("flow").to_pylist()) == 0.0
    # Flows and DNS together: a host of both logs collects both kinds of evidence.
    flows = tmp_path / "flows.parquet"
    assert _score(registry, log001, flows) == 0
    both = tmp_path / "both.csv"
    assert main(["threat", "hosts", "--scores", str(flows), "--dns", str(dns), "--out", str(both)]) == 0
    table = pacsv.read_csv(both)
    has_both = pc.and_(pc.greater(table.column("flow"), 0), pc.greater(table.column("dns"), 0))
    assert pc.any(has_both).as_py()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["threat", "hosts", "--out", "h.csv"], "expected --scores"),
        (["threat", "hosts", "--scores", "nope.csv", "--out", "h.csv"], "nope.csv: no such file"),
    ],
)
def test_hosts_mistakes_are_one_clear_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_hosts_refuses_a_dns_list_as_flows(
    registry: Path, dns009: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "threat", "--data", str(dns009), "--name", "dns2", "--registry", str(registry), *FAST]) == 0
    dns = tmp_path / "dns.csv"
    assert _score(registry, dns009, dns, "--top", "20", model="dns2") == 0
    assert main(["threat", "hosts", "--scores", str(dns), "--out", str(tmp_path / "h.csv")]) != 0
    err = capsys.readouterr().err
    assert "not a flow list" in err
    assert "--dns" in err


def test_evaluate_evidence_suite_quick(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "evidence.json"
    strato = shared_data / "stratosphere-zeek-labeled"
    status = main(
        [
            "evaluate",
            "threat",
            "--suite",
            "evidence",
            "--quick",
            "--data",
            str(strato / "001-zeek-scenario-malicious"),
            "--dns-data",
            str(strato / "009-zeek-malicious"),
            "--methods",
            "iforest,mlscale+beacon",
            "--dns-methods",
            "dga",
            "--dga-names",
            str(shared_data / "dga-domains-wang2021" / "domains_features.csv.gz"),
            "--json",
            str(out),
            *FAST,
        ]
    )
    assert status == 0
    text = capsys.readouterr().out
    assert "| labeled-conn.log | 3% | mlscale+beacon | 771 |" in text
    assert "| 2% | dga | 25,181 |" in text
    report = json.loads(out.read_text())
    assert report["seeds"] == [0]
    assert report["beacon_weight"] == 4.0
    assert [(r["method"], len(r["roc_auc"])) for r in report["flows"]] == [("iforest", 1), ("mlscale+beacon", 1)]
    (dns_rows,) = report["dns"].values()
    assert dns_rows[0]["roc_auc"][0] > 0.9  # generated names found well above chance
