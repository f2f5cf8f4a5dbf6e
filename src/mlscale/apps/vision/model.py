"""A trained vision model: the network plus what serving needs to feed it (labels, size, normalisation).

:class:`VisionMeta` is plain JSON (it goes into the registry manifest);
:func:`preprocess` turns ``uint8`` images into the network's normalised
``float32`` input with NumPy alone, so that serving and batch inference need
ONNX Runtime but not torch.

>>> import numpy as np
>>> meta = VisionMeta(labels=("a", "b"), channels=1, height=2, width=2, mean=0.5, std=0.25)
>>> preprocess(np.full((1, 2, 2, 1), 255, np.uint8), meta)[0, 0].tolist()
[[2.0, 2.0], [2.0, 2.0]]
>>> fm = VisionMeta(labels=tuple("abcdefghij"), channels=1, height=28, width=28, mean=0.29, std=0.35)
>>> VisionMeta.from_dict(fm.to_dict()) == fm
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlscale.apps.vision.net import NetSpec
from mlscale.apps.vision.params import VisionParams
from mlscale.errors import ArtifactError, ValidationError

__all__ = ["VisionMeta", "VisionModel", "preprocess", "softmax", "top_k"]


@dataclass(frozen=True)
class VisionMeta:
    """What a served model must know besides its weights.

    Pixels are scaled to [0, 1], then ``(x - mean) / std``; images of another
    size are resized (bilinear) to ``height x width`` and converted to grey
    (``channels=1``) or RGB (``channels=3``).
    """

    labels: tuple[str, ...]
    channels: int
    height: int
    width: int
    mean: float
    std: float
    base: int = 32
    dropout: float = 0.3

    @property
    def spec(self) -> NetSpec:
        """The network shape these facts fix."""
        return NetSpec(self.channels, self.height, self.width, len(self.labels), self.base, self.dropout)

    def to_dict(self) -> dict[str, Any]:
        """JSON values (labels as a list)."""
        out = dataclasses.asdict(self)
        out["labels"] = list(self.labels)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VisionMeta:
        """The inverse of :meth:`to_dict`; a missing or mistyped field raises :class:`ArtifactError`."""
        try:
            meta = cls(
                labels=tuple(str(v) for v in values["labels"]),
                channels=int(values["channels"]),
                height=int(values["height"]),
                width=int(values["width"]),
                mean=float(values["mean"]),
                std=float(values["std"]),
                base=int(values.get("base", 32)),
                dropout=float(values.get("dropout", 0.3)),
            )
            _ = meta.spec  # checks sides, channels and classes
        except (KeyError, TypeError, ValueError, ValidationError) as err:
            raise ArtifactError(f"bad vision metadata: {type(err).__name__} {err}") from None
        if not meta.std > 0:
            raise ArtifactError(f"bad vision metadata: std must be > 0, got {meta.std}")
        return meta


@dataclass
class VisionModel:
    """A fitted network (``torch.nn.Module`` in eval mode) with its metadata, parameters and history."""

    net: Any
    meta: VisionMeta
    params: VisionParams = field(default_factory=VisionParams)
    history: list[dict[str, float]] = field(default_factory=list)
    skipped: int = 0
    #: The exported ONNX graph when the model was loaded from the registry (batch inference runs it).
    onnx: bytes | None = None

    def predict_proba(self, images: NDArray[np.uint8], *, batch_size: int = 512) -> NDArray[np.float32]:
        """Class probabilities with torch, eagerly (the serving path uses ONNX Runtime instead)."""
        from mlscale.apps.vision._deps import require

        torch = require("torch")
        device = next(self.net.parameters()).device
        self.net.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = torch.from_numpy(preprocess(images[start : start + batch_size], self.meta)).to(device)
                out.append(torch.softmax(self.net(x), dim=1).float().cpu().numpy())
        if not out:
            return np.zeros((0, len(self.meta.labels)), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def preprocess(images: NDArray[np.uint8], meta: VisionMeta) -> NDArray[np.float32]:
    """``N x H x W x C`` (or ``N x H x W``) uint8 -> normalised ``N x C x H x W`` float32."""
    if images.ndim == 3:
        images = images[..., None]
    x = images.astype(np.float32).transpose(0, 3, 1, 2)
    scale = np.float32(1.0 / (255.0 * meta.std))
    shift = np.float32(meta.mean / meta.std)
    return np.ascontiguousarray(x * scale - shift)


def softmax(logits: NDArray[np.float32]) -> NDArray[np.float32]:
    """Row-wise softmax, stable for large logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: NDArray[np.float32] = (e / e.sum(axis=1, keepdims=True)).astype(np.float32, copy=False)
    return out


def top_k(probs: NDArray[np.float32], k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Indices and probabilities of the ``k`` most likely classes per row, most likely first.

    >>> idx, p = top_k(np.array([[0.1, 0.7, 0.2]], np.float32), 2)
    >>> idx.tolist(), [round(float(v), 2) for v in p[0]]
    ([[1, 2]], [0.7, 0.2])
    """
    k = min(k, probs.shape[1])
    idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return idx.astype(np.int64), np.take_along_axis(probs, idx, axis=1)
