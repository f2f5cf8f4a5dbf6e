"""The recommender through the `mlscale` command, bad input included."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlscale.cli import main
from mlscale.registry import open_store


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    registry = tmp_path_factory.mktemp("registry")
    status = main(
        [
            "train",
            "recommend",
            "--data",
            str(shared_data / "movielens-100k" / "u.data"),
            "--name",
            "ml",
            "--registry",
            str(registry),
            "--quiet",
            "--threads",
            "2",
            # ALS outright: these tests check ALS's defaults and its paths (the no-flag default has its own tests)
            "--model",
            "als",
        ]
    )
    assert status == 0
    return registry


def test_train_publishes_a_complete_version(trained: Path) -> None:
    manifest = open_store(trained).resolve("recommend/ml")
    assert manifest.version == 1
    assert manifest.engine == "local"
    assert manifest.params["factors"] == 64
    assert manifest.extra["users"] == 943
    assert manifest.data_fingerprint.startswith("sha256:")


def test_recommend_command_json(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "ml", "--users", "1,2", "--k", "3", "--json", "--registry", str(trained)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["user"] for r in out] == ["1", "2"]
    assert all(len(r["items"]) == 3 and r["strategy"] == "model" for r in out)


def test_update_then_precompute(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "new.parquet"
    pq.write_table(pa.table({"user": [7000, 7000], "item": [50, 172], "rating": [5.0, 5.0]}), new)
    assert (
        main(
            [
                "update",
                "recommend",
                "ml",
                "--data",
                str(new),
                "--registry",
                str(trained),
                "--promote",
                "production",
            ]
        )
        == 0
    )
    store = open_store(trained)
    assert store.aliases("recommend", "ml")["production"] == store.resolve("recommend/ml").version >= 2
    out = tmp_path / "top.parquet"
    assert (
        main(
            [
                "precompute",
                "recommend",
                "--model",
                "ml@production",
                "--out",
                str(out),
                "--k",
                "5",
                "--registry",
                str(trained),
            ]
        )
        == 0
    )
    table = pq.read_table(out)
    assert 7000 in set(table.column("user").to_pylist())
    assert table.num_rows == 944 * 5


def test_evaluate_writes_json(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "eval.json"
    assert (
        main(
            [
                "evaluate",
                "recommend",
                "--data",
                str(shared_data / "movielens-100k" / "u.data"),
                "--json",
                str(report),
                "--threads",
                "2",
            ]
        )
        == 0
    )
    data = json.loads(report.read_text())
    assert data["ndcg_lift"] > 0.3
    assert "popularity" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["recommend", "nope", "--users", "1"], "no model recommend/nope"),
        (["recommend", "ml", "--users", "1", "--k", "0"], "k: expected 1 <= k"),
        (["recommend", "ml", "--users", "1", "--k", "999999999"], "k: expected 1 <= k"),
        (["recommend", "ml", "--users", "x1"], "users: this model's ids are integers"),
        (["recommend", "../../etc", "--users", "1"], "name"),
    ],
)
def test_bad_requests_are_clear_errors(
    trained: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--registry", str(trained)]) != 0
    err = capsys.readouterr().err
    assert err.startswith("mlscale: error: ")
    assert message in err
    assert "Traceback" not in err


def test_bad_training_data_leaves_registry_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    bad_name = tmp_path / "ok.csv"
    bad_name.write_text("user,item\n1,2\n")
    registry = tmp_path / "reg"
    assert main(["train", "recommend", "--data", str(empty), "--name", "m", "--registry", str(registry)]) != 0
    assert "empty" in capsys.readouterr().err
    assert main(["train", "recommend", "--data", str(bad_name), "--name", "../x", "--registry", str(registry)]) != 0
    assert (
        main(
            [
                "train",
                "recommend",
                "--data",
                str(tmp_path / "missing.csv"),
                "--name",
                "m",
                "--registry",
                str(registry),
            ]
        )
        != 0
    )
    assert open_store(registry).list() == []


def test_train_evaluate_counts_skipped_rows_once(tmp_path: Path, shared_data: Path) -> None:
    lines = (shared_data / "movielens-100k" / "u.data").read_text().splitlines()[:20_000]
    lines[10] = "x\t1\t2\t3"
    lines[20] = "1\t2"
    data = tmp_path / "ratings.tsv"
    data.write_text("\n".join(lines) + "\n")
    registry = tmp_path / "reg"
    assert (
        main(
            [
                "train",
                "recommend",
                "--data",
                str(data),
                "--name",
                "m",
                "--evaluate",
                "--on-error",
                "skip",
                "--quiet",
                "--threads",
                "1",
                "--registry",
                str(registry),
            ]
        )
        == 0
    )
    assert open_store(registry).resolve("recommend/m").extra["bad_rows"] == 2
