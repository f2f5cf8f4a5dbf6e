"""Sort the column indices of every CSR row in place, on several threads.

scipy's ``sort_indices`` (a C++ sort of each row) releases the GIL but uses
one thread. The rows are cut into pieces of about equal non-zeros and each
piece is sorted by scipy on its own thread, in place: a piece is a CSR matrix
whose ``indices`` and ``data`` are views of the whole's arrays, so nothing is
copied and no extra memory is needed (a piece that scipy did copy is written
back).

>>> import numpy as np, scipy.sparse as sp
>>> m = sp.csr_matrix((np.arange(4, dtype=np.float32), np.array([3, 1, 2, 0], np.int32),
...                    np.array([0, 2, 4], np.int32)), shape=(2, 4))
>>> sort_rows(m, workers=2, min_nnz=0)
>>> m.indices.tolist(), m.data.tolist(), m.has_sorted_indices
([1, 3, 0, 2], [1.0, 0.0, 3.0, 2.0], True)
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from mlscale.data.pipeline import ordered_map

__all__ = ["sort_rows"]

# Below this many non-zeros one thread is faster than handing pieces around.
_MIN_PARALLEL_NNZ = 1 << 20
_PIECES_PER_WORKER = 4


def sort_rows(csr: sp.csr_matrix, *, workers: int, min_nnz: int = _MIN_PARALLEL_NNZ) -> None:
    """Sort each row's column indices (and values alongside) in place; marks ``csr`` sorted."""
    nnz = int(csr.indptr[-1])
    if workers <= 1 or nnz < max(min_nnz, 1) or csr.shape[0] < 2:
        csr.sort_indices()
        return
    indptr, indices, data = csr.indptr, csr.indices, csr.data
    targets = np.linspace(0, nnz, workers * _PIECES_PER_WORKER + 1)
    bounds = np.unique(np.r_[0, np.searchsorted(indptr, targets[1:-1]), csr.shape[0]])

    def sort_piece(rows: tuple[int, int]) -> None:
        r0, r1 = rows
        a, b = int(indptr[r0]), int(indptr[r1])
        if b - a < 2:
            return
        piece = sp.csr_matrix((r1 - r0, csr.shape[1]), dtype=data.dtype)
        # Local offsets fit the indices' type; scipy wants both index arrays of one type.
        piece.indptr = (indptr[r0 : r1 + 1] - a).astype(indices.dtype)
        piece.indices = indices[a:b]
        piece.data = data[a:b]
        piece.has_sorted_indices = False
        piece.sort_indices()
        if not (np.shares_memory(piece.indices, indices) and np.shares_memory(piece.data, data)):
            indices[a:b] = piece.indices
            data[a:b] = piece.data

    pieces = [(int(r0), int(r1)) for r0, r1 in itertools.pairwise(bounds)]
    for _ in ordered_map(sort_piece, pieces, workers=workers, ahead=len(pieces)):
        pass
    csr.has_sorted_indices = True
