"""The recommender on the Spark engine: ALS training, batch top-K with a seen filter, evaluation.

Everything heavy stays distributed: ids are indexed, duplicates summed and the
matrix weighted (the same BM25 / TF-IDF formulas as :mod:`implicit`) in Spark,
and Spark ML's ``ALS(implicitPrefs=True)`` fits the factors. Only what the
registry artifact holds comes back to the driver, streamed through Parquet:
the factors, the id maps and the seen-items matrix (built with the same
bounded-memory :class:`~mlscale.apps.recommend.ingest.MatrixBuilder` as a local ingest). The
artifact is therefore the same format as a local model, served and evaluated
by the same code.

Spark's own ``recommendForAllUsers`` cannot skip what a user has already seen;
:func:`recommend_all` scores blocks of users against broadcast item factors in
``mapInArrow`` tasks and drops seen items exactly. Executors of a real cluster
need ``mlscale`` installed (as for any PySpark library).

Note on regularisation: Spark's ALS scales ``regParam`` by each row's number
of interactions (ALS-WR) while implicit does not, so the same number means a
stronger penalty on Spark; :data:`SPARK_DEFAULT_REGULARIZATION` is the default
measured to match the local engine's quality.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.dataset as pads

from mlscale.apps.recommend.evaluate import EvaluationReport, SplitMethod
from mlscale.apps.recommend.ingest import MatrixBuilder
from mlscale.apps.recommend.model import ImplicitRecommender, _check_params
from mlscale.engines.spark import SparkEngine, functions, spark_errors, staging_dir, to_arrow
from mlscale.errors import DataError, ValidationError

__all__ = [
    "SPARK_DEFAULT_REGULARIZATION",
    "SparkData",
    "evaluate_spark",
    "fit_spark",
    "precompute_spark",
    "recommend_all",
    "spark_ranking_metrics",
]

SPARK_DEFAULT_REGULARIZATION = 0.05


@dataclass(frozen=True)
class SparkData:
    """Interactions as a Spark DataFrame with columns user, item, rating (and timestamp)."""

    frame: Any


def _dense_index(df: Any, column: str, index: str) -> Any:
    """``column`` -> ``index`` 0..n-1, all in the JVM (no Python rows, no single-partition sort).

    ``monotonically_increasing_id`` is (partition << 33) + position; one small
    collect of the per-partition counts turns it into dense offsets. The ids
    are persisted first so every action sees the same numbering.
    """
    from pyspark import StorageLevel

    f = functions()
    ids = df.select(column).distinct().withColumn("_mid", f.monotonically_increasing_id())
    ids = ids.withColumn("_pid", f.shiftright("_mid", 33)).persist(StorageLevel.MEMORY_AND_DISK)
    counts = sorted((int(r["_pid"]), int(r["count"])) for r in ids.groupBy("_pid").count().collect())
    offsets, total = [], 0
    for pid, n in counts:
        offsets.append((pid, total))
        total += n
    off = df.sparkSession.createDataFrame(offsets or [(0, 0)], "_pid long, _off long")
    pos = f.col("_mid").bitwiseAND((1 << 33) - 1)
    return ids.join(f.broadcast(off), "_pid").select(column, (f.col("_off") + pos).cast("int").alias(index))


# Per-user / per-item statistics smaller than this are broadcast to the join instead of shuffling the
# interactions to meet them.
_BROADCAST_ROWS = 5_000_000


def _small(frame: Any, rows: int) -> Any:
    return functions().broadcast(frame) if rows < _BROADCAST_ROWS else frame


def weighted_frame(m: Any, weighting: str, k1: float, b: float, n_items: int | None = None) -> Any:
    """Apply implicit's BM25 / TF-IDF weighting to (uidx, iidx, value) as Spark columns.

    implicit weights an item x user matrix: N = items, idf from each user's
    item count, length norm from each item's total. ``n_items`` is counted when
    not given.
    """
    f = functions()
    if weighting == "none":
        return m.withColumn("w", f.col("value"))
    per_item = m.groupBy("iidx").agg(f.sum("value").alias("row_sum")).cache()
    stats = per_item.agg(f.count("*"), f.avg("row_sum")).first()
    n_items = int(stats[0]) if n_items is None else n_items
    per_user = m.groupBy("uidx").agg(f.count("*").alias("n_u")).cache()
    n_users = per_user.count()
    idf = f.log(f.lit(float(n_items))) - f.log1p(f.col("n_u"))
    joined = m.join(_small(per_user, n_users), "uidx")
    if weighting == "tfidf":
        return joined.withColumn("w", f.sqrt(f.col("value")) * idf).drop("n_u")
    norm = f.lit(1.0 - b) + f.lit(b) * f.col("row_sum") / f.lit(float(stats[1]))
    w = f.col("value") * f.lit(k1 + 1.0) / (f.lit(k1) * norm + f.col("value")) * idf
    return joined.join(_small(per_item, n_items), "iidx").withColumn("w", w).drop("n_u", "row_sum")


def _factors(frame: Any, n: int, width: int) -> npt.NDArray[np.float32]:
    table = to_arrow(frame.orderBy("id"))
    ids = table.column("id").to_numpy()
    out = np.zeros((n, width), np.float32)
    if table.num_rows:
        flat = table.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        out[ids] = flat.reshape(-1, width).astype(np.float32)
    return out


def _ids(frame: Any, column: str, index: str) -> npt.NDArray[Any]:
    table = to_arrow(frame.orderBy(index))
    values: npt.NDArray[Any] = table.column(column).to_numpy(zero_copy_only=False)
    return values.astype(np.int64) if values.dtype.kind in "iu" else values.astype(np.str_)


def _int32_ids(agg: Any) -> bool:
    """Whether both id columns are integers within int32 (then ALS takes them as they are)."""
    f = functions()
    types = dict(agg.dtypes)
    integers = ("int", "bigint", "smallint", "tinyint")
    if types["user"] not in integers or types["item"] not in integers:
        return False
    row = agg.agg(f.min("user"), f.max("user"), f.min("item"), f.max("item")).first()
    return row[0] is not None and min(row[0], row[2]) >= 0 and max(row[1], row[3]) < 2**31 - 1


def _id_factors(frame: Any, width: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """ALS factors with their own ids, sorted by id (the id map of a directly-indexed model)."""
    table = to_arrow(frame.orderBy("id"))
    ids = table.column("id").to_numpy().astype(np.int64)
    flat = table.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ids, np.ascontiguousarray(flat.reshape(-1, width), dtype=np.float32)


def fit_spark(
    engine: SparkEngine, data: SparkData, model: ImplicitRecommender, *, work_dir: Path | None = None
) -> ImplicitRecommender:
    """Fit ``model``'s parameters with Spark ML ALS; returns it fitted (registry-ready)."""
    _check_params(model)
    if model.model != "als":
        raise ValidationError("the spark engine trains ALS only (Spark ML has no BPR)", field="model")
    f = functions()
    cleanup = ExitStack()
    work = cleanup.enter_context(staging_dir("mlscale-spark-", parent=work_dir))
    cached: list[Any] = []
    try:
        with spark_errors("indexing the interactions"):
            raw = data.frame.where(f.col("user").isNotNull() & f.col("item").isNotNull())
            # Grouped once and kept: every later step reads it, none recomputes the shuffle.
            agg = raw.groupBy("user", "item").agg(f.sum("rating").cast("float").alias("value")).cache()
            cached.append(agg)
            direct = _int32_ids(agg)
            n_items: int | None = None
            if direct:
                # Ids that are already int32-safe integers go to ALS as they are: no re-indexing jobs.
                # The id maps are then ALS's own factor ids (sorted), and rows are found by search.
                m = agg.select(
                    f.col("user").cast("int").alias("uidx"), f.col("item").cast("int").alias("iidx"), "value"
                )
                n_users = 1  # not empty: _int32_ids saw a minimum
            else:
                users = _dense_index(agg, "user", "uidx").cache()
                items = _dense_index(agg, "item", "iidx").cache()
                cached += [users, items]
                n_users, n_items = users.count(), items.count()
                m = agg.join(_small(items, n_items), "item").join(users, "user")
                m = m.select("uidx", "iidx", "value").cache()
                cached.append(m)
            if n_users == 0:
                raise DataError("no interactions to train on")
        with spark_errors("weighting the matrix"):
            weighted = weighted_frame(m, model.weighting, model.bm25_k1, model.bm25_b, n_items).cache()
            cached.append(weighted)
            fold_in_weight = float(weighted.agg(f.avg("w")).first()[0])
        with spark_errors("fitting ALS"):
            from pyspark.ml.recommendation import ALS

            als = ALS(
                rank=model.factors,
                maxIter=model.iterations,
                regParam=model.regularization_,
                alpha=model.alpha,
                implicitPrefs=True,
                userCol="uidx",
                itemCol="iidx",
                ratingCol="w",
                seed=model.seed,
                checkpointInterval=5,
                nonnegative=False,
                coldStartStrategy="drop",
                numUserBlocks=max(2, engine.threads),
                numItemBlocks=max(2, engine.threads),
            )
            fitted = als.fit(weighted)
        with spark_errors("collecting the model"):
            if direct:
                user_ids, user_factors = _id_factors(fitted.userFactors, model.factors)
                item_ids, item_factors = _id_factors(fitted.itemFactors, model.factors)
            else:
                user_factors = _factors(fitted.userFactors, n_users, model.factors)
                item_factors = _factors(fitted.itemFactors, int(n_items or 0), model.factors)
                user_ids, item_ids = _ids(users, "user", "uidx"), _ids(items, "item", "iidx")
            m.write.parquet(str(work / "seen"))
        builder = MatrixBuilder(pa.int64(), spill_dir=work)
        for batch in pads.dataset(str(work / "seen"), format="parquet").to_batches(batch_size=1 << 20):
            rows = batch.column("uidx").to_numpy().astype(np.int64)
            cols = batch.column("iidx").to_numpy().astype(np.int64)
            if direct:
                rows, cols = np.searchsorted(user_ids, rows), np.searchsorted(item_ids, cols)
            builder.add_indices(rows.astype(np.int32), cols.astype(np.int32), batch.column("value").to_numpy())
        seen = builder.build(user_ids=user_ids, item_ids=item_ids).csr
    finally:
        for frame in cached:
            frame.unpersist()
        cleanup.close()
    model._set_state(
        user_factors=user_factors,
        item_factors=item_factors,
        user_ids=user_ids,
        item_ids=item_ids,
        seen=seen,
        fold_in_weight=fold_in_weight,
    )
    return model


# -- batch top-K --------------------------------------------------------------------------


def _topk_batches(item_factors: Any, k: int) -> Any:
    """A mapInArrow function: top-k unseen items for each (uidx, features, seen) row."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import scipy.sparse as sp
        from implicit.cpu.topk import topk

        items = np.ascontiguousarray(item_factors.value, dtype=np.float32)
        for batch in batches:
            n = batch.num_rows
            if n == 0:
                continue
            feats = batch.column("features").flatten().to_numpy(zero_copy_only=False)
            query = np.ascontiguousarray(feats.reshape(n, -1), dtype=np.float32)
            seen_col = batch.column("seen")
            offsets = seen_col.offsets.to_numpy().astype(np.int64)
            offsets = offsets - offsets[0]
            cols = seen_col.flatten().to_numpy(zero_copy_only=False).astype(np.int32)
            seen = sp.csr_matrix((np.ones(cols.size, np.float32), cols, offsets), shape=(n, items.shape[0]))
            ids, scores = topk(items, query, min(k, items.shape[0]), filter_query_items=seen, num_threads=1)
            ids = np.asarray(ids, np.int32)
            scores = np.asarray(scores, np.float32)
            ok = (ids >= 0) & np.isfinite(scores) & (scores > -1e37)  # implicit: filtered = -finfo.max
            lens = ok.sum(axis=1)
            off = np.zeros(n + 1, np.int32)
            np.cumsum(lens, out=off[1:])
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column("uidx"),
                    pa.ListArray.from_arrays(pa.array(off), pa.array(ids[ok])),
                    pa.ListArray.from_arrays(pa.array(off), pa.array(scores[ok])),
                ],
                names=["uidx", "items", "scores"],
            )

    return run


def recommend_all(
    engine: SparkEngine,
    user_factors: Any,
    item_factors: npt.NDArray[np.float32],
    seen: Any,
    k: int,
) -> Any:
    """Top-``k`` per user in Spark: DataFrame (uidx, items array<int>, scores array<float>).

    ``user_factors``: DataFrame (uidx int, features array<float>); ``seen``:
    DataFrame (uidx, iidx) of items to skip per user.
    """
    f = functions()
    spark = engine.session
    with spark_errors("scoring users"):
        seen_lists = seen.groupBy("uidx").agg(f.collect_list("iidx").alias("seen"))
        rows = user_factors.join(seen_lists, "uidx", "left").withColumn(
            "seen", f.coalesce(f.col("seen"), f.array().cast("array<int>"))
        )
        shared = spark.sparkContext.broadcast(np.ascontiguousarray(item_factors, np.float32))
        return rows.mapInArrow(_topk_batches(shared, k), "uidx int, items array<int>, scores array<float>")


def _model_frames(engine: SparkEngine, model: ImplicitRecommender, chunk: int = 200_000) -> tuple[Any, Any]:
    """A registry model's user factors and seen pairs as Spark DataFrames (built from Arrow chunks)."""
    spark = engine.session
    n, width = model.user_factors_.shape
    parts = []
    for start in range(0, n, chunk):
        block = np.ascontiguousarray(model.user_factors_[start : start + chunk], np.float32)
        feats = pa.FixedSizeListArray.from_arrays(pa.array(block.ravel()), width).cast(pa.list_(pa.float32()))
        parts.append(
            pa.table(
                {
                    "uidx": pa.array(np.arange(start, start + block.shape[0], dtype=np.int32)),
                    "features": feats,
                }
            )
        )
    users = spark.createDataFrame(pa.concat_tables(parts))
    csr = model.seen_
    rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(csr.indptr))
    seen = spark.createDataFrame(pa.table({"uidx": rows, "iidx": np.asarray(csr.indices, np.int32)}))
    return users, seen


def precompute_spark(
    engine: SparkEngine,
    model: ImplicitRecommender,
    out: str | Path,
    *,
    k: int = 100,
    exclude_seen: bool = True,
) -> int:
    """Every user's top-``k`` from a registry model, scored on Spark, to a Parquet folder."""
    model._check_fitted()
    if model.item_item:
        # Spark scores user factors against broadcast item factors; an item-item model has no user factors.
        raise ValidationError(
            f"precompute on Spark scores factor models (ALS, BPR), not {model.model!r}; use --engine local",
            field="engine",
        )
    f = functions()
    spark = engine.session
    with spark_errors("precomputing recommendations"):
        users, seen = _model_frames(engine, model)
        if not exclude_seen:
            seen = seen.limit(0)
        recs = recommend_all(engine, users, model.item_factors_, seen, k)
        user_map = spark.createDataFrame(
            pa.table({"uidx": np.arange(model.n_users, dtype=np.int32), "user": model.user_ids_})
        )
        item_map = spark.createDataFrame(
            pa.table({"iidx": np.arange(model.n_items, dtype=np.int32), "item": model.item_ids_})
        )
        long = recs.select("uidx", f.posexplode(f.arrays_zip("items", "scores")).alias("pos", "rec")).select(
            "uidx",
            (f.col("pos") + 1).cast("short").alias("rank"),
            f.col("rec.items").alias("iidx"),
            f.col("rec.scores").alias("score"),
        )
        result = long.join(user_map, "uidx").join(f.broadcast(item_map), "iidx").select("user", "rank", "item", "score")
        result.write.mode("overwrite").parquet(str(out))
        return int(spark.read.parquet(str(out)).count())


# -- evaluation ---------------------------------------------------------------------------


def spark_ranking_metrics(recs: Any, truth: Any, k: int, n_items: int) -> dict[str, float]:
    """The local evaluator's metrics in Spark SQL.

    ``recs``: (uidx, items array<int>) best first; ``truth``: (uidx, truth array<int>).
    Averages over the users of ``truth`` (a user without recommendations scores 0).
    """
    f = functions()
    joined = truth.join(recs.select("uidx", f.slice("items", 1, k).alias("items")), "uidx", "left").withColumn(
        "items", f.coalesce(f.col("items"), f.array().cast("array<int>"))
    )
    hit = "x -> array_contains(truth, x)"
    scored = joined.select(
        f.expr(f"size(filter(items, {hit}))").alias("hits"),
        f.size("truth").alias("n_rel"),
        f.expr(
            "aggregate(transform(items, (x, i) -> IF(array_contains(truth, x), 1.0 / log2(i + 2), 0.0)),"
            " 0D, (acc, v) -> acc + v)"
        ).alias("dcg"),
        f.expr(
            f"aggregate(transform(sequence(0, least(size(truth), {k}) - 1), i -> 1.0 / log2(i + 2)),"
            " 0D, (acc, v) -> acc + v)"
        ).alias("idcg"),
        f.expr(
            "aggregate(transform(items, (x, i) -> IF(array_contains(truth, x),"
            " size(filter(slice(items, 1, i + 1), y -> array_contains(truth, y))) / (i + 1.0), 0.0)),"
            " 0D, (acc, v) -> acc + v)"
        ).alias("ap_sum"),
    )
    row = scored.agg(
        f.avg(f.col("hits") / f.lit(float(k))).alias("precision"),
        f.avg(f.col("hits") / f.col("n_rel")).alias("recall"),
        f.avg(f.col("dcg") / f.col("idcg")).alias("ndcg"),
        f.avg(f.col("ap_sum") / f.least(f.col("n_rel"), f.lit(k))).alias("map"),
    ).first()
    shown = recs.select(f.explode(f.slice("items", 1, k)).alias("i")).distinct().count()
    out = {name: float(row[name] or 0.0) for name in ("precision", "recall", "ndcg", "map")}
    out["coverage"] = shown / max(n_items, 1)
    return out


def split_spark(frame: Any, method: SplitMethod, *, n_test: int, test_fraction: float, seed: int) -> tuple[Any, Any]:
    """The local evaluator's splits, as window functions (train, test)."""
    from pyspark.sql import Window

    f = functions()
    if method == "time":
        if frame.where(f.col("timestamp").isNotNull()).limit(1).count() == 0:
            raise DataError(
                "the data has no timestamps, so a time-based split is impossible", hint="use --split random"
            )
        w = Window.partitionBy("user").orderBy(f.col("timestamp").desc(), f.col("_row").desc())
        marked = (
            frame.withColumn("_row", f.monotonically_increasing_id())
            .withColumn("_rank", f.row_number().over(w))
            .withColumn("_n", f.count("*").over(Window.partitionBy("user")))
        )
        is_test = (f.col("_rank") <= n_test) & (f.col("_n") > n_test)
    elif method == "random":
        w = Window.partitionBy("user").orderBy("_r")
        marked = frame.withColumn("_r", f.rand(seed)).withColumn("_first", f.row_number().over(w) == 1)
        is_test = (f.col("_r") < test_fraction) & ~f.col("_first")
    else:
        raise ValidationError(f"expected 'time' or 'random', got {method!r}", field="split")
    marked = marked.withColumn("_test", is_test).cache()
    cols = [c for c in frame.columns if not c.startswith("_")]
    return marked.where(~f.col("_test")).select(cols), marked.where(f.col("_test")).select(cols)


def evaluate_spark(
    engine: SparkEngine,
    data: SparkData,
    model: ImplicitRecommender,
    *,
    split: SplitMethod = "time",
    k: int = 10,
    n_test: int = 10,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> EvaluationReport:
    """Split, fit on Spark, and score model and popularity in Spark with the local evaluator's metrics."""
    if k < 1:
        raise ValidationError(f"expected k >= 1, got {k}", field="k")
    f = functions()
    spark = engine.session
    with spark_errors("splitting the data"):
        train, test = split_spark(data.frame, split, n_test=n_test, test_fraction=test_fraction, seed=seed)
    fit_spark(engine, SparkData(train), model)
    k = min(k, model.n_items)
    with spark_errors("evaluating"):
        user_map = spark.createDataFrame(
            pa.table({"uidx": np.arange(model.n_users, dtype=np.int32), "user": model.user_ids_})
        )
        item_map = spark.createDataFrame(
            pa.table({"iidx": np.arange(model.n_items, dtype=np.int32), "item": model.item_ids_})
        )
        truth = (
            test.join(user_map, "user")
            .join(item_map, "item")
            .groupBy("uidx")
            .agg(f.array_distinct(f.collect_list("iidx")).alias("truth"))
            .cache()
        )
        users_eval = truth.select("uidx")
        held_out = test.count()
        users, seen = _model_frames(engine, model)
        users = users.join(users_eval, "uidx")
        recs = recommend_all(engine, users, model.item_factors_, seen, k)
        model_m = spark_ranking_metrics(recs, truth, k, model.n_items)
        popularity = np.asarray(model.item_popularity_, np.float32)[:, None]
        ones = spark.createDataFrame(
            pa.table(
                {
                    "uidx": pa.array(np.arange(model.n_users, dtype=np.int32)),
                    "features": pa.array([[1.0]] * model.n_users, pa.list_(pa.float32())),
                }
            )
        ).join(users_eval, "uidx")
        pop_m = spark_ranking_metrics(recommend_all(engine, ones, popularity, seen, k), truth, k, model.n_items)
        n_eval = truth.count()
    return EvaluationReport(
        k=k,
        split=split if split == "random" else f"time (last {n_test} per user)",
        users=int(n_eval),
        train_interactions=int(model.seen_.nnz),
        held_out=int(held_out),
        params=model.get_params(),
        model=model_m,
        popularity=pop_m,
        extra={"engine": "spark", "master": engine.master},
    )


# -- reading -------------------------------------------------------------------------------


@dataclass
class _Staged:
    data: SparkData
    cleanup: ExitStack

    def default_split(self) -> SplitMethod:
        """``time`` when the data has timestamps, else ``random`` (as the local evaluator)."""
        with spark_errors("looking for timestamps"):
            has_time = self.data.frame.where("timestamp is not null").limit(1).count() > 0
        return "time" if has_time else "random"

    def close(self) -> None:
        self.cleanup.close()


def stage_data(engine: SparkEngine, spec: str, data_dir: Path, **reader: Any) -> _Staged:
    """Interactions for Spark: Parquet is read in place (columns found by name); anything else
    (a catalogue name, CSV/TSV/gzip) is first streamed to Parquet parts with bounded memory."""
    from mlscale.data.ingest import ingest_parquet
    from mlscale.data.readers import InteractionReader
    from mlscale.data.sources import open_interactions

    f = functions()
    path = Path(spec)
    parquet_files = sorted(path.glob("*.parquet")) if path.is_dir() else [path] if path.suffix == ".parquet" else []
    cleanup = ExitStack()
    if parquet_files:
        roles = InteractionReader(parquet_files[0], **{k: v for k, v in reader.items() if k.endswith("_col")}).roles
        source = str(path)
    else:
        stream = open_interactions(spec, data_dir, **reader)
        temp = cleanup.enter_context(staging_dir())
        ingest_parquet(stream, temp / "parts")
        roles = InteractionReader(next((temp / "parts").glob("*.parquet"))).roles
        source = str(temp / "parts")
    with spark_errors(f"reading {source}"):
        frame = engine.session.read.parquet(source)
        cols = [
            f.col(roles.user).alias("user"),
            f.col(roles.item).alias("item"),
            (f.col(roles.rating).cast("float") if roles.rating else f.lit(1.0).cast("float")).alias("rating"),
            (f.col(roles.timestamp).cast("long") if roles.timestamp else f.lit(None).cast("long")).alias("timestamp"),
        ]
        return _Staged(SparkData(frame.select(*cols)), cleanup)
