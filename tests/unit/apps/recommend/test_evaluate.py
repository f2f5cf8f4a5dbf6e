from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlscale.apps.recommend import ImplicitRecommender, evaluate_recommender, ranking_metrics
from mlscale.apps.recommend.evaluate import split_interactions
from mlscale.data import InteractionReader
from mlscale.errors import DataError


def test_quality_bar_movielens_time_split(ml100k_table: pa.Table) -> None:
    report = evaluate_recommender(ml100k_table, ImplicitRecommender(threads=2), split="time")
    assert report.users == 943
    assert report.ndcg_lift >= 0.30, report.table()


def test_quality_bar_lastfm_random_split(shared_data: Path) -> None:
    table = InteractionReader(shared_data / "lastfm-hetrec2011-2k" / "user_artists.dat").read_all()
    report = evaluate_recommender(table, ImplicitRecommender(threads=2), split="random")
    assert report.ndcg_lift >= 0.30, report.table()


def test_time_split_holds_out_each_users_latest(ml100k_table: pa.Table) -> None:
    train, test = split_interactions(ml100k_table, "time", n_test=5)
    assert train.num_rows + test.num_rows == ml100k_table.num_rows
    users = test.column("user").to_numpy()
    assert np.all(np.bincount(users)[np.unique(users)] == 5)
    # every held-out interaction is no older than the same user's training ones
    tr_users, tr_ts = train.column("user").to_numpy(), train.column("timestamp").to_numpy()
    latest_train = np.zeros(users.max() + 1, dtype=np.int64)
    np.maximum.at(latest_train, tr_users, tr_ts)
    assert np.all(test.column("timestamp").to_numpy() >= latest_train[users])


def test_random_split_keeps_a_training_row_per_user(ml100k_table: pa.Table) -> None:
    train, test = split_interactions(ml100k_table, "random", test_fraction=0.5, seed=3)
    assert set(train.column("user").to_pylist()) == set(ml100k_table.column("user").to_pylist())
    assert 0.4 < test.num_rows / ml100k_table.num_rows < 0.5


def test_time_split_without_timestamps_says_what_to_do() -> None:
    table = pa.table(
        {
            "user": [1, 1],
            "item": [2, 3],
            "rating": pa.array([1.0, 1.0], pa.float32()),
            "timestamp": pa.nulls(2, pa.int64()),
        }
    )
    with pytest.raises(DataError, match="random"):
        split_interactions(table, "time")


def test_metrics_perfect_and_empty() -> None:
    truth = [np.array([1, 2]), np.array([3])]
    perfect = ranking_metrics(np.array([[1, 2], [3, -1]]), truth, k=2, n_items=4)
    assert perfect["ndcg"] == pytest.approx(1.0)
    assert perfect["recall"] == pytest.approx(1.0)
    assert perfect["map"] == pytest.approx(1.0)
    miss = ranking_metrics(np.array([[0, 0], [0, 0]]), truth, k=2, n_items=4)
    assert miss["ndcg"] == miss["precision"] == 0.0
    assert miss["coverage"] == 0.25
