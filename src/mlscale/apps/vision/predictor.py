"""The vision model behind ``mlscale serve``: ONNX Runtime on micro-batches of images.

One action, ``classify`` (``POST /v1/models/{name}/classify``), taking either

- one image as the body, ``Content-Type: image/png`` or ``image/jpeg`` (``?k=3`` for the top 3), or
- a JSON batch: ``{"images": ["<base64 PNG/JPEG>", ...]}`` or ``{"pixels": [[[0, 255, ...], ...], ...]}``
  (each image ``H x W`` grey or ``H x W x C``, integers 0..255, at the model's size), with ``"k"``;

and answering the ``k`` most likely labels of each image with their probabilities. Images of
another size than the model's are resized (bilinear) and converted to its mode (grey or RGB);
pixel arrays must have the model's size. An image that is not a PNG/JPEG, is truncated, has an
unsupported mode or too many pixels gets a 422 naming it; the service answers a wrong
Content-Type with 415 and a body over :data:`MAX_BODY` bytes with 413.

Requests that arrive together are decoded, stacked and run through the ONNX session in one
call (up to :data:`MAX_BATCH` images each), so a burst costs fewer model calls than requests.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from mlscale.apps.vision._deps import require
from mlscale.apps.vision.data import BadImageError, decode_image
from mlscale.apps.vision.model import VisionMeta, preprocess, softmax, top_k
from mlscale.errors import MlscaleError, ValidationError
from mlscale.serve.predictor import Action, Predictor

__all__ = [
    "CONTENT_TYPES",
    "MAX_BATCH",
    "MAX_BODY",
    "MAX_IMAGES",
    "ClassifyRequest",
    "ClassifyResponse",
    "OnnxClassifier",
    "Prediction",
    "VisionPredictor",
]

#: The raw bodies ``classify`` takes.
CONTENT_TYPES = ("image/png", "image/jpeg")
#: Most images in one JSON request.
MAX_IMAGES = 256
#: Most images per ONNX Runtime call.
MAX_BATCH = 256
#: Largest body ``classify`` accepts (bytes): 4 MiB, below the server's own limit when that is raised.
MAX_BODY = 4 << 20
_MAX_K = 100

_K = Annotated[int, msgspec.Meta(ge=1, le=_MAX_K)]


class ClassifyRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """JSON body of ``classify``: base64 PNG/JPEG ``images`` or ``pixels`` arrays (exactly one of them)."""

    images: Annotated[list[str], msgspec.Meta(max_length=MAX_IMAGES)] | None = None
    pixels: Annotated[list[Any], msgspec.Meta(max_length=MAX_IMAGES)] | None = None
    k: _K = 5


class Prediction(msgspec.Struct):
    """The most likely labels of one image, most likely first, with their probabilities."""

    labels: list[str]
    probabilities: list[float]


class ClassifyResponse(msgspec.Struct):
    """Answer of ``classify``: one prediction per image, in order."""

    model: str
    version: int
    predictions: list[Prediction]


class _Decoded:
    """An image body already decoded by ``from_body`` (not JSON)."""

    __slots__ = ("array", "k")

    def __init__(self, array: NDArray[np.uint8], k: int) -> None:
        self.array = array
        self.k = k


class OnnxClassifier:
    """An ONNX Runtime session over a vision model's graph: uint8 images in, probabilities out.

    ``threads`` sets ONNX Runtime's intra-op threads (0: its default, all cores);
    ``providers`` defaults to CUDA when ONNX Runtime has it, else the CPU.
    """

    def __init__(
        self, onnx: bytes, meta: VisionMeta, *, threads: int = 1, providers: Sequence[str] | None = None
    ) -> None:
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        available = ort.get_available_providers()
        if providers is None:
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        self.session = ort.InferenceSession(onnx, sess_options=options, providers=list(providers))
        self.meta = meta
        self.calls = 0

    @property
    def providers(self) -> list[str]:
        """The execution providers the session uses."""
        return list(self.session.get_providers())

    def logits(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Raw logits of preprocessed input (``N x C x H x W``); counts one model call per chunk."""
        out = []
        for start in range(0, len(x), MAX_BATCH):
            self.calls += 1
            out.append(self.session.run(["logits"], {"pixels": x[start : start + MAX_BATCH]})[0])
        if not out:
            return np.zeros((0, len(self.meta.labels)), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def predict_proba(self, images: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Class probabilities of ``N x H x W x C`` uint8 images at the model's size."""
        return softmax(self.logits(preprocess(images, self.meta)))


class VisionPredictor(Predictor):
    """Classifies images with a vision model's ONNX graph (see the module docs)."""

    def __init__(self, classifier: OnnxClassifier, *, model_ref: str, version: int) -> None:
        self.classifier = classifier
        self.meta = classifier.meta
        self.model_ref = model_ref
        self.version = version
        self._labels = np.array(self.meta.labels, dtype=object)

    def actions(self) -> list[Action[Any]]:
        classify: Action[Any] = Action(
            name="classify",
            summary="The k most likely labels of each image (a PNG/JPEG body, or a JSON batch)",
            request_type=ClassifyRequest,
            response_type=ClassifyResponse,
            run=self.classify_batch,
            validate=self.validate,
            content_types=CONTENT_TYPES,
            from_body=self.from_body,
            max_body=MAX_BODY,
        )
        return [classify]

    def describe(self) -> dict[str, Any]:
        m = self.meta
        return {
            "labels": list(m.labels),
            "input": {"channels": m.channels, "height": m.height, "width": m.width},
            "normalisation": {"mean": m.mean, "std": m.std},
            "providers": self.classifier.providers,
        }

    def warm(self) -> None:
        m = self.meta
        for n in (1, 8, 32):
            self.classifier.predict_proba(np.zeros((n, m.height, m.width, m.channels), np.uint8))
        self.classifier.calls = 0

    # -- requests ----------------------------------------------------------------------------

    def from_body(self, body: bytes, content_type: str, query: Mapping[str, str]) -> _Decoded:
        """One PNG/JPEG body, decoded now (a bad one is refused before it is queued)."""
        unknown = sorted(set(query) - {"k"})
        if unknown:
            raise ValidationError(f"unknown query parameter(s) {unknown}; expected k", field=unknown[0])
        k = 5
        if "k" in query:
            try:
                k = int(query["k"])
            except ValueError:
                k = 0
            if not 1 <= k <= _MAX_K:
                raise ValidationError(f"expected a whole number in 1..{_MAX_K}, got {query['k']!r}", field="k")
        return _Decoded(self._decode(body, f"body ({content_type})")[None], k)

    def validate(self, request: Any) -> int:
        """The request's cost in images; refuses an empty or ambiguous JSON request."""
        if isinstance(request, _Decoded):
            return 1
        given = [name for name in ("images", "pixels") if getattr(request, name) is not None]
        if len(given) != 1:
            raise ValidationError("expected exactly one of 'images' (base64 PNG/JPEG) or 'pixels'", field="images")
        n = len(getattr(request, given[0]))
        if n == 0:
            raise ValidationError("expected at least one image", field=given[0])
        return n

    def _decode(self, data: bytes, where: str) -> NDArray[np.uint8]:
        m = self.meta
        return decode_image(data, where=where, channels=m.channels, size=(m.height, m.width), resize=True)

    def _json_images(self, request: ClassifyRequest) -> NDArray[np.uint8]:
        m = self.meta
        out = np.empty((self.validate(request), m.height, m.width, m.channels), np.uint8)
        if request.images is not None:
            for i, text in enumerate(request.images):
                try:
                    data = base64.b64decode(text, validate=True)
                except (binascii.Error, ValueError):
                    raise ValidationError("not valid base64", field=f"images[{i}]") from None
                try:
                    out[i] = self._decode(data, f"images[{i}]")
                except BadImageError as err:
                    raise ValidationError(err.reason, field=f"images[{i}]") from None
            return out
        assert request.pixels is not None
        for i, value in enumerate(request.pixels):
            out[i] = self._pixels(value, f"pixels[{i}]")
        return out

    def _pixels(self, value: Any, field: str) -> NDArray[np.uint8]:
        m = self.meta
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValidationError("expected a rectangular array of numbers 0..255", field=field) from None
        if array.ndim == 2:
            array = array[..., None]
        if array.shape != (m.height, m.width, m.channels):
            raise ValidationError(
                f"expected {m.height} x {m.width}" + (f" x {m.channels}" if m.channels > 1 else "")
                + f" pixels, got {' x '.join(map(str, array.shape))}",
                field=field,
            )  # fmt: skip
        if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 255:
            raise ValidationError("expected pixel values in 0..255", field=field)
        return np.rint(array).astype(np.uint8)

    def classify_batch(self, batch: Sequence[Any]) -> list[Any]:
        """One ONNX call for the images of every request of the micro-batch (per chunk of MAX_BATCH)."""
        arrays: list[NDArray[np.uint8] | None] = []
        results: list[Any] = [None] * len(batch)
        for i, request in enumerate(batch):
            try:
                arrays.append(request.array if isinstance(request, _Decoded) else self._json_images(request))
            except MlscaleError as err:
                results[i] = err
                arrays.append(None)
        good = [a for a in arrays if a is not None]
        if good:
            probs = self.classifier.predict_proba(np.concatenate(good))
            start = 0
            for i, (request, array) in enumerate(zip(batch, arrays, strict=True)):
                if array is None:
                    continue
                idx, p = top_k(probs[start : start + len(array)], request.k)
                start += len(array)
                predictions = [
                    Prediction(labels=self._labels[row].tolist(), probabilities=[round(float(v), 6) for v in prow])
                    for row, prow in zip(idx, p, strict=True)
                ]
                results[i] = ClassifyResponse(model=self.model_ref, version=self.version, predictions=predictions)
        return results
