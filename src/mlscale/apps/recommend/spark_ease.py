"""EASE on the Spark engine: the item Gram matrix computed by Spark, the inversion on the driver.

Spark does the part that grows with the interactions: distinct (user, item)
pairs, item counts (items seen fewer than ``min_item_count`` times are left
out, as locally) and ``X^T X`` through ``RowMatrix.computeGramianMatrix``
(a tree aggregate of each user's co-occurrences; no pair list is ever
materialised). The driver receives the ``n_items^2`` Gram matrix, inverts it
(:func:`~mlscale.apps.recommend.itemitem.ease_from_gram`) and gets the seen
matrix through Arrow, so the model is the same artifact as a local EASE.

Documented size: up to :data:`MAX_SPARK_EASE_ITEMS` items (Spark's Gramian
holds ``n (n + 1) / 2`` doubles per task and on the driver; 16,384 items is
about 1 GiB there), and within the model's ``memory_budget``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlscale.apps.recommend.itemitem import EaseRecommender, _check_budget, ease_from_gram, prune_items
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.apps.recommend.train_spark import SparkData
from mlscale.engines.spark import SparkEngine, spark_errors
from mlscale.errors import DataError, ValidationError

__all__ = ["MAX_SPARK_EASE_ITEMS", "fit_ease_spark"]

MAX_SPARK_EASE_ITEMS = 16_384


def fit_ease_spark(engine: SparkEngine, data: SparkData, model: EaseRecommender) -> EaseRecommender:
    """Fit ``model`` (EASE) with its Gram matrix computed by Spark; returns it fitted (registry-ready)."""
    from pyspark.mllib.linalg.distributed import RowMatrix
    from pyspark.sql import functions as f

    model._check()
    _ = engine.session
    with spark_errors("counting items"):
        pairs = data.frame.where(f.col("user").isNotNull() & f.col("item").isNotNull())
        pairs = pairs.groupBy("user", "item").agg(f.sum("rating").cast("float").alias("rating")).cache()
        kept = pairs.groupBy("item").count().where(f.col("count") >= model.min_item_count).select("item").toPandas()
    item_ids = np.sort(kept["item"].to_numpy())
    n = int(item_ids.size)
    if n == 0:
        pairs.unpersist()
        raise DataError(f"no item has {model.min_item_count} or more interactions")
    if n > MAX_SPARK_EASE_ITEMS:
        pairs.unpersist()
        raise ValidationError(
            f"EASE on Spark supports up to {MAX_SPARK_EASE_ITEMS:,} items, this catalogue has {n:,}; "
            "use ALS (--model als)",
            field="model",
        )
    try:
        _check_budget(n, model.memory_budget, "EASE")
    except ValidationError:
        pairs.unpersist()
        raise
    spark = engine.session
    index = spark.createDataFrame([(v.item(), i) for i, v in enumerate(item_ids)], ["item", "iidx"])
    with spark_errors("computing the Gram matrix"):
        per_user = (
            pairs.join(f.broadcast(index), "item")
            .groupBy("user")
            .agg(f.sort_array(f.collect_list("iidx")).alias("items"))
        )

        def row(r: Any) -> Any:
            from pyspark.mllib.linalg import Vectors

            return Vectors.sparse(n, list(r["items"]), [1.0] * len(r["items"]))

        gram = RowMatrix(per_user.rdd.map(row)).computeGramianMatrix().toArray().astype(np.float32)
        seen = pairs.toPandas()
    pairs.unpersist()
    matrix = prune_items(
        InteractionMatrix.from_arrays(
            seen["user"].to_numpy(), seen["item"].to_numpy(), seen["rating"].to_numpy(np.float32)
        ),
        model.min_item_count,
    )
    # Spark indexed the kept items in sorted id order; the local matrix may order them otherwise.
    pos = np.searchsorted(item_ids, np.asarray(matrix.item_ids))
    gram = np.ascontiguousarray(gram[np.ix_(pos, pos)])
    return model.set_fitted(matrix, ease_from_gram(gram, float(model.l2)))
