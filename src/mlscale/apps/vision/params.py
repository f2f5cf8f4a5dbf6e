"""The vision model's parameters: one frozen params class, the single home of every default.

Each field is made with :func:`~mlscale.apps.base.param`, so the generic command
line generates its flag (``--batch-size``, ``--augment/--no-augment``...) with
its help and default; :meth:`VisionParams.validate` names the offending field,
and :meth:`VisionParams.to_dict` / :meth:`VisionParams.from_dict` round-trip
through a registry manifest. CPU threads are the engine's (``--threads``), not
a parameter of the model.

The defaults were chosen on a validation split carved from the Fashion-MNIST
training set (``val_fraction``), never on the test set. ``epochs=15``: with 8
the validation accuracy was still rising (90.8, 91.8, 92.5, 92.5% at epochs
5-8, train accuracy below it) and early stopping (``patience``) ends a run
that stops improving, so a longer budget costs nothing where it does not help.

>>> p = VisionParams(epochs=2)
>>> VisionParams.from_dict(p.to_dict()) == p
True
>>> VisionParams(lr=-1).validate()
Traceback (most recent call last):
...
mlscale.errors.ValidationError: lr: expected a number > 0, got -1
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from mlscale.apps.base import param, params_from_dict, params_to_dict
from mlscale.errors import ValidationError

__all__ = ["ON_ERROR", "VisionParams"]

#: What to do with an unreadable image: stop with an error naming it, or skip and count it.
ON_ERROR = ("raise", "skip")


@dataclass(frozen=True)
class VisionParams:
    """Training parameters of the vision CNN (see each field's ``help``)."""

    family: ClassVar[str] = "cnn"

    epochs: int = param(15, "maximum passes over the training data", minimum=1)
    batch_size: int = param(128, "images per optimisation step", minimum=1)
    lr: float = param(0.003, "peak learning rate of AdamW (one-cycle schedule)")
    weight_decay: float = param(5e-4, "AdamW weight decay", minimum=0)
    seed: int = param(0, "random seed (split, initialisation, shuffling, augmentation)")
    augment: bool = param(True, "random crop with padding and horizontal flips")
    crop_padding: int = param(2, "pixels of zero padding before the random crop", minimum=0)
    patience: int = param(3, "epochs without a better validation accuracy before stopping", minimum=0)
    val_fraction: float = param(0.1, "share of the training data held out for validation and early stopping")
    width: int = param(32, "channels of the first convolution (x2 and x4 deeper in)", minimum=1)
    dropout: float = param(0.3, "dropout before the classifier", minimum=0)
    device: str = param("auto", "torch device: auto (CUDA when present), cpu, cuda[:N]")
    on_error: str = param("raise", "unreadable images: raise (stop) or skip (count them)", choices=ON_ERROR)

    def validate(self) -> VisionParams:
        """Return ``self`` when every field is in range; else raise :class:`ValidationError` naming it."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "width": self.width, "lr": self.lr}
        for name, value in positive.items():
            if not value > 0:
                raise ValidationError(f"expected a number > 0, got {value!r}", field=name)
        for name, value in {"patience": self.patience, "crop_padding": self.crop_padding}.items():
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
        return params_to_dict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VisionParams:
        """The inverse of :meth:`to_dict`, validated; keys it does not have (an older version's) are ignored."""
        return params_from_dict(cls, values).validate()
