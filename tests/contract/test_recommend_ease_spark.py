"""EASE on Spark: the Gram matrix from Spark, the same model as a local fit (ML-100k)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlscale.apps.recommend import train_spark
from mlscale.apps.recommend.ingest import ingest_matrix
from mlscale.apps.recommend.itemitem import EaseRecommender
from mlscale.apps.recommend.spark_ease import fit_ease_spark
from mlscale.data import open_interactions
from mlscale.engines.spark import SparkEngine

# Spark on the shared 2-core machine takes minutes to start under load (measured: 198 s).
pytestmark = [pytest.mark.spark, pytest.mark.timeout(900)]


def test_spark_ease_matches_local(spark_engine: SparkEngine, shared_data: Path) -> None:
    staged = train_spark.stage_data(spark_engine, "movielens-100k", shared_data)
    try:
        spark_model = fit_ease_spark(spark_engine, staged.data, EaseRecommender(l2=300.0, threads=1))
    finally:
        staged.close()
    local = EaseRecommender(l2=300.0, threads=1).fit(
        ingest_matrix(open_interactions("movielens-100k", shared_data).read_all().to_batches())
    )
    assert spark_model.n_items == local.n_items == 1541
    assert spark_model.n_users == 943
    users = [1, 2, 3, 100, 942]
    a, b = spark_model.recommend(users, k=10), local.recommend(users, k=10)
    assert a.items.tolist() == b.items.tolist()
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-3, atol=1e-4)
