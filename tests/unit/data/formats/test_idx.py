"""IDX reader: the real Fashion-MNIST files and hand-made broken ones."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from mlscale.data.formats.idx import read_idx
from mlscale.errors import DataFormatError


def test_fashion_mnist_train_files(shared_data: Path) -> None:
    images = read_idx(shared_data / "fashion-mnist/train-images-idx3-ubyte.gz", ndim=3)
    labels = read_idx(shared_data / "fashion-mnist/train-labels-idx1-ubyte.gz", ndim=1)
    assert images.shape == (60_000, 28, 28)
    assert images.dtype == np.uint8
    assert labels.shape == (60_000,)
    assert np.bincount(labels).tolist() == [6_000] * 10
    assert images.flags.writeable


def test_plain_and_gzip_agree(tmp_path: Path) -> None:
    values = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    raw = struct.pack(">I3I", 0x0C03, 2, 3, 4) + values.tobytes()
    (tmp_path / "a.idx").write_bytes(raw)
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(raw))
    plain = read_idx(tmp_path / "a.idx")
    packed = read_idx(tmp_path / "a.idx.gz")
    assert plain.dtype == np.dtype("int32")
    assert plain.dtype.isnative
    np.testing.assert_array_equal(plain, np.arange(24).reshape(2, 3, 4))
    np.testing.assert_array_equal(plain, packed)


def test_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataFormatError, match="bad IDX magic number 0x01020801") as info:
        read_idx(path)
    assert info.value.path == str(path)


def test_truncated_data(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(struct.pack(">II", 0x801, 5) + b"\x01\x02")
    with pytest.raises(DataFormatError, match=r"shape \(5,\) \(5 bytes of data\).*holds 2 bytes"):
        read_idx(path)


def test_wrong_ndim(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(struct.pack(">II", 0x801, 1) + b"\x07")
    with pytest.raises(DataFormatError, match="expected a 3-dimensional IDX array, the header says 1"):
        read_idx(path, ndim=3)
    assert read_idx(path).tolist() == [7]


def test_too_short(tmp_path: Path) -> None:
    path = tmp_path / "tiny"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataFormatError, match="too short"):
        read_idx(path)
