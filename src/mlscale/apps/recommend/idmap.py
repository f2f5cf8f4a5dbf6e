"""Incremental mapping of external ids (ints or strings) to dense indices 0..n-1.

Indices are given in order of first appearance, so the mapping of a stream is
deterministic and never needs the whole stream in memory. Small non-negative
integer ids (the common case: MovieLens, synthetic logs) use a direct lookup
table; anything else uses Arrow's hash kernels.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["IdMap"]

# Direct lookup tables are used while ids stay below this bound or 8x the number
# of ids seen; above it the memory would be wasted on gaps.
_DENSE_FLOOR = 1 << 22


class IdMap:
    """Map ids to indices, adding unseen ids as they come."""

    def __init__(self, id_type: pa.DataType) -> None:
        self.id_type = id_type
        self._dense = pa.types.is_integer(id_type)
        self._lookup = np.full(0, -1, dtype=np.int32)
        self._values: list[pa.Array] = []
        self._known: pa.Array | None = None
        self.size = 0

    def encode(self, ids: pa.Array | pa.ChunkedArray, *, grow: bool = True) -> npt.NDArray[np.int32]:
        """Indices of ``ids``; unseen ids are added (``grow``) or mapped to -1."""
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        if self._dense:
            values = ids.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            if values.size and (values.min() < 0 or values.max() >= max(_DENSE_FLOOR, 8 * (self.size + 1))):
                self._to_hashed()
            else:
                return self._encode_dense(values, grow)
        return self._encode_hashed(ids, grow)

    def ids(self) -> npt.NDArray[np.generic]:
        """All ids, the one of index ``i`` at position ``i`` (int64 or unicode array)."""
        if not self._values:
            return np.empty(0, dtype=np.int64 if pa.types.is_integer(self.id_type) else np.str_)
        arr = pa.concat_arrays(self._values)
        values: npt.NDArray[np.generic] = arr.to_numpy(zero_copy_only=False)
        return values.astype(np.int64 if pa.types.is_integer(self.id_type) else np.str_)

    # -- dense integer ids -------------------------------------------------------

    def _encode_dense(self, values: npt.NDArray[np.int64], grow: bool) -> npt.NDArray[np.int32]:
        top = int(values.max()) + 1 if values.size else 0
        if top > self._lookup.size:
            if not grow:
                values = np.where(values < self._lookup.size, values, -1)
            else:
                bigger = np.full(max(top, 2 * self._lookup.size), -1, dtype=np.int32)
                bigger[: self._lookup.size] = self._lookup
                self._lookup = bigger
        if not grow:
            out = np.full(values.size, -1, dtype=np.int32)
            ok = values >= 0
            out[ok] = self._lookup[values[ok]]
            return out
        idx = self._lookup[values]
        missing = idx < 0
        if missing.any():
            fresh, first = np.unique(values[missing], return_index=True)
            fresh = fresh[np.argsort(first, kind="stable")]
            self._lookup[fresh] = np.arange(self.size, self.size + fresh.size, dtype=np.int32)
            self._values.append(pa.array(fresh, type=pa.int64()))
            self._known = None
            self.size += fresh.size
            idx = self._lookup[values]
        return idx

    def _to_hashed(self) -> None:
        self._dense = False
        self._lookup = np.full(0, -1, dtype=np.int32)

    # -- any ids ------------------------------------------------------------------

    def _known_values(self) -> pa.Array:
        if self._known is None:
            self._known = pa.concat_arrays(self._values) if self._values else pa.array([], type=self.id_type)
            self._values = [self._known]
        return self._known

    def _encode_hashed(self, ids: pa.Array, grow: bool) -> npt.NDArray[np.int32]:
        if ids.type != self.id_type:
            ids = ids.cast(self.id_type)
        known = self._known_values()
        idx = pc.index_in(ids, value_set=known) if len(known) else pa.nulls(len(ids), pa.int32())
        missing = idx.is_null()
        if grow and pc.any(missing).as_py():
            fresh = pc.unique(ids.filter(missing))  # keeps first-appearance order
            self._values.append(fresh)
            self._known = None
            self.size += len(fresh)
            idx = pc.index_in(ids, value_set=self._known_values())
        out: npt.NDArray[np.int32] = idx.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        return out
