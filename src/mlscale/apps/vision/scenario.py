"""The vision model's load-test scenario: real images sent to ``classify``.

Images are taken from a labelled data set (default: the Fashion-MNIST test split), encoded
once as PNG, and sent either one per request as the raw body (``Content-Type: image/png``)
or, for a share ``batch`` of requests, as a JSON batch of ``batch_size`` base64 images. Mix
options (``[mix]`` in a scenario file): ``batch`` (0.0), ``batch_size`` (16), ``k`` (3),
``pool`` (images read from the data, 1000).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from mlscale.apps.vision._deps import require
from mlscale.apps.vision.data import ImageDataset
from mlscale.errors import DataError, ValidationError
from mlscale.loadtest.scenario import Request, Scenario

__all__ = ["VisionScenario", "encode_png"]

_DEFAULTS: dict[str, float] = {"batch": 0.0, "batch_size": 16, "k": 3, "pool": 1000}


def encode_png(image: NDArray[np.uint8]) -> bytes:
    """One ``H x W x C`` (or ``H x W``) uint8 image as PNG bytes."""
    pil = require("PIL.Image")
    array = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    buf = io.BytesIO()
    pil.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return buf.getvalue()


class VisionScenario(Scenario):
    """PNG bodies (and optional JSON batches) of real images for ``classify``."""

    name = "vision"

    def __init__(self, dataset: ImageDataset, model: str, mix: dict[str, Any] | None = None) -> None:
        unknown = set(mix or {}) - set(_DEFAULTS)
        if unknown:
            raise ValidationError(f"unknown option(s) {sorted(unknown)}; expected {sorted(_DEFAULTS)}", field="mix")
        self.mix = {**_DEFAULTS, **(mix or {})}
        if not 0 <= float(self.mix["batch"]) <= 1:
            raise ValidationError(f"expected a share between 0 and 1, got {self.mix['batch']!r}", field="mix.batch")
        for key in ("batch_size", "k", "pool"):
            if not isinstance(self.mix[key], int) or self.mix[key] < 1:
                raise ValidationError(f"expected a whole number >= 1, got {self.mix[key]!r}", field=f"mix.{key}")
        self.model = model
        self.data = dataset.where
        rng = np.random.default_rng(0)
        pick = np.sort(rng.permutation(len(dataset))[: int(self.mix["pool"])]).astype(np.int64)
        self._pngs: list[bytes] = []
        for x, _, _ in dataset.batches(256, pick):
            self._pngs.extend(encode_png(image) for image in x)
        if not self._pngs:
            raise DataError(f"{dataset.where}: no images to build requests from")
        self._b64 = [base64.b64encode(p).decode("ascii") for p in self._pngs]

    def requests(self, rng: np.random.Generator, n: int) -> list[Request]:
        k = int(self.mix["k"])
        path = f"/v1/models/{self.model}/classify"
        size = int(self.mix["batch_size"])
        out: list[Request] = []
        for _ in range(n):
            if rng.random() < float(self.mix["batch"]):
                picks = rng.integers(0, len(self._b64), size=size).tolist()
                body = msgspec.json.encode({"images": [self._b64[i] for i in picks], "k": k})
                out.append(Request("POST", path, body, "batch"))
            else:
                png = self._pngs[int(rng.integers(0, len(self._pngs)))]
                out.append(Request("POST", f"{path}?k={k}", png, "image", "image/png"))
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "data": self.data, "model": self.model, "images": len(self._pngs), "mix": self.mix}
