"""Batch inference: every image of a folder or ``path`` table to Parquet, locally or on Spark.

Both paths decode each file as serving does (PNG/JPEG, converted to the model's mode,
resized bilinearly to its size), normalise with the model's metadata and run the same ONNX
graph, so they give the same predictions (the tests compare them). The output has one row
per readable image: ``path``, ``label`` (the most likely), ``probability``, ``labels`` and
``probabilities`` (the top ``k``), and ``true_label`` when the layout gives one (a class
folder, or a ``label`` column). A bad file stops the run with an error naming it, or with
``on_error="skip"`` is left out and counted.

- :func:`predict_local`: batches of ``batch_size`` images through one ONNX Runtime session,
  written as they come (one Parquet file); memory stays at one batch.
- :func:`predict_spark`: the file list as a DataFrame, decoded by a pandas UDF and classified by
  Spark's ``pyspark.ml.functions.predict_batch_udf`` (one ONNX session per Python worker),
  written by Spark (a Parquet folder).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from mlscale.apps.vision._deps import require
from mlscale.apps.vision.data import BadImageError, decode_image, list_images
from mlscale.apps.vision.model import VisionMeta, preprocess, softmax, top_k
from mlscale.errors import DataError, ValidationError

__all__ = ["PREDICTION_SCHEMA", "PredictReport", "predict_local", "predict_spark"]

#: Columns of a prediction file.
PREDICTION_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("label", pa.string()),
        ("probability", pa.float32()),
        ("labels", pa.list_(pa.string())),
        ("probabilities", pa.list_(pa.float32())),
        ("true_label", pa.string()),
    ]
)


@dataclass(frozen=True)
class PredictReport:
    """What a batch inference did."""

    images: int
    skipped: int
    seconds: float
    out: Path
    bad_files: tuple[tuple[str, str], ...] = ()

    @property
    def images_per_second(self) -> float:
        """Throughput, decoding and writing included."""
        return self.images / self.seconds if self.seconds > 0 else 0.0


def _check(k: int, batch_size: int, on_error: str) -> None:
    if k < 1:
        raise ValidationError(f"expected a number >= 1, got {k}", field="k")
    if batch_size < 1:
        raise ValidationError(f"expected a number >= 1, got {batch_size}", field="batch_size")
    if on_error not in ("raise", "skip"):
        raise ValidationError(f"expected raise or skip, got {on_error!r}", field="on_error")


def _rows(
    paths: Sequence[str], truth: Sequence[str | None], probs: NDArray[np.float32], labels: Sequence[str], k: int
) -> pa.RecordBatch:
    idx, p = top_k(probs, k)
    names = np.array(labels, dtype=object)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(list(paths), pa.string()),
            pa.array(names[idx[:, 0]].tolist(), pa.string()),
            pa.array(p[:, 0], pa.float32()),
            pa.array(names[idx].tolist(), pa.list_(pa.string())),
            pa.array(p.tolist(), pa.list_(pa.float32())),
            pa.array(list(truth), pa.string()),
        ],
        schema=PREDICTION_SCHEMA,
    )


def predict_local(
    onnx: bytes,
    meta: VisionMeta,
    data: str | Path,
    out: Path,
    *,
    batch_size: int = 256,
    k: int = 1,
    on_error: str = "raise",
    threads: int = 0,
) -> PredictReport:
    """Classify every image under ``data`` (a folder, or a ``path[,label]`` table) into ``out`` (Parquet)."""
    from mlscale.apps.vision.predictor import OnnxClassifier

    _check(k, batch_size, on_error)
    files, truth = list_images(data)
    if not files:
        raise DataError(f"{data}: no images found")
    classifier = OnnxClassifier(onnx, meta, threads=threads)
    start = time.perf_counter()
    bad: list[tuple[str, str]] = []
    done = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with pq.ParquetWriter(tmp, PREDICTION_SCHEMA) as writer:
        for first in range(0, len(files), batch_size):
            images, names, labels = [], [], []
            for path, label in zip(files[first : first + batch_size], truth[first : first + batch_size], strict=True):
                try:
                    images.append(
                        decode_image(
                            path.read_bytes(),
                            where=str(path),
                            channels=meta.channels,
                            size=(meta.height, meta.width),
                            resize=True,
                        )
                    )
                except (BadImageError, OSError) as err:
                    if on_error == "raise":
                        if isinstance(err, BadImageError):
                            raise
                        raise BadImageError(f"cannot read: {err}", path=str(path)) from None
                    bad.append((str(path), str(err)))
                    continue
                names.append(str(path))
                labels.append(label)
            if images:
                probs = classifier.predict_proba(np.stack(images))
                writer.write_batch(_rows(names, labels, probs, meta.labels, k))
                done += len(images)
    tmp.replace(out)
    return PredictReport(done, len(bad), time.perf_counter() - start, out, tuple(bad))


def _decode_column(meta_dict: dict[str, Any]) -> Any:
    """A pandas UDF: path -> struct(pixels array<float>, error string)."""
    import pandas as pd
    from pyspark.sql.pandas.functions import pandas_udf
    from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

    schema = StructType([StructField("pixels", ArrayType(FloatType())), StructField("error", StringType())])

    def decode(paths: Any) -> Any:
        from mlscale.apps.vision.data import BadImageError, decode_image

        pixels: list[Any] = []
        errors: list[str | None] = []
        size = (int(meta_dict["height"]), int(meta_dict["width"]))
        for p in paths:
            try:
                with open(p, "rb") as f:
                    image = decode_image(f.read(), where=p, channels=int(meta_dict["channels"]), size=size, resize=True)
                pixels.append(image.astype(np.float32).ravel())
                errors.append(None)
            except (BadImageError, OSError) as err:
                pixels.append(None)
                errors.append(str(err))
        return pd.DataFrame({"pixels": pixels, "error": errors})

    # pandas_udf reads the kind of UDF from real type hints (not the strings of postponed annotations).
    decode.__annotations__ = {"paths": pd.Series, "return": pd.DataFrame}
    return pandas_udf(decode, schema)  # type: ignore[call-overload]


def predict_spark(
    session: Any,
    onnx: bytes,
    meta: VisionMeta,
    data: str | Path,
    out: Path,
    *,
    batch_size: int = 256,
    k: int = 1,
    on_error: str = "raise",
) -> PredictReport:
    """Classify every image under ``data`` on Spark with ``predict_batch_udf``; Spark writes ``out``.

    The file list is made on the driver (paths every executor must be able to read).
    """
    _check(k, batch_size, on_error)
    require("pyspark")
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import functions as sf
    from pyspark.sql.types import ArrayType, FloatType, IntegerType, StructField, StructType

    files, truth = list_images(data)
    if not files:
        raise DataError(f"{data}: no images found")
    start = time.perf_counter()
    meta_dict = meta.to_dict()
    shape = [meta.channels * meta.height * meta.width]
    labels = list(meta.labels)

    def make_predict_fn() -> Any:
        from mlscale.apps.vision.predictor import OnnxClassifier

        classifier = OnnxClassifier(onnx, meta, threads=1)

        def predict(pixels: NDArray[np.float32]) -> dict[str, NDArray[Any]]:
            images = pixels.reshape(-1, meta.height, meta.width, meta.channels).astype(np.uint8)
            probs = softmax(classifier.logits(preprocess(images, meta)))
            idx, p = top_k(probs, k)
            return {"indices": idx.astype(np.int32), "probs": p.astype(np.float32)}

        return predict

    result_type = StructType(
        [StructField("indices", ArrayType(IntegerType())), StructField("probs", ArrayType(FloatType()))]
    )
    classify = predict_batch_udf(
        make_predict_fn, return_type=result_type, batch_size=batch_size, input_tensor_shapes=[shape]
    )
    frame = session.createDataFrame(
        [(str(f), t) for f, t in zip(files, truth, strict=True)], "path string, true_label string"
    )
    decoded = frame.withColumn("d", _decode_column(meta_dict)(sf.col("path"))).cache()
    try:
        errors = decoded.where(sf.col("d.error").isNotNull()).select("path", "d.error").collect()
        if errors and on_error == "raise":
            first = errors[0]
            raise BadImageError(str(first["error"]).split(": ", 1)[-1], path=str(first["path"]))
        names = sf.array(*[sf.lit(x) for x in labels])
        result = (
            decoded.where(sf.col("d.error").isNull())
            .withColumn("r", classify(sf.col("d.pixels")))
            .select(
                "path",
                sf.element_at(names, sf.col("r.indices")[0] + 1).alias("label"),
                sf.col("r.probs")[0].alias("probability"),
                sf.transform(sf.col("r.indices"), lambda i: sf.element_at(names, i + 1)).alias("labels"),
                sf.col("r.probs").alias("probabilities"),
                "true_label",
            )
        )
        result.write.mode("overwrite").parquet(str(out))
        count = len(files) - len(errors)
    finally:
        decoded.unpersist()
    bad = tuple((str(r["path"]), str(r["error"])) for r in errors)
    return PredictReport(count, len(bad), time.perf_counter() - start, out, bad)
