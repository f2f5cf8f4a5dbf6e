"""Spark engine benchmark: local engine vs mlscale's Spark engine vs a plain PySpark ALS script.

The same synthetic interactions (Parquet parts, seeded) are trained three ways,
each in a fresh process, timing from reading the Parquet to a fitted model with
its factors on the driver:

- ``local``: ``ingest_matrix`` + :class:`ImplicitRecommender` (implicit ALS, 2 threads);
- ``mlscale-spark``: :func:`stage_data` + :func:`fit_spark` on ``local[2]``: dense
  ids, BM25 weighting, Spark ML ALS, factors and seen-items matrix collected to
  the registry format;
- ``pyspark``: what a user would write: ``spark.read.parquet``, ``ALS(implicitPrefs=True)``
  on the raw ids and ratings, factors collected with ``toPandas``.

The Spark session's start-up (JVM) is timed apart and excluded, as it is the
same for both Spark candidates. Goal: the Spark engine adds at most 10% over
plain PySpark. The local/Spark ratio is reported too.

Run: ``python -m benchmarks spark [--rows 10M] [--iterations 5]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    format_table,
    host_info,
    now_iso,
    rows_arg,
    rows_label,
    run_candidates,
    stopwatch,
    summarise,
    write_result,
)

__all__ = ["add_parser", "run"]

FACTORS = 64
GOAL = 1.10


def _session(params: dict[str, Any]) -> tuple[Any, float]:
    from mlscale.engines.spark import SparkEngine

    start = time.perf_counter()
    engine = SparkEngine(master="local[2]", conf={"spark.driver.memory": "8g"})
    engine.session.range(1).count()
    return engine, time.perf_counter() - start


def local_candidate(params: dict[str, Any]) -> dict[str, Any]:
    from mlscale.apps.recommend import ImplicitRecommender
    from mlscale.apps.recommend.ingest import ingest_matrix
    from mlscale.data import open_interactions

    with stopwatch() as lap:
        matrix = ingest_matrix(open_interactions(params["parquet"], Path()))
        model = ImplicitRecommender(factors=FACTORS, iterations=params["iterations"], threads=2).fit(matrix)
    return {"seconds": lap.seconds, "users": model.n_users, "items": model.n_items}


def spark_candidate(params: dict[str, Any]) -> dict[str, Any]:
    from mlscale.apps.recommend import ImplicitRecommender
    from mlscale.apps.recommend.train_spark import fit_spark, stage_data

    engine, startup = _session(params)
    try:
        with stopwatch() as lap:
            staged = stage_data(engine, params["parquet"], Path())
            model = fit_spark(
                engine,
                staged.data,
                ImplicitRecommender(factors=FACTORS, iterations=params["iterations"], regularization=0.05),
            )
    finally:
        engine.close()
    return {"seconds": lap.seconds, "startup_seconds": startup, "users": model.n_users, "items": model.n_items}


def pyspark_candidate(params: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    from pyspark.ml.recommendation import ALS

    engine, startup = _session(params)
    try:
        spark = engine.session
        with stopwatch() as lap:
            df = spark.read.parquet(params["parquet"]).selectExpr(
                "cast(user as int) user", "cast(item as int) item", "rating"
            )
            als = ALS(
                rank=FACTORS,
                maxIter=params["iterations"],
                regParam=0.05,
                alpha=1.0,
                implicitPrefs=True,
                userCol="user",
                itemCol="item",
                ratingCol="rating",
                seed=0,
                checkpointInterval=5,
                numUserBlocks=2,
                numItemBlocks=2,
            )
            model = als.fit(df)
            users = np.stack(model.userFactors.toPandas()["features"].to_numpy())
            items = np.stack(model.itemFactors.toPandas()["features"].to_numpy())
    finally:
        engine.close()
    return {
        "seconds": lap.seconds,
        "startup_seconds": startup,
        "users": int(users.shape[0]),
        "items": int(items.shape[0]),
    }


def ensure_parquet(rows: int, seed: int, out: Path) -> Path:
    from mlscale.apps.recommend.profile import default_profile
    from mlscale.apps.recommend.synthetic import generate
    from mlscale.data.writers import write_parquet

    dest = out / "data" / f"parquet-{rows}-seed{seed}"
    if not dest.exists():
        print(f"  generating {rows:,} synthetic interactions -> {dest}", file=sys.stderr, flush=True)
        write_parquet(generate(default_profile(), rows, seed=seed), dest, rows_per_file=2_000_000)
    return dest


def add_parser(sub: Any) -> None:
    p = sub.add_parser("spark", help="local vs mlscale Spark engine vs plain PySpark ALS")
    p.add_argument("--rows", type=rows_arg, default=10_000_000, help="interactions (default 10M)")
    p.add_argument("--iterations", type=int, default=5, help="ALS iterations (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per candidate")
    p.add_argument("--out", type=Path, default=Path("bench-out"))
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    parquet = ensure_parquet(args.rows, args.seed, args.out)
    params = {"parquet": str(parquet), "iterations": args.iterations}
    candidates = [
        ("local", "benchmarks.spark:local_candidate"),
        ("mlscale-spark", "benchmarks.spark:spark_candidate"),
        ("pyspark", "benchmarks.spark:pyspark_candidate"),
    ]
    runs = run_candidates(candidates, params, timeout=args.timeout)
    s = {name: summarise(name, outcomes) for name, outcomes in runs.items()}
    ours, plain, local = s["mlscale-spark"].seconds, s["pyspark"].seconds, s["local"].seconds
    overhead = ours / plain if ours and plain else None
    result = {
        "benchmark": "spark",
        "date": now_iso(),
        "host": host_info(),
        "rows": args.rows,
        "iterations": args.iterations,
        "factors": FACTORS,
        "seconds": {k: v.seconds for k, v in s.items()},
        "peak_rss_mib": {k: v.peak_rss_mib for k, v in s.items()},
        "spark_over_pyspark": overhead,
        "local_over_spark": local / ours if local and ours else None,
        "goal_met": overhead is not None and overhead <= GOAL,
        "runs": runs,
    }
    rows = [
        [k, f"{v.seconds:.1f}" if v.seconds else v.status, f"{v.peak_rss_mib:,.0f}" if v.peak_rss_mib else "-"]
        for k, v in s.items()
    ]
    print(format_table(["candidate", "seconds (read Parquet -> fitted model)", "peak RSS MiB (driver)"], rows))
    if overhead is not None:
        print(
            f"mlscale Spark engine / plain PySpark: {overhead:.2f}x (goal <= {GOAL:.2f}: "
            f"{'met' if overhead <= GOAL else 'NOT met'}); local / Spark: {result['local_over_spark']:.2f}x"
        )
    print(f"results: {write_result(args.out / f'spark-{rows_label(args.rows)}.json', result)}")
    return 0
