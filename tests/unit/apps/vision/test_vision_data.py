"""Reading images: the layouts, and every kind of bad file (an error naming it, or skipped and counted)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from tests.unit.apps.vision.conftest import bad_images, png

from mlscale.apps.vision.data import BadImageError, FileDataset, decode_image, open_dataset
from mlscale.errors import DataError, DatasetNotFoundError

REASONS = {
    "text.png": "not a PNG or JPEG",
    "truncated.png": "unreadable",
    "cmyk.jpg": "unsupported image mode 'CMYK'",
    "bomb.png": "decompression bomb",
    "gif.png": "not a PNG or JPEG",
}


def test_catalogue_idx_and_folder_layouts(shared_data: Path, image_folder: Path) -> None:
    fm = open_dataset("fashion-mnist", data_dir=shared_data, split="test")
    assert len(fm) == 10_000
    assert fm.shape == (28, 28, 1)
    assert fm.class_counts().tolist() == [1000] * 10
    idx = open_dataset(shared_data / "fashion-mnist", data_dir=shared_data, split="test")
    assert len(idx) == 10_000
    train = open_dataset(image_folder, data_dir=shared_data)
    test = open_dataset(image_folder, data_dir=shared_data, split="test", labels=train.labels)
    assert isinstance(train, FileDataset)
    assert (len(train), len(test)) == (200, 100)
    assert train.shape == (28, 28, 1)
    x, y, kept = train.read(np.array([0, 5, 7]))
    assert x.shape == (3, 28, 28, 1)
    assert x.dtype == np.uint8
    assert kept.tolist() == [0, 5, 7]
    assert [train.labels[i] for i in y] == [train.paths[i].parent.name for i in (0, 5, 7)]
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        open_dataset(image_folder / "nope", data_dir=shared_data)


def test_path_label_tables(tmp_path: Path, image_folder: Path, shared_data: Path) -> None:
    files = sorted((image_folder / "train").rglob("*.png"))[:40]
    rows = {"path": [str(f.relative_to(image_folder)) for f in files], "label": [f.parent.name for f in files]}
    pq.write_table(pa.table(rows), image_folder / "list.parquet")
    csv = image_folder / "list.csv"
    csv.write_text("path,label\n" + "".join(f"{p},{lab}\n" for p, lab in zip(rows["path"], rows["label"], strict=True)))
    a = open_dataset(image_folder / "list.parquet", data_dir=shared_data)
    b = open_dataset(csv, data_dir=shared_data)
    assert len(a) == len(b) == 40
    np.testing.assert_array_equal(a.read(np.arange(40))[0], b.read(np.arange(40))[0])
    (tmp_path / "t.csv").write_text("file,label\nx.png,a\n")
    with pytest.raises(DataError, match="no 'path' column"):
        open_dataset(tmp_path / "t.csv", data_dir=shared_data)


@pytest.mark.parametrize("name", sorted(REASONS))
def test_each_bad_image_is_named(name: str) -> None:
    with pytest.raises(BadImageError, match=REASONS[name]) as info:
        decode_image(bad_images()[name], where=f"x/{name}", channels=1, size=(28, 28))
    assert str(info.value).startswith(f"x/{name}: ")
    assert info.value.http_status == 422


def test_size_is_checked_or_resized() -> None:
    big = png(np.full((32, 30), 200, np.uint8))
    with pytest.raises(BadImageError, match="image is 32x30 .* expected 28x28"):
        decode_image(big, where="b.png", channels=1, size=(28, 28))
    out = decode_image(big, where="b.png", channels=1, size=(28, 28), resize=True)
    assert out.shape == (28, 28, 1)
    assert int(out[10, 10, 0]) == 200
    rgb = decode_image(png(np.zeros((28, 28, 3), np.uint8)), where="c.png")
    assert rgb.shape == (28, 28, 3)
    assert decode_image(png(np.zeros((28, 28, 3), np.uint8)), where="c.png", channels=1).shape == (28, 28, 1)
    jpeg = io.BytesIO()
    Image.fromarray(np.full((28, 28, 3), 90, np.uint8)).save(jpeg, format="JPEG")
    grey = decode_image(jpeg.getvalue(), where="d.jpg", channels=1, size=(28, 28))
    assert abs(int(grey[5, 5, 0]) - 90) <= 3


def test_a_folder_with_bad_files_raises_or_skips(tmp_path: Path, shared_data: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{i}.png").write_bytes(png(np.full((28, 28), 40 * i, np.uint8)))
    (tmp_path / "a" / "z-wrong-size.png").write_bytes(png(np.zeros((14, 14), np.uint8)))
    for name, data in bad_images().items():
        (tmp_path / "b" / f"z-{name}").write_bytes(data)
    strict = open_dataset(tmp_path, data_dir=shared_data)
    with pytest.raises(BadImageError, match="z-wrong-size.png: image is 14x14"):
        list(strict.batches(4))
    lenient = open_dataset(tmp_path, data_dir=shared_data, on_error="skip")
    seen = sum(len(y) for _, y, _ in lenient.batches(4))
    assert seen == 6
    assert lenient.skipped == 6
    assert sorted(Path(p).name for p in lenient.bad_files) == sorted(
        ["z-wrong-size.png", *(f"z-{n}" for n in bad_images())]
    )
