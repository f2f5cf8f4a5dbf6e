"""The vision trainers of the contract, one per engine: ``local`` (this process) and ``spark`` (TorchDistributor).

Both open the ``--data`` spec, train with :class:`~mlscale.apps.vision.params.VisionParams`,
and score the fitted model on the data's own test split when it has one (a catalogue data
set, a folder with ``train/`` and ``test/``, IDX files) or on ``--test-data``; a plain folder
of class sub-folders has no test split, so no test figure is reported for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlscale.apps.base import Job, TrainResult
from mlscale.apps.vision.params import VisionParams
from mlscale.errors import DatasetNotFoundError, ValidationError

if TYPE_CHECKING:
    from mlscale.apps.vision.data import ImageDataset
    from mlscale.apps.vision.model import VisionModel
    from mlscale.engines import Engine

__all__ = ["LOCAL", "SPARK", "LocalTrainer", "SparkTrainer"]


def _test_set(job: Job, dataset: ImageDataset, model: VisionModel) -> ImageDataset | None:
    from mlscale.apps.vision.data import open_dataset

    given = job.option("test_data")
    try:
        test = open_dataset(
            given or job.data,
            data_dir=job.data_dir,
            split="test",
            labels=model.meta.labels,
            on_error=model.params.on_error,
        )
    except DatasetNotFoundError:
        if given:
            raise
        return None
    # Without a test split, open_dataset gives the training images back: never report those as a test figure.
    return test if given or test.where != dataset.where else None


def _result(job: Job, dataset: ImageDataset, model: VisionModel, took: float) -> TrainResult:
    from mlscale.apps.vision.train_local import evaluate

    metrics = {"train_seconds": round(took, 3), "epochs": float(len(model.history))}
    if model.history:
        metrics["val_accuracy"] = max(h["val_accuracy"] for h in model.history)
    test = _test_set(job, dataset, model)
    if test is not None:
        scores = evaluate(model, test)
        metrics["test_accuracy"] = scores["accuracy"]
        metrics["test_loss"] = scores["loss"]
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "accuracy" in k)
    skipped = f", {model.skipped} bad file(s) skipped" if model.skipped else ""
    return TrainResult(
        model,
        metrics,
        dataset.fingerprint(),
        extra={"data": job.data, "images": len(dataset), "skipped": model.skipped},
        summary=f"trained on {len(dataset):,} images ({len(model.history)} epochs, {took:.1f}s{skipped}): {shown}",
    )


class LocalTrainer:
    """Train on this machine (CUDA when ``--device`` allows and one is present), ``--threads`` torch threads."""

    param_defaults: Mapping[str, Any] = {}

    def fit(self, engine: Engine, job: Job, params: VisionParams) -> TrainResult:
        from mlscale.apps.vision.data import open_dataset
        from mlscale.apps.vision.train_local import fit

        params.validate()
        dataset = open_dataset(job.data, data_dir=job.data_dir, on_error=params.on_error)
        start = time.perf_counter()
        model = fit(dataset, params, threads=engine.threads)
        return _result(job, dataset, model, time.perf_counter() - start)


class SparkTrainer:
    """Train data-parallel with Spark's TorchDistributor (DDP over gloo), ``--processes`` processes."""

    param_defaults: Mapping[str, Any] = {}

    def fit(self, engine: Engine, job: Job, params: VisionParams) -> TrainResult:
        from mlscale.apps.vision.data import open_dataset
        from mlscale.apps.vision.train_spark import fit_distributed

        params.validate()
        processes = int(job.option("processes", 2))
        if processes < 1:
            raise ValidationError(f"expected >= 1, got {processes}", field="--processes")
        dataset = open_dataset(job.data, data_dir=job.data_dir, on_error=params.on_error)
        start = time.perf_counter()
        spark: Any = engine  # a SparkEngine: its session and whether it is local
        model = fit_distributed(
            job.data,
            params,
            data_dir=job.data_dir,
            num_processes=processes,
            local_mode=spark.is_local,
            session=spark.session,
            threads=int(job.option("threads", 0)),
        )
        return _result(job, dataset, model, time.perf_counter() - start)


LOCAL = LocalTrainer()
SPARK = SparkTrainer()
