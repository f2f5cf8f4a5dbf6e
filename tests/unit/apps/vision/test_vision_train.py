"""Training the vision CNN: the quality bar on a CI-sized subset, seeding, splits, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.unit.apps.vision.conftest import FAST, subset

from mlscale.apps.vision.data import ArrayDataset
from mlscale.apps.vision.model import VisionModel
from mlscale.apps.vision.params import VisionParams
from mlscale.apps.vision.train_local import augment, evaluate, fit, split_indices
from mlscale.errors import ValidationError


def test_small_subset_reaches_the_bar(small_model: VisionModel, fm_test: ArrayDataset) -> None:
    # 4,000 training images, 3 epochs of a width-8 network: well above chance (10%) and a linear model's ~75%.
    scores = evaluate(small_model, fm_test)
    assert scores["images"] == 2000
    assert scores["accuracy"] >= 0.78, scores
    assert len(small_model.history) == 3
    assert small_model.history[-1]["train_loss"] < small_model.history[0]["train_loss"]
    assert small_model.meta.labels[0] == "T-shirt/top"
    assert 0.2 < small_model.meta.mean < 0.4  # computed on the training split


def test_the_same_seed_gives_the_same_model(fm_train: ArrayDataset) -> None:
    params = VisionParams(epochs=1, width=4, batch_size=128)
    data = subset(fm_train, 600)
    a, b = fit(data, params, threads=1, log=None), fit(data, params, threads=1, log=None)
    for (name, x), (_, y) in zip(a.net.state_dict().items(), b.net.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    c = fit(data, VisionParams(epochs=1, width=4, batch_size=128, seed=1), threads=1, log=None)
    assert not torch.equal(a.net.state_dict()["0.weight"], c.net.state_dict()["0.weight"])


def test_early_stopping_keeps_the_best_epoch(fm_train: ArrayDataset) -> None:
    # A learning rate of ~0 never improves on the first epoch's validation accuracy by much: stop after patience.
    params = VisionParams(epochs=6, width=4, batch_size=256, lr=1e-9, patience=1, augment=False)
    model = fit(subset(fm_train, 600), params, threads=1, log=None)
    assert len(model.history) < 6


def test_split_is_stratified_and_disjoint() -> None:
    targets = np.repeat(np.arange(10), 100)
    tr, va = split_indices(targets, 0.1, seed=3)
    assert len(va) == 100
    assert len(tr) == 900
    assert not set(tr.tolist()) & set(va.tolist())
    assert np.bincount(targets[va]).tolist() == [10] * 10


def test_augment_shifts_and_flips_within_the_padding() -> None:
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3:5, 3:5] = 1.0
    gen = torch.Generator().manual_seed(0)
    y = augment(x, 2, gen)
    assert y.shape == x.shape
    assert torch.allclose(y.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # a 2-pixel shift keeps the blob inside
    assert len({tuple(t.nonzero().flatten().tolist()) for t in y}) > 5  # not one fixed transform
    assert torch.equal(augment(x, 0, torch.Generator().manual_seed(1)).sum(), x.sum())


def test_bad_parameters_name_the_field(fm_train: ArrayDataset) -> None:
    with pytest.raises(ValidationError, match="val_fraction"):
        fit(fm_train, VisionParams(val_fraction=1.5))
    with pytest.raises(ValidationError, match="on_error"):
        VisionParams(on_error="ignore").validate()
    assert FAST.validate() is FAST
