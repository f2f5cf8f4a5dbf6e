"""EASE on Spark: the Gram matrix from Spark, the same model as a local fit; the Spark default picks it.

The data is a slice of ML-100k (its first 300 users and items): enough for a
catalogue of a few hundred items and a real comparison, small enough that the
Spark work (one Gram aggregate, a few small jobs) takes seconds on a quiet machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlscale.apps.recommend import train_spark
from mlscale.apps.recommend.ingest import ingest_matrix
from mlscale.apps.recommend.itemitem import EaseRecommender
from mlscale.apps.recommend.spark_ease import fit_ease_spark
from mlscale.cli import main
from mlscale.data import open_interactions
from mlscale.engines.spark import SparkEngine
from mlscale.registry import open_store

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def ml_slice(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ML-100k's ratings of users 1..300 on items 1..300 (about 17,000 rows), as a TSV file."""
    lines = (shared_data / "movielens-100k" / "u.data").read_text().splitlines()
    keep = [line for line in lines if int(line.split("\t")[0]) <= 300 and int(line.split("\t")[1]) <= 300]
    path = tmp_path_factory.mktemp("ml-slice") / "u.data"
    path.write_text("\n".join(keep) + "\n")
    return path


def test_spark_ease_matches_local(spark_engine: SparkEngine, ml_slice: Path) -> None:
    staged = train_spark.stage_data(spark_engine, str(ml_slice), ml_slice.parent)
    try:
        spark_model = fit_ease_spark(spark_engine, staged.data, EaseRecommender(l2=300.0, threads=1))
    finally:
        staged.close()
    table = open_interactions(str(ml_slice), ml_slice.parent).read_all()
    local = EaseRecommender(l2=300.0, threads=1).fit(ingest_matrix(table.to_batches()))
    _, counts = np.unique(table.column("item").to_numpy(), return_counts=True)
    assert spark_model.n_items == local.n_items == int((counts >= 2).sum()) > 250
    assert spark_model.n_users == local.n_users == 300
    users = [1, 2, 3, 100, 299]
    a, b = spark_model.recommend(users, k=10), local.recommend(users, k=10)
    assert a.items.tolist() == b.items.tolist()
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-3, atol=1e-4)


def test_spark_default_is_ease_when_the_catalogue_fits(
    spark_engine: SparkEngine, ml_slice: Path, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    argv = ["train", "recommend", "--data", str(ml_slice), "--name", "auto", "--registry", str(registry)]
    assert main([*argv, "--engine", "spark", "--spark-master", "local[2]", "--quiet"]) == 0
    manifest = open_store(registry).resolve("recommend/auto")
    assert manifest.engine == "spark"
    assert manifest.params["model"] == "ease"
    assert manifest.extra["default_choice"]["rule"].startswith("EASE")
    # the catalogue over the item-item budget: the same command falls back to ALS
    assert main([*argv, "--engine", "spark", "--spark-master", "local[2]", "--quiet", "--item-budget", "1000"]) == 0
    manifest = open_store(registry).resolve("recommend/auto")
    assert manifest.params["model"] == "als"
    assert "over the memory budget" in manifest.extra["default_choice"]["rule"]
