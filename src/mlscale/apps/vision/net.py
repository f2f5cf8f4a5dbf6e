"""The vision application's network: a small CNN, built as a plain ``torch.nn.Sequential``.

Four (3x3 convolution, batch norm, ReLU) blocks at three resolutions with 2x2
max pooling and dropout between them (``base`` channels at full size, twice
that twice at half size, four times at a quarter), then a hidden dense layer
with batch norm and dropout, then the class logits. It was sized to reach 93%
on Fashion-MNIST in a few CPU-minutes per epoch. A ``Sequential`` (no custom
class) keeps the weights' names stable (``0.weight``...) for the safetensors
file, and the ONNX export simple.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlscale.apps.vision._deps import require
from mlscale.errors import ValidationError

__all__ = ["NetSpec", "build_net", "count_parameters"]


@dataclass(frozen=True)
class NetSpec:
    """What fixes the network's shape: input channels and size, classes, width, dropout.

    >>> NetSpec(channels=1, height=28, width=28, classes=10).feature_size
    1152
    """

    channels: int
    height: int
    width: int
    classes: int
    base: int = 32
    dropout: float = 0.3

    def __post_init__(self) -> None:
        if self.height < 8 or self.width < 8:
            raise ValidationError(
                f"expected images of at least 8x8, got {self.height}x{self.width}", field="image size"
            )
        if self.channels not in (1, 3):
            raise ValidationError(f"expected 1 (grey) or 3 (RGB) channels, got {self.channels}", field="channels")
        if self.classes < 2:
            raise ValidationError(f"expected at least 2 classes, got {self.classes}", field="classes")

    @property
    def feature_size(self) -> int:
        """Inputs of the dense layer: the last block's channels times the area after three poolings."""
        return 4 * self.base * (self.height // 8) * (self.width // 8)


def build_net(spec: NetSpec) -> Any:
    """A freshly initialised ``torch.nn.Sequential`` for ``spec`` (input N x C x H x W float32, output logits)."""
    torch = require("torch")
    nn = torch.nn
    b = spec.base

    def block(cin: int, cout: int) -> list[Any]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(spec.channels, b),
        nn.MaxPool2d(2),
        *block(b, 2 * b),
        *block(2 * b, 2 * b),
        nn.MaxPool2d(2),
        nn.Dropout(0.1),
        *block(2 * b, 4 * b),
        nn.MaxPool2d(2),
        nn.Dropout(0.2),
        nn.Flatten(),
        nn.Linear(spec.feature_size, 256, bias=False),
        nn.BatchNorm1d(256),
        nn.ReLU(),
        nn.Dropout(spec.dropout),
        nn.Linear(256, spec.classes),
    )


def count_parameters(net: Any) -> int:
    """Trainable parameters of ``net``."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad))
