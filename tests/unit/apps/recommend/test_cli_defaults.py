"""The recommender's default, families, search and protocols through the `mlscale` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlscale.cli import main
from mlscale.registry import open_store


@pytest.fixture(scope="module")
def ml20k(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 20,000 ratings of ML-100k (a quick data set for commands that fit several models)."""
    lines = (shared_data / "movielens-100k" / "u.data").read_text().splitlines()[:20_000]
    path = tmp_path_factory.mktemp("ml20k") / "u.data"
    path.write_text("\n".join(lines) + "\n")
    return path


def _train(data: Path, registry: Path, *flags: str) -> int:
    argv = ["train", "recommend", "--data", str(data), "--name", "m", "--registry", str(registry)]
    return main([*argv, "--quiet", "--threads", "2", *flags])


def _show(registry: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["models", "show", "recommend/m", "--registry", str(registry)]) == 0
    shown: dict[str, object] = json.loads(capsys.readouterr().out)
    return shown


def test_no_model_flag_runs_the_default_and_records_its_choice(
    ml20k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(ml20k, tmp_path) == 0
    manifest = open_store(tmp_path).resolve("recommend/m")
    assert manifest.params["model"] == "ease"
    choice = manifest.extra["default_choice"]
    assert choice["rule"].startswith("EASE")
    assert choice["params"]["l2"] == manifest.params["l2"]
    assert max(choice["validation_curve"], key=lambda p: p["ndcg@10"])["ndcg@10"] > 0.05  # random ranking: about 0.01
    assert _show(tmp_path, capsys)["extra"]["default_choice"] == choice  # type: ignore[index]


def test_the_default_falls_back_to_als_over_the_item_budget(ml20k: Path, tmp_path: Path) -> None:
    assert _train(ml20k, tmp_path, "--item-budget", "1000") == 0
    manifest = open_store(tmp_path).resolve("recommend/m")
    assert manifest.params["model"] == "als"
    assert manifest.params["factors"] == 64
    assert "over the budget" in manifest.extra["default_choice"]["rule"]


@pytest.mark.parametrize(
    ("flags", "family"),
    [(["--model", "knn"], "knn"), (["--model", "ease"], "ease"), (["--l2", "50"], "ease"), (["--factors", "8"], "als")],
)
def test_a_family_is_picked_by_model_or_by_its_flags(
    ml20k: Path, tmp_path: Path, flags: list[str], family: str
) -> None:
    assert _train(ml20k, tmp_path, *flags) == 0
    manifest = open_store(tmp_path).resolve("recommend/m")
    assert manifest.params["model"] == family
    assert "default_choice" not in manifest.extra


def test_flags_of_two_families_are_one_clear_error(
    ml20k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(ml20k, tmp_path, "--factors", "8", "--l2", "50") == 64
    err = capsys.readouterr().err
    assert "no model family takes all of --factors, --l2; pick one with --model" in err
    assert "Traceback" not in err


def test_tune_prints_the_trials_and_resumes(ml20k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study, report = tmp_path / "study.log", tmp_path / "trials.json"
    argv = ["tune", "recommend", "--data", str(ml20k), "--storage", str(study), "--json", str(report)]
    assert main([*argv, "--trials", "2", "--threads", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "chosen:" in out
    assert "ndcg@10" in out
    first = json.loads(report.read_text())["trials"]
    assert len(first) == 2
    # the same study, a budget of 3: one more trial, the first two kept as they were
    assert main([*argv, "--trials", "3", "--threads", "2", "--quiet"]) == 0
    again = json.loads(report.read_text())["trials"]
    assert len(again) == 3
    assert again[:2] == first


def test_train_tune_stores_the_search_and_models_show_prints_it(
    ml20k: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(ml20k, tmp_path, "--model", "ease", "--tune", "--trials", "2") == 0
    manifest = open_store(tmp_path).resolve("recommend/m")
    tuning = manifest.extra["tuning"]
    assert manifest.params["model"] == tuning["family"] == "ease"
    assert manifest.params["l2"] == pytest.approx(tuning["params"]["l2"])
    assert list(tuning["search_space"]) == ["ease"]
    assert len(tuning["curve"]) == 2
    shown = _show(tmp_path, capsys)["extra"]
    assert {"params", "search_space", "curve"} <= set(shown["tuning"])  # type: ignore[index]


@pytest.mark.parametrize(
    ("verb", "flags", "message"),
    [
        ("tune", ["--trials", "0"], "trials: expected a number of trials >= 1, got 0"),
        ("tune", ["--time", "0"], "time: expected a time budget > 0 seconds"),
        ("tune", ["--time", "soon"], "--time: expected a duration such as 90s, 10m or 1h"),
        ("train", ["--tune", "--trials", "0"], "trials: expected a number of trials >= 1, got 0"),
        ("empty-validation", [], "validation: the validation split is empty"),
    ],
)
def test_bad_tuning_input_is_one_clear_error(
    ml20k: Path, tmp_path: Path, verb: str, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ml20k
    if verb == "empty-validation":
        # one interaction per user: nothing can be held out for validation
        data = tmp_path / "one-each.csv"
        data.write_text("user,item\n" + "".join(f"{u},{u % 7}\n" for u in range(50)))
        verb, flags = "tune", ["--trials", "2"]
    argv = [verb, "recommend", "--data", str(data), "--registry", str(tmp_path / "reg"), *flags]
    if verb == "train":
        argv += ["--name", "m"]
    assert main(argv) == 64
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "reg").exists() or open_store(tmp_path / "reg").list() == []


def test_evaluate_protocol_gives_mean_spread_and_popularity(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "u1-u2.json"
    argv = ["evaluate", "recommend", "--data", "movielens-100k", "--data-dir", str(shared_data)]
    assert main([*argv, "--protocol", "u1-u2", "--model", "ease", "--json", str(report), "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "popularity" in out
    assert "±" in out
    data = json.loads(report.read_text())
    assert len(data["folds"]) == 2
    assert data["model"]["ndcg"]["mean"] > 1.5 * data["popularity"]["ndcg"]["mean"]
    assert data["model"]["ndcg"]["std"] > 0
    # --split and --protocol are two ways to ask for one thing
    assert main([*argv, "--protocol", "u1", "--split", "time"]) == 64
