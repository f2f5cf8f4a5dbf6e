"""``mlscale evaluate vision``: a published model's accuracy and loss on labelled images (the contract's evaluator).

The model is ``--model`` in ``--registry``; the images are ``--data`` (default: the Fashion-MNIST
catalogue data set), its ``--split`` (default: test), read at the model's input size.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlscale.apps.args import registry_root
from mlscale.apps.base import Job
from mlscale.apps.vision.codec import APP
from mlscale.apps.vision.params import VisionParams
from mlscale.errors import ValidationError
from mlscale.registry import ModelRef, open_store

if TYPE_CHECKING:
    from mlscale.engines import Engine

__all__ = ["DEFAULT_DATA", "LOCAL", "VisionEvaluator", "model_ref"]

#: ``--data`` when none is given.
DEFAULT_DATA = "fashion-mnist"


def model_ref(text: str) -> ModelRef:
    """``NAME``, ``NAME@alias`` or ``vision/NAME[@sel]``."""
    ref = ModelRef.parse(text if "/" in text else f"{APP}/{text}")
    if ref.app != APP:
        raise ValidationError(f"{text!r} is not a vision model (expected {APP}/NAME)", field="--model")
    return ref


class VisionEvaluator:
    """Score one published model; prints one line and returns 0."""

    param_defaults: Mapping[str, Any] = {}

    def evaluate(self, engine: Engine, job: Job, params: VisionParams) -> int:
        from mlscale.apps.vision.codec import decode
        from mlscale.apps.vision.data import open_dataset
        from mlscale.apps.vision.train_local import evaluate

        store = open_store(registry_root(argparse.Namespace(**job.options)))
        loaded = store.load(model_ref(str(job.option("model"))))
        model = decode(loaded)
        m = model.meta
        data = open_dataset(
            str(job.option("data", DEFAULT_DATA)),
            data_dir=job.data_dir,
            split=str(job.option("split", "test")),
            labels=m.labels,
            on_error=params.on_error,
            shape=(m.height, m.width, m.channels),
        )
        scores = evaluate(model, data)
        skipped = f" ({int(scores['skipped'])} bad file(s) skipped)" if scores["skipped"] else ""
        print(
            f"{loaded.ref}: accuracy {scores['accuracy']:.4f}, loss {scores['loss']:.4f} on "
            f"{int(scores['images']):,} images of {data.where}{skipped}"
        )
        return 0


LOCAL = VisionEvaluator()
