from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlscale.apps.recommend.ingest import ingest_matrix
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.data.readers import InteractionReader
from mlscale.errors import DataError

INT64 = pa.int64()

#: The ``batches`` fixture (tests/unit/conftest.py).
BatchMaker = Callable[..., list[pa.RecordBatch]]


def dense_by_id(m: InteractionMatrix) -> np.ndarray:
    return m.csr[np.argsort(m.user_ids)][:, np.argsort(m.item_ids)].toarray()


def test_matrix_matches_in_memory_reference_with_spilling(tmp_path: Path, batches: BatchMaker) -> None:
    rng = np.random.default_rng(7)
    users = rng.integers(0, 3000, 400_000)
    items = rng.zipf(1.5, 400_000) % 5000
    # 16 MiB budget: the buffer spills to disk several times.
    m = ingest_matrix(batches(users, items, 50_000), memory_budget=16 << 20, spill_dir=tmp_path)
    ref = InteractionMatrix.from_arrays(users, items)
    assert m.nnz == ref.nnz  # duplicates merged
    assert np.array_equal(dense_by_id(m), ref.csr.toarray())
    assert m.csr.has_sorted_indices
    assert list(tmp_path.iterdir()) == []  # spill files removed


def test_string_and_sparse_integer_ids(batches: BatchMaker) -> None:
    users = np.array(["b", "a", "b", "c"])
    items = np.array(["x", "y", "x", "z"])
    m = ingest_matrix(batches(users, items, 2, pa.string()))
    assert m.user_ids.tolist() == ["b", "a", "c"]  # first appearance
    assert m.csr[0, 0] == 2.0
    big = np.array([10**15, 3, 10**15])
    m2 = ingest_matrix(batches(big, np.array([1, 2, 3]), 1))
    assert m2.user_index(np.array([10**15, 3, 4])).tolist() == [0, 1, -1]


def test_real_movielens_into_csr(shared_data: Path) -> None:
    m = ingest_matrix(InteractionReader(shared_data / "movielens-100k" / "u.data", block_bytes=1 << 18))
    assert m.shape == (943, 1682)
    assert m.nnz == 100_000
    # user 196 rated item 242 with 3 (the first line of u.data)
    assert m.csr[m.user_index([196])[0], m.item_index([242])[0]] == 3.0


def test_save_load_round_trip(tmp_path: Path) -> None:
    m = InteractionMatrix.from_arrays(np.array([1, 2, 2]), np.array([3, 3, 4]))
    m.save(tmp_path / "m")
    back = InteractionMatrix.load(tmp_path / "m", mmap=True)
    assert (back.csr != m.csr).nnz == 0
    assert back.fingerprint() == m.fingerprint()


def test_empty_stream_is_an_error() -> None:
    with pytest.raises(DataError, match="no interactions"):
        ingest_matrix([])


@pytest.mark.parametrize("layout", ["grouped", "grouped-spanning", "shuffled"])
def test_grouped_and_shuffled_logs_build_the_same_matrix(layout: str, tmp_path: Path, batches: BatchMaker) -> None:
    # Grouped logs take the scatter's copy paths; a user spanning batches, or shuffled rows, the general one.
    rng = np.random.default_rng(3)
    users = np.sort(rng.integers(0, 2000, 300_000))
    items = rng.integers(0, 700, 300_000)
    if layout == "grouped-spanning":
        users = np.r_[users, users[:5000]]  # users seen again at the end: their rows are not one run
        items = np.r_[items, items[:5000]]
    if layout == "shuffled":
        perm = rng.permutation(users.size)
        users, items = users[perm], items[perm]
    m = ingest_matrix(batches(users, items, 7_000), memory_budget=16 << 20, spill_dir=tmp_path)
    ref = InteractionMatrix.from_arrays(users, items)
    assert m.nnz == ref.nnz
    assert np.array_equal(dense_by_id(m), ref.csr.toarray())
    assert m.csr.has_canonical_format
