"""The vision model's parameters: one frozen dataclass, the single home of every default.

Each field carries ``metadata={"help": ...}`` so that a command line (or any
other front end) can be generated from the class; :meth:`VisionParams.validate`
names the offending field, and :meth:`VisionParams.to_dict` /
:meth:`VisionParams.from_dict` round-trip through a registry manifest.

The defaults were chosen on a validation split carved from the Fashion-MNIST
training set (``val_fraction``), never on the test set.

>>> p = VisionParams(epochs=2)
>>> VisionParams.from_dict(p.to_dict()) == p
True
>>> VisionParams(lr=-1).validate()
Traceback (most recent call last):
...
mlscale.errors.ValidationError: lr: expected a number > 0, got -1
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlscale.errors import ValidationError

__all__ = ["ON_ERROR", "VisionParams"]

#: What to do with an unreadable image: stop with an error naming it, or skip and count it.
ON_ERROR = ("raise", "skip")


@dataclass(frozen=True)
class VisionParams:
    """Training parameters of the vision CNN (see each field's ``help``)."""

    epochs: int = field(default=8, metadata={"help": "maximum passes over the training data"})
    batch_size: int = field(default=128, metadata={"help": "images per optimisation step"})
    lr: float = field(default=0.003, metadata={"help": "peak learning rate of AdamW (one-cycle schedule)"})
    weight_decay: float = field(default=5e-4, metadata={"help": "AdamW weight decay"})
    seed: int = field(default=0, metadata={"help": "random seed (split, initialisation, shuffling, augmentation)"})
    threads: int = field(default=0, metadata={"help": "CPU threads for torch (0: torch's default)"})
    augment: bool = field(default=True, metadata={"help": "random crop with padding and horizontal flips"})
    crop_padding: int = field(default=2, metadata={"help": "pixels of zero padding before the random crop"})
    patience: int = field(default=3, metadata={"help": "epochs without a better validation accuracy before stopping"})
    val_fraction: float = field(
        default=0.1, metadata={"help": "share of the training data held out for validation and early stopping"}
    )
    width: int = field(default=32, metadata={"help": "channels of the first convolution (x2 and x4 deeper in)"})
    dropout: float = field(default=0.3, metadata={"help": "dropout before the classifier"})
    device: str = field(default="auto", metadata={"help": "torch device: auto (CUDA when present), cpu, cuda"})
    on_error: str = field(default="raise", metadata={"help": "unreadable images: raise (stop) or skip (count them)"})

    def validate(self) -> VisionParams:
        """Return ``self`` when every field is in range; else raise :class:`ValidationError` naming it."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "width": self.width, "lr": self.lr}
        for name, value in positive.items():
            if not value > 0:
                raise ValidationError(f"expected a number > 0, got {value!r}", field=name)
        for name, value in {
            "threads": self.threads,
            "patience": self.patience,
            "crop_padding": self.crop_padding,
        }.items():
            if value < 0:
                raise ValidationError(f"expected a number >= 0, got {value!r}", field=name)
        if self.weight_decay < 0:
            raise ValidationError(f"expected a number >= 0, got {self.weight_decay!r}", field="weight_decay")
        if not 0 < self.val_fraction < 1:
            raise ValidationError(f"expected a share between 0 and 1, got {self.val_fraction!r}", field="val_fraction")
        if not 0 <= self.dropout < 1:
            raise ValidationError(f"expected a share in [0, 1), got {self.dropout!r}", field="dropout")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValidationError(f"expected auto, cpu or cuda[:N], got {self.device!r}", field="device")
        if self.on_error not in ON_ERROR:
            raise ValidationError(f"expected one of {', '.join(ON_ERROR)}, got {self.on_error!r}", field="on_error")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, for a manifest's ``params``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VisionParams:
        """The inverse of :meth:`to_dict`; unknown keys raise :class:`ValidationError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValidationError(f"unknown parameter(s) {unknown}; expected some of {sorted(names)}", field="params")
        return cls(**dict(values)).validate()
