"""Threat detection through the `mlscale` command: ingest, train, score, feedback, evaluate, synth."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mlscale.cli import main
from mlscale.registry import open_store

FAST = ["--topics", "8", "--passes", "3"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    root = tmp_path_factory.mktemp("registry")
    log = shared_data / "stratosphere-zeek-labeled" / "001-zeek-scenario-malicious" / "labeled-conn.log"
    assert main(["train", "threat", "--data", str(log), "--name", "c001", "--registry", str(root), *FAST]) == 0
    return root


def test_train_publishes_numbers_only(registry: Path) -> None:
    manifest = open_store(registry).resolve("threat/c001")
    assert manifest.params["topics"] == 8
    assert manifest.params["words"] == "mlscale"
    assert manifest.engine == "local"
    assert manifest.extra["files"] == 1
    assert manifest.extra["ips"] > 10
    assert manifest.metrics["train_seconds"] > 0
    assert all(Path(f).suffix in (".npy", ".parquet") for f in manifest.files)


def test_ingest_then_score_every_flow(
    registry: Path, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = shared_data / "stratosphere-zeek-labeled" / "001-zeek-scenario-malicious" / "labeled-conn.log"
    assert main(["threat", "ingest", str(log), "--out", str(tmp_path / "ing")]) == 0
    assert "992 flows" in capsys.readouterr().out
    out = tmp_path / "scores.csv"
    summary = tmp_path / "ips.parquet"
    status = main(
        [
            "threat",
            "score",
            "--model",
            "threat/c001",
            "--data",
            str(tmp_path / "ing"),
            "--out",
            str(out),
            "--summary",
            str(summary),
            "--registry",
            str(registry),
        ]
    )
    assert status == 0
    table = pacsv.read_csv(out)
    assert table.num_rows == 992
    assert table.column("rank").to_pylist() == list(range(1, 993))
    scores = table.column("score").to_pylist()
    assert scores == sorted(scores)
    assert {"flow_id", "score", "rank", "src_word", "dst_word", "src_prob", "dst_prob"} <= set(table.column_names)
    assert table.column("flow_id").null_count == 0  # Zeek's uid is kept
    ips = pq.read_table(summary)
    assert ips.column_names == ["ip", "flows", "suspicious_flows", "min_score", "mean_score", "worst_word"]
    assert sum(ips.column("flows").to_pylist()) == 2 * 992


def test_score_writes_json_lines_and_top(registry: Path, shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "slips-samples" / "test18-ctu-sme-11" / "conn.log.labeled"
    out = tmp_path / "top.json"
    assert (
        main(
            [
                "threat",
                "score",
                "--model",
                "c001",
                "--data",
                str(data),
                "--out",
                str(out),
                "--top",
                "5",
                "--registry",
                str(registry),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["score"] <= rows[-1]["score"]
    assert "T" in rows[0]["ts"]


def test_feedback_then_retrain_moves_the_pattern_down(registry: Path, shared_data: Path, tmp_path: Path) -> None:
    log = shared_data / "stratosphere-zeek-labeled" / "001-zeek-scenario-malicious" / "labeled-conn.log"
    reg = ["--registry", str(registry)]
    assert main(["train", "threat", "--data", str(log), "--name", "fb", *reg, *FAST]) == 0
    before = tmp_path / "before.parquet"
    assert main(["threat", "score", "--model", "fb", "--data", str(log), "--out", str(before), *reg]) == 0
    top = pq.read_table(before).slice(0, 1).to_pylist()[0]
    assert (
        main(
            [
                "threat",
                "feedback",
                "--model",
                "fb",
                "--severity",
                "3",
                "--scores",
                str(before),
                "--rank",
                "1",
                "--note",
                "known",
                *reg,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "threat",
                "feedback",
                "--model",
                "fb",
                "--severity",
                "3",
                "--dst-ip",
                top["dst_ip"],
                "--dst-port",
                str(top["dst_port"]),
                *reg,
            ]
        )
        == 0
    )
    assert main(["train", "threat", "--data", str(log), "--name", "fb", *reg, *FAST]) == 0
    assert open_store(registry).resolve("threat/fb").extra["feedback_verdicts"] == 2
    after = tmp_path / "after.parquet"
    assert main(["threat", "score", "--model", "fb", "--data", str(log), "--out", str(after), *reg]) == 0
    ranked = pq.read_table(after).to_pylist()
    moved = next(r["rank"] for r in ranked if r["line"] == top["line"])
    assert moved > 50
    assert not [r for r in ranked[:20] if (r["dst_ip"], r["dst_port"]) == (top["dst_ip"], top["dst_port"])]


def test_evaluate_prints_the_table(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = shared_data / "stratosphere-zeek-labeled" / "001-zeek-scenario-malicious"
    out = tmp_path / "eval.json"
    status = main(
        [
            "evaluate",
            "threat",
            "--data",
            str(data),
            "--fraction",
            "0.05",
            "--seeds",
            "1",
            "--methods",
            "spot,mlscale",
            "--json",
            str(out),
            *FAST,
        ]
    )
    assert status == 0
    text = capsys.readouterr().out
    assert "| seeded 5% | mlscale | 1 |" in text
    assert "| capture | spot | 1 |" in text
    report = json.loads(out.read_text())
    assert {r["method"] for r in report["rows"]} == {"spot", "mlscale"}


def test_synth_streams_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["threat", "synth", "--rows", "20k", "--hosts", "30", "--out", str(tmp_path / "s")]) == 0
    assert "20,000 flows" in capsys.readouterr().out
    assert pq.read_table(tmp_path / "s" / "flows").num_rows == 20_000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["threat", "score", "--model", "nope", "--data", "x.log", "--out", "o.csv"], "no model threat/nope"),
        (["threat", "feedback", "--model", "c001", "--severity", "3"], "say what to rate"),
        (["threat", "feedback", "--model", "c001", "--severity", "3", "--scores", "s.csv"], "--rank"),
        (["train", "threat", "--data", "no-such-data", "--name", "x"], "no such file or folder"),
        (["threat", "ingest", "/nonexistent", "--out", "o"], "no such file"),
    ],
)
def test_user_mistakes_are_one_clear_line(
    registry: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, *(["--registry", str(registry)] if argv[0] != "threat" or argv[1] != "ingest" else [])]) != 0
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_score_refuses_an_unknown_output_format(
    registry: Path, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = shared_data / "slips-samples" / "test18-ctu-sme-11" / "conn.log.labeled"
    assert (
        main(
            [
                "threat",
                "score",
                "--model",
                "c001",
                "--data",
                str(data),
                "--out",
                str(tmp_path / "o.xlsx"),
                "--registry",
                str(registry),
            ]
        )
        != 0
    )
    assert "expected a name ending in .parquet, .csv" in capsys.readouterr().err
