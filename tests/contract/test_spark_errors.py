from __future__ import annotations

import pytest

from mlscale.apps.recommend import ImplicitRecommender
from mlscale.apps.recommend.train_spark import SparkData, fit_spark
from mlscale.engines.spark import SparkEngine
from mlscale.errors import EngineError, ValidationError

pytestmark = pytest.mark.spark


def test_failed_spark_job_is_an_engine_error_with_the_cause(spark_engine: SparkEngine) -> None:
    # a job that fails on the executors, half way through the data
    frame = spark_engine.session.range(100).selectExpr(
        "IF(id = 77, raise_error('corrupt record 77'), id) AS user", "id % 7 AS item", "1.0f AS rating"
    )
    with pytest.raises(EngineError, match="Spark failed while indexing the interactions") as info:
        fit_spark(spark_engine, SparkData(frame), ImplicitRecommender())
    assert "corrupt record 77" in str(info.value)
    assert "at org.apache" not in str(info.value)  # no JVM stack dump


def test_bpr_on_spark_is_refused_clearly(spark_engine: SparkEngine) -> None:
    frame = spark_engine.session.createDataFrame([(1, 2, 1.0)], "user long, item long, rating float")
    with pytest.raises(ValidationError, match="ALS only"):
        fit_spark(spark_engine, SparkData(frame), ImplicitRecommender(model="bpr"))


def test_string_ids_are_reindexed_on_spark(spark_engine: SparkEngine) -> None:
    rows = [(f"user-{u}", f"item-{(u * 7 + k) % 13}", 1.0) for u in range(20) for k in range(4)]
    frame = spark_engine.session.createDataFrame(rows, "user string, item string, rating float")
    model = fit_spark(spark_engine, SparkData(frame), ImplicitRecommender(factors=4, iterations=2, regularization=0.05))
    assert model.user_ids_.dtype.kind == "U"
    assert model.n_users == 20
    assert model.n_items == 13
    assert model.seen_.nnz == len({(u, i) for u, i, _ in rows})
    recs = model.recommend(["user-3"], k=3)
    assert recs.valid.all()
