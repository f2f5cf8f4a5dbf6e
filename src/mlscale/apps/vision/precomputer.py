"""``mlscale precompute vision``: batch inference of a published model over a folder or table of images.

The contract's precomputer per engine: ``local`` runs :func:`~mlscale.apps.vision.predict.predict_local`
(batches through one ONNX Runtime session, one Parquet file), ``spark`` runs
:func:`~mlscale.apps.vision.predict.predict_spark` (``predict_batch_udf``, a Parquet folder). Both run
the ONNX graph stored with the model, so they give the same predictions.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlscale.apps.base import Job
from mlscale.apps.vision.codec import export_onnx
from mlscale.apps.vision.predict import PredictReport, predict_local, predict_spark

if TYPE_CHECKING:
    from mlscale.apps.vision.model import VisionModel
    from mlscale.engines import Engine

__all__ = ["LOCAL", "SPARK", "VisionPrecomputer"]


def _summary(report: PredictReport) -> str:
    for path, reason in report.bad_files[:10]:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    skipped = f", {report.skipped} bad file(s) skipped" if report.skipped else ""
    return (
        f"classified {report.images:,} images in {report.seconds:.1f}s "
        f"({report.images_per_second:,.0f}/s{skipped}): {report.out}"
    )


class VisionPrecomputer:
    """Classify every image of ``--data`` into ``--out``, on this machine or on Spark."""

    def __init__(self, spark: bool) -> None:
        self.spark = spark

    def precompute(self, engine: Engine, model: VisionModel, job: Job) -> str:
        onnx = model.onnx if model.onnx is not None else export_onnx(model.net, model.meta)
        options: dict[str, Any] = {
            "batch_size": int(job.option("batch_size", 256)),
            "k": int(job.option("k", 1)),
            "on_error": str(job.option("on_error", "raise")),
        }
        out = Path(job.option("out"))
        if self.spark:
            session: Any = getattr(engine, "session")  # noqa: B009 - a SparkEngine's, not on the Engine base
            return _summary(predict_spark(session, onnx, model.meta, job.data, out, **options))
        return _summary(predict_local(onnx, model.meta, job.data, out, threads=engine.threads, **options))


LOCAL = VisionPrecomputer(spark=False)
SPARK = VisionPrecomputer(spark=True)
