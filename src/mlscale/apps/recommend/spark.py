"""The recommender on the Spark engine, as the generic verbs call it: trainer, evaluator, precomputer.

Registered in :class:`~mlscale.apps.recommend.app.RecommendApp` under ``"spark"``;
the work itself is in :mod:`~mlscale.apps.recommend.train_spark`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from mlscale.apps.base import Job, TrainResult, params_from_dict, params_to_dict
from mlscale.apps.recommend import ann
from mlscale.apps.recommend.itemitem import EaseRecommender
from mlscale.apps.recommend.model import ImplicitRecommender
from mlscale.apps.recommend.params import AlsParams, AutoParams, EaseParams
from mlscale.apps.recommend.reader_args import stream_options
from mlscale.apps.recommend.spark_ease import fit_ease_spark
from mlscale.apps.recommend.train_spark import (
    SPARK_DEFAULT_REGULARIZATION,
    SparkData,
    evaluate_spark,
    fit_spark,
    precompute_spark,
    stage_data,
)
from mlscale.engines.spark import SparkEngine
from mlscale.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from mlscale.engines import Engine

__all__ = ["EVALUATOR", "PRECOMPUTER", "TRAINER", "SparkEvaluator", "SparkPrecomputer", "SparkTrainer"]


def _spark(engine: Engine) -> SparkEngine:
    # Registered under "spark" only, and get_engine("spark") makes a SparkEngine: a cast, not a branch.
    return cast(SparkEngine, engine)


class SparkTrainer:
    """``mlscale train recommend --engine spark``: stage the data, Spark ML ALS, the same artifact."""

    param_defaults: Mapping[str, Any] = {"regularization": SPARK_DEFAULT_REGULARIZATION}

    def fit(self, engine: Engine, job: Job, params: Any) -> TrainResult:
        from mlscale.apps.recommend.app import recommender
        from mlscale.apps.recommend.matrix import InteractionMatrix

        if job.option("tune"):
            raise ConfigError(
                "train --tune searches on the local engine; use --engine local (or `mlscale tune recommend`)",
                hint="on Spark: train a family outright, e.g. --model als",
            )
        ann.check_family(params.family, job.options)
        if params.family == "knn":
            raise ConfigError("item-kNN trains on the local engine only; use --engine local, or --model ease / als")
        if job.option("evaluate") and params.family != "als":
            raise ConfigError(
                f"train --evaluate on Spark measures ALS (--model als), not {params.family!r}",
                hint="measure it with `mlscale evaluate recommend --engine local`",
            )
        spark = _spark(engine)
        staged = stage_data(spark, job.data, job.data_dir, **stream_options(job.options))
        extra: dict[str, Any] = {"data": job.data, "bad_rows": 0}
        try:
            start = time.perf_counter()
            if params.family == "auto":
                model, extra["default_choice"] = self._auto(spark, staged.data, params)
                print(f"default model: {extra['default_choice']['rule']}")
            elif params.family == "ease":
                model = fit_ease_spark(spark, staged.data, cast(EaseRecommender, recommender(params, spark.threads)))
            else:
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
        ann.index_model(model, job.options, quiet=bool(job.option("quiet")))  # factor models only
        matrix = InteractionMatrix(csr=model.seen_, user_ids=model.user_ids_, item_ids=model.item_ids_)
        return TrainResult(
            model,
            metrics,
            matrix.fingerprint(),
            extra=extra,
            summary=f"trained {model.model} in {took:.1f}s",
        )

    def _auto(
        self, spark: SparkEngine, data: SparkData, params: AutoParams
    ) -> tuple[ImplicitRecommender, dict[str, Any]]:
        """The default on Spark: EASE when the catalogue fits (``MAX_SPARK_EASE_ITEMS``, the budget), else ALS.

        EASE takes :class:`EaseParams`' lambda here (the local default searches it on a validation split;
        on Spark that search is not wired yet); ALS takes :class:`AlsParams` with Spark's regularisation.
        """
        shared = {"memory_budget": params.memory_budget, "seed": params.seed}
        ease = EaseRecommender(threads=spark.threads, **params_to_dict(params_from_dict(EaseParams, shared)))
        try:
            fitted: ImplicitRecommender = fit_ease_spark(spark, data, ease)
            rule = f"EASE (lambda {ease.l2:g}, the EASE default): the catalogue fits the item-item budget on Spark"
        except ValidationError as err:
            if err.field != "model":
                raise
            als = params_from_dict(AlsParams, {**self.param_defaults, "seed": params.seed})
            fitted = fit_spark(
                spark, data, ImplicitRecommender(model="als", threads=spark.threads, **params_to_dict(als))
            )
            rule = f"ALS: {err.args[0] if err.args else err}"
        return fitted, {"rule": rule, "model": fitted.model, "params": fitted.get_params()}


class SparkEvaluator:
    """``mlscale evaluate recommend --engine spark``: split, fit and score in Spark."""

    param_defaults: Mapping[str, Any] = {"regularization": SPARK_DEFAULT_REGULARIZATION}

    def evaluate(self, engine: Engine, job: Job, params: Any) -> int:
        from mlscale.apps.recommend.app import print_report, recommender

        if job.option("protocol") or params.family != "als":
            raise ConfigError(
                f"evaluate on Spark measures ALS with --split (--model als), not {params.family!r}"
                + (f" on --protocol {job.option('protocol')}" if job.option("protocol") else ""),
                hint="measure the default, EASE, kNN or a protocol with --engine local",
            )
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
