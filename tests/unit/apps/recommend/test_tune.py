"""Tuning on a validation split of the training data: reproducible, resumable, clear on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlscale.apps.recommend.evaluate import ranking_metrics
from mlscale.apps.recommend.itemitem import EaseRecommender
from mlscale.apps.recommend.protocols import evaluate_protocol, fit_params, parse_protocol
from mlscale.apps.recommend.tune import tune, validation_split
from mlscale.data import interaction_schema
from mlscale.errors import ValidationError


def test_ndcg_matches_a_hand_computed_example() -> None:
    # Held out {1, 7, 9}; recommended [5, 1, 7]: hits at ranks 2 and 3.
    # DCG = 1/log2(3) + 1/log2(4); IDCG = 1 + 1/log2(3) + 1/log2(4).
    dcg = 1 / np.log2(3) + 1 / np.log2(4)
    m = ranking_metrics(np.array([[5, 1, 7]]), [np.array([1, 7, 9])], k=3, n_items=10)
    assert m["ndcg"] == pytest.approx(dcg / (1 + dcg))
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)


def test_validation_split_is_carved_from_training_only(ml100k_table: pa.Table) -> None:
    val = validation_split(ml100k_table)
    assert val.method == "time"
    assert val.train.nnz + val.held_out == ml100k_table.num_rows


def test_same_seed_same_choice(ml100k_table: pa.Table) -> None:
    a = tune(ml100k_table, families=("ease", "knn"), trials=4, seed=3, threads=1)
    b = tune(ml100k_table, families=("ease", "knn"), trials=4, seed=3, threads=1)
    assert (a.family, a.params, a.score) == (b.family, b.params, b.score)
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]
    d = a.as_dict()
    assert d["search_space"].keys() == {"ease", "knn"}
    assert len(d["curve"]) == 4
    assert d["curve"] == sorted(d["curve"])
    assert d["curve"][-1] == a.score
    assert "chosen:" in a.table()


def test_resume_continues_the_stored_study(ml100k_table: pa.Table, tmp_path: Path) -> None:
    journal = tmp_path / "study.journal"
    first = tune(ml100k_table, families=("ease",), trials=2, seed=0, threads=1, storage=journal)
    assert len(first.trials) == 2
    assert journal.is_file()
    resumed = tune(ml100k_table, families=("ease",), trials=4, seed=0, threads=1, storage=journal)
    assert len(resumed.trials) == 4  # two more, not four
    assert [t["params"] for t in resumed.trials[:2]] == [t["params"] for t in first.trials]
    assert resumed.score >= first.score
    again = tune(ml100k_table, families=("ease",), trials=4, seed=0, threads=1, storage=journal)
    assert len(again.trials) == 4  # budget already spent: nothing new runs


@pytest.mark.parametrize(
    ("trials", "timeout", "field"), [(0, None, "trials"), (None, 0.0, "time"), (None, None, "trials")]
)
def test_a_budget_of_zero_is_refused(
    ml100k_table: pa.Table, trials: int | None, timeout: float | None, field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        tune(ml100k_table, trials=trials, timeout=timeout)
    assert err.value.field == field


def test_an_empty_validation_split_is_refused() -> None:
    # One interaction per user: a time split keeps every user wholly in training.
    n = 50
    table = pa.table(
        {
            "user": np.arange(n),
            "item": np.arange(n) % 7,
            "rating": pa.array(np.ones(n, np.float32)),
            "timestamp": pa.array(np.arange(n, dtype=np.int64)),
        },
        schema=interaction_schema(pa.int64()),
    )
    with pytest.raises(ValidationError, match="validation split is empty") as err:
        tune(table, families=("ease",), trials=2)
    assert err.value.field == "validation"


def test_protocol_names() -> None:
    assert parse_protocol("ua-ub").folds == ("ua", "ub")
    for bad in ("u6", "u4-u2", "u5-ua", "last-0", "random-1.5", "holdout"):
        with pytest.raises(ValidationError) as err:
            parse_protocol(bad)
        assert err.value.field == "protocol"


def test_official_fold_holds_the_ease_bar(shared_data: Path) -> None:
    # ML-100k u1 (official u1.base / u1.test): EASE at the bar, >= 1.68x popularity.
    report = evaluate_protocol(
        "movielens-100k", "u1", fit_params(EaseRecommender(l2=250.0, threads=1)), data_dir=shared_data
    )
    fold = report.folds[0]
    assert fold.users == 459
    assert fold.train_interactions == 80_000
    assert report.mean() >= 0.97 * 0.565, report.table()
    assert report.mean() >= 1.68 * report.mean("ndcg", "popularity"), report.table()
