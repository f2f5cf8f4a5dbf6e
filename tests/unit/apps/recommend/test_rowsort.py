from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mlscale.apps.recommend.rowsort import sort_rows


def _unsorted(seed: int, rows: int = 3000, cols: int = 500, nnz: int = 200_000) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    counts = np.bincount(rng.zipf(1.3, nnz) % rows, minlength=rows)  # skewed rows: uneven pieces
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int32)
    indices = rng.integers(0, cols, nnz).astype(np.int32)
    data = rng.random(nnz).astype(np.float32)
    m = sp.csr_matrix((data, indices, indptr), shape=(rows, cols))
    m.has_sorted_indices = False
    return m


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_rows_sorted_in_place_like_scipy(workers: int) -> None:
    m = _unsorted(workers)
    expected = m.copy()
    expected.sort_indices()
    indices_before, data_before = m.indices, m.data
    sort_rows(m, workers=workers, min_nnz=0)
    assert m.indices is indices_before
    assert m.data is data_before
    assert np.array_equal(m.indptr, expected.indptr)
    assert np.array_equal(m.indices, expected.indices)
    # Values move with their columns (ties between equal columns may come in any order).
    m.sum_duplicates()
    expected.sum_duplicates()
    assert np.allclose(m.toarray(), expected.toarray())
    assert m.has_sorted_indices


def test_tiny_and_empty_rows() -> None:
    m = sp.csr_matrix((3, 3), dtype=np.float32)
    sort_rows(m, workers=2, min_nnz=0)
    assert m.nnz == 0
    assert m.has_sorted_indices
