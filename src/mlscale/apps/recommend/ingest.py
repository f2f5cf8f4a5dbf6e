"""Out-of-core ingest of an interaction stream into a CSR :class:`~mlscale.apps.recommend.matrix.InteractionMatrix`.

It takes any iterable of record batches in the reader's schema (see
:mod:`mlscale.data.readers`), so the input may be far larger than memory.

The build is two passes over a spill file: pass one maps ids to indices
(in order of first appearance), counts each user's interactions and appends
the index triples to a scratch file once the in-memory buffer passes half of
``memory_budget``; pass two allocates the final CSR arrays once and scatters
the triples into place a budget-sized chunk at a time. Peak memory is thus the
final matrix plus the id maps plus about ``memory_budget``, whatever the input
size. Duplicate (user, item) pairs are summed: repeated implicit feedback is
more confidence.

>>> import numpy as np, pyarrow as pa
>>> from mlscale.data.readers import interaction_schema
>>> batch = pa.RecordBatch.from_pydict(
...     {"user": [1, 1, 2], "item": [7, 7, 8], "rating": [1.0, 2.0, 5.0], "timestamp": [None] * 3},
...     schema=interaction_schema(pa.int64()))
>>> m = ingest_matrix([batch])
>>> m.shape, m.csr.toarray().tolist()
((2, 2), [[3.0, 0.0], [0.0, 5.0]])
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import scipy.sparse as sp

from mlscale.apps.recommend.idmap import IdMap
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.data.ingest import DEFAULT_MEMORY_BUDGET
from mlscale.errors import DataError, ValidationError

__all__ = ["MatrixBuilder", "ingest_matrix"]

# Bytes one interaction takes in the spill buffer and the scatter pass:
# user and item int32, value float32, plus the sort permutation and ranks.
_BYTES_PER_ROW_SPILL = 12
_BYTES_PER_ROW_SCATTER = 12 + 8 + 8 + 8


class MatrixBuilder:
    """Accumulate interaction batches into a CSR matrix with bounded memory.

    Call :meth:`add` for each batch, then :meth:`build` once.
    """

    def __init__(
        self,
        id_type: pa.DataType,
        *,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        spill_dir: str | Path | None = None,
    ) -> None:
        if memory_budget < 16 << 20:
            raise ValidationError("expected at least 16M", field="--memory-budget")
        self.memory_budget = memory_budget
        self.users = IdMap(id_type)
        self.items = IdMap(id_type)
        self._counts = np.zeros(0, dtype=np.int64)
        self._buffer: list[tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.float32]]] = []
        self._buffered = 0
        self._spill_root = Path(spill_dir) if spill_dir is not None else None
        self._spill: Path | None = None
        self._spilled = 0
        self._n_items = 0
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        """Map one batch's ids and keep its (user, item, value) triples."""
        if batch.num_rows == 0:
            return
        u = self.users.encode(batch.column(0))
        i = self.items.encode(batch.column(1))
        v = batch.column(2).to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        self._keep(u, i, v, self.users.size)

    def add_indices(
        self, users: npt.NDArray[np.int32], items: npt.NDArray[np.int32], values: npt.NDArray[np.float32]
    ) -> None:
        """Add triples whose users and items are already row and column indices.

        Use with ``build(user_ids=..., item_ids=...)``: the caller owns the id maps
        (for example Spark's dense indices).
        """
        if users.size:
            self._keep(
                users.astype(np.int32, copy=False),
                items.astype(np.int32, copy=False),
                values.astype(np.float32, copy=False),
                int(users.max()) + 1,
            )

    def _keep(
        self, u: npt.NDArray[np.int32], i: npt.NDArray[np.int32], v: npt.NDArray[np.float32], n_users: int
    ) -> None:
        if n_users > self._counts.size:
            grown = np.zeros(max(n_users, 2 * self._counts.size), dtype=np.int64)
            grown[: self._counts.size] = self._counts
            self._counts = grown
        self._counts[:n_users] += np.bincount(u, minlength=n_users)
        self._n_items = max(self._n_items, int(i.max()) + 1 if i.size else 0)
        self._buffer.append((u, i, v))
        self._buffered += u.size
        self.rows += u.size
        if self._buffered * _BYTES_PER_ROW_SPILL > self.memory_budget // 2:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if self._spill is None:
            root = self._spill_root or Path(tempfile.gettempdir())
            root.mkdir(parents=True, exist_ok=True)
            self._spill = Path(tempfile.mkdtemp(prefix="mlscale-ingest-", dir=root))
        for k, name in enumerate(("u", "i", "v")):
            with (self._spill / f"{name}.bin").open("ab") as fh:
                for part in self._buffer:
                    part[k].tofile(fh)
        self._spilled += self._buffered
        self._buffer, self._buffered = [], 0

    def _chunks(
        self,
    ) -> Iterable[tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.float32]]]:
        if self._spill is not None:
            step = max(1 << 16, self.memory_budget // _BYTES_PER_ROW_SCATTER)
            handles = [(self._spill / f"{n}.bin").open("rb") for n in ("u", "i", "v")]
            try:
                done = 0
                while done < self._spilled:
                    n = min(step, self._spilled - done)
                    yield (
                        np.fromfile(handles[0], dtype=np.int32, count=n),
                        np.fromfile(handles[1], dtype=np.int32, count=n),
                        np.fromfile(handles[2], dtype=np.float32, count=n),
                    )
                    done += n
            finally:
                for h in handles:
                    h.close()
        yield from self._buffer

    def build(
        self, *, user_ids: npt.NDArray[Any] | None = None, item_ids: npt.NDArray[Any] | None = None
    ) -> InteractionMatrix:
        """Allocate the CSR arrays once and scatter every triple into place.

        ``user_ids`` / ``item_ids`` are given after :meth:`add_indices`; after
        :meth:`add` the builder's own id maps are used.
        """
        try:
            user_ids = self.users.ids() if user_ids is None else user_ids
            item_ids = self.items.ids() if item_ids is None else item_ids
            n_users, n_items, nnz = user_ids.size, item_ids.size, self.rows
            if self._counts[n_users:].any() or self._n_items > n_items:
                raise ValueError("indices beyond the given id maps")
            if nnz == 0:
                raise DataError("no interactions to build a matrix from")
            # Arrow keeps freed parse buffers for reuse; hand them back before the big allocation.
            pa.default_memory_pool().release_unused()
            counts = np.zeros(n_users, dtype=np.int64)
            counts[: min(n_users, self._counts.size)] = self._counts[:n_users]
            idx_type = np.int32 if nnz < 2**31 else np.int64
            indptr = np.zeros(n_users + 1, dtype=idx_type)
            np.cumsum(counts, out=indptr[1:])
            indices = np.empty(nnz, dtype=np.int32)
            data = np.empty(nnz, dtype=np.float32)
            cursor = indptr[:-1].astype(np.int64)
            for u, i, v in self._chunks():
                order = np.argsort(u, kind="stable")
                us = u[order]
                starts = np.flatnonzero(np.r_[True, us[1:] != us[:-1]])
                sizes = np.diff(np.r_[starts, us.size])
                rank = np.arange(us.size) - np.repeat(starts, sizes)
                pos = cursor[us] + rank
                indices[pos] = i[order]
                data[pos] = v[order]
                cursor[us[starts]] += sizes
                del order, us, rank, pos
            csr: sp.csr_matrix = sp.csr_matrix((data, indices, indptr), shape=(n_users, n_items))  # type: ignore[arg-type]
            csr.sum_duplicates()  # sorts each row's columns in place, then merges repeats
            return InteractionMatrix(csr=csr, user_ids=user_ids, item_ids=item_ids)
        finally:
            self.close()

    def close(self) -> None:
        """Remove the spill files (idempotent)."""
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)
            self._spill = None


def _id_type_of(batch: pa.RecordBatch) -> pa.DataType:
    return batch.schema.field("user").type


def ingest_matrix(
    batches: Iterable[pa.RecordBatch],
    *,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    spill_dir: str | Path | None = None,
    on_batch: Callable[[pa.RecordBatch], None] | None = None,
) -> InteractionMatrix:
    """Build an :class:`InteractionMatrix` from a stream of interaction batches."""
    builder: MatrixBuilder | None = None
    try:
        for batch in batches:
            if builder is None:
                builder = MatrixBuilder(_id_type_of(batch), memory_budget=memory_budget, spill_dir=spill_dir)
            builder.add(batch)
            if on_batch is not None:
                on_batch(batch)
        if builder is None:
            raise DataError("no interactions to build a matrix from")
        return builder.build()
    finally:
        if builder is not None:
            builder.close()
