"""The recommender on the Spark engine, as the generic verbs call it: trainer, evaluator, precomputer.

Registered in :class:`~mlscale.apps.recommend.app.RecommendApp` under ``"spark"``;
the work itself is in :mod:`~mlscale.apps.recommend.train_spark`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from mlscale.apps.base import Job, TrainResult
from mlscale.apps.recommend.model import ImplicitRecommender
from mlscale.apps.recommend.reader_args import stream_options
from mlscale.apps.recommend.train_spark import (
    SPARK_DEFAULT_REGULARIZATION,
    evaluate_spark,
    fit_spark,
    precompute_spark,
    stage_data,
)
from mlscale.engines.spark import SparkEngine

if TYPE_CHECKING:
    from mlscale.apps.recommend.params import AlsParams, BprParams
    from mlscale.engines import Engine

__all__ = ["EVALUATOR", "PRECOMPUTER", "TRAINER", "SparkEvaluator", "SparkPrecomputer", "SparkTrainer"]


def _spark(engine: Engine) -> SparkEngine:
    # Registered under "spark" only, and get_engine("spark") makes a SparkEngine: a cast, not a branch.
    return cast(SparkEngine, engine)


class SparkTrainer:
    """``mlscale train recommend --engine spark``: stage the data, Spark ML ALS, the same artifact."""

    param_defaults: Mapping[str, Any] = {"regularization": SPARK_DEFAULT_REGULARIZATION}

    def fit(self, engine: Engine, job: Job, params: AlsParams | BprParams) -> TrainResult:
        from mlscale.apps.recommend.app import recommender
        from mlscale.apps.recommend.matrix import InteractionMatrix

        spark = _spark(engine)
        staged = stage_data(spark, job.data, job.data_dir, **stream_options(job.options))
        try:
            start = time.perf_counter()
            model = fit_spark(spark, staged.data, recommender(params, spark.threads))
            took = time.perf_counter() - start
            metrics: dict[str, float] = {"train_seconds": round(took, 3)}
            print(
                f"data: {model.n_users:,} users x {model.n_items:,} items, {model.seen_.nnz:,} interactions "
                f"(Spark {spark.master})"
            )
            if job.option("evaluate"):
                report = evaluate_spark(
                    spark, staged.data, recommender(params, spark.threads), split=staged.default_split()
                )
                print(report.table())
                metrics.update(report.metrics())
        finally:
            staged.close()
        matrix = InteractionMatrix(csr=model.seen_, user_ids=model.user_ids_, item_ids=model.item_ids_)
        return TrainResult(
            model,
            metrics,
            matrix.fingerprint(),
            extra={"data": job.data, "bad_rows": 0},
            summary=f"trained {model.model} in {took:.1f}s",
        )


class SparkEvaluator:
    """``mlscale evaluate recommend --engine spark``: split, fit and score in Spark."""

    param_defaults: Mapping[str, Any] = {"regularization": SPARK_DEFAULT_REGULARIZATION}

    def evaluate(self, engine: Engine, job: Job, params: AlsParams | BprParams) -> int:
        from mlscale.apps.recommend.app import print_report, recommender

        spark = _spark(engine)
        staged = stage_data(spark, job.data, job.data_dir, **stream_options(job.options))
        try:
            report = evaluate_spark(
                spark,
                staged.data,
                recommender(params, spark.threads),
                split=job.option("split") or staged.default_split(),
                k=job.option("k", 10),
                n_test=job.option("n_test", 10),
                test_fraction=job.option("test_fraction", 0.2),
                seed=params.seed,
            )
        finally:
            staged.close()
        return print_report(job, engine, report)


class SparkPrecomputer:
    """``mlscale precompute recommend --engine spark``: score blocks of users on Spark."""

    def precompute(self, engine: Engine, model: ImplicitRecommender, job: Job) -> str:
        from mlscale.apps.recommend.precompute import precompute_line

        k = int(job.option("k", 100))
        model._check_k(k, model.n_items)
        start = time.perf_counter()
        out = job.option("out")
        rows = precompute_spark(_spark(engine), model, out, k=k, exclude_seen=not job.option("include_seen", False))
        return precompute_line(model, rows, time.perf_counter() - start, out)


TRAINER = SparkTrainer()
EVALUATOR = SparkEvaluator()
PRECOMPUTER = SparkPrecomputer()
