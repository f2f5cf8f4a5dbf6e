"""A small vision model trained once on a Fashion-MNIST subset, its registry, and image folders."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from PIL import Image

from mlscale.apps.vision.codec import publish
from mlscale.apps.vision.data import ArrayDataset, open_dataset
from mlscale.apps.vision.model import VisionModel
from mlscale.apps.vision.params import VisionParams
from mlscale.apps.vision.train_local import fit
from mlscale.registry import open_store

#: CI-sized training: a narrow network, a few epochs on a few thousand images (seconds).
FAST = VisionParams(epochs=3, width=8, batch_size=64, lr=0.005, patience=0)


def subset(ds: ArrayDataset, n: int, offset: int = 0) -> ArrayDataset:
    return ArrayDataset(ds.images[offset : offset + n], ds.targets[offset : offset + n], ds.labels, where=ds.where)


@pytest.fixture(scope="session")
def fm_train(shared_data: Path) -> ArrayDataset:
    ds = open_dataset("fashion-mnist", data_dir=shared_data)
    assert isinstance(ds, ArrayDataset)
    return subset(ds, 4000)


@pytest.fixture(scope="session")
def fm_test(shared_data: Path) -> ArrayDataset:
    ds = open_dataset("fashion-mnist", data_dir=shared_data, split="test")
    assert isinstance(ds, ArrayDataset)
    return subset(ds, 2000)


@pytest.fixture(scope="session")
def small_model(fm_train: ArrayDataset) -> VisionModel:
    return fit(fm_train, FAST, threads=1, progress=False, log=None)


@pytest.fixture(scope="session")
def vision_registry(tmp_path_factory: pytest.TempPathFactory, small_model: VisionModel) -> Path:
    root = tmp_path_factory.mktemp("vision-registry")
    publish(open_store(root), "fm", small_model, metrics={}, engine="local", data_fingerprint="test")
    return root


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array).save(buf, format="PNG")
    return buf.getvalue()


def bad_images() -> dict[str, bytes]:
    """One file per way an image can be unusable (name -> bytes)."""
    good = png(np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8))  # noise: a long IDAT
    cmyk = io.BytesIO()
    Image.new("CMYK", (28, 28)).save(cmyk, format="JPEG")
    bomb = io.BytesIO()
    Image.new("L", (6000, 6000)).save(bomb, format="PNG")  # 36M pixels in ~40 KB
    gif = io.BytesIO()
    Image.new("L", (28, 28)).save(gif, format="GIF")
    return {
        "text.png": b"this is not an image",
        "truncated.png": good[: len(good) * 2 // 3],
        "cmyk.jpg": cmyk.getvalue(),
        "bomb.png": bomb.getvalue(),
        "gif.png": gif.getvalue(),
    }


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory, fm_test: ArrayDataset) -> Path:
    """300 real test images as PNG, one sub-folder per class (train/ and test/ halves)."""
    root = tmp_path_factory.mktemp("images")
    for i in range(300):
        split = "train" if i < 200 else "test"
        label = fm_test.labels[int(fm_test.targets[i])].replace("/", "-")
        folder = root / split / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:04d}.png").write_bytes(png(fm_test.images[i]))
    return root
