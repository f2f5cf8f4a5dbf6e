"""A user x item interaction matrix (CSR) with the id maps that give it meaning.

Row ``u`` of :attr:`InteractionMatrix.csr` holds the items of the user whose id
is ``user_ids[u]``; column ``i`` is the item ``item_ids[i]``. Values are
float32 confidences (ratings, play counts or 1.0).

>>> import numpy as np
>>> m = InteractionMatrix.from_arrays(
...     users=np.array([10, 10, 20]), items=np.array([5, 7, 5]), values=np.ones(3, dtype=np.float32))
>>> m.shape, m.nnz, m.user_index(np.array([20, 99])).tolist()
((2, 2), 3, [1, -1])
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from mlscale.errors import DataError, DataFormatError

__all__ = ["InteractionMatrix", "lookup_ids"]


def lookup_ids(ids: npt.NDArray[Any], sorter: npt.NDArray[np.intp], wanted: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Position in ``ids`` of each ``wanted`` id (``sorter``: ``ids``' argsort); -1 for an unknown id."""
    wanted_arr = np.asarray(wanted)
    if ids.size == 0:
        return np.full(wanted_arr.shape, -1, dtype=np.int64)
    if ids.dtype.kind in "iu" and wanted_arr.dtype.kind not in "iu":
        # A string id never matches an integer id space (and vice versa), but "12" should.
        try:
            wanted_arr = wanted_arr.astype(np.int64)
        except (ValueError, TypeError):
            return np.full(wanted_arr.shape, -1, dtype=np.int64)
    elif ids.dtype.kind == "U" and wanted_arr.dtype.kind != "U":
        wanted_arr = wanted_arr.astype(np.str_)
    pos = np.searchsorted(ids, wanted_arr, sorter=sorter)
    pos = np.clip(pos, 0, ids.size - 1)
    found = sorter[pos]
    return np.where(ids[found] == wanted_arr, found, -1).astype(np.int64)


@dataclass(frozen=True, eq=False)
class InteractionMatrix:
    """CSR interactions plus the external ids of its rows and columns."""

    csr: sp.csr_matrix
    user_ids: npt.NDArray[Any]
    item_ids: npt.NDArray[Any]
    _sorters: dict[str, npt.NDArray[np.intp]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.csr.shape != (self.user_ids.size, self.item_ids.size):
            raise ValueError(
                f"matrix shape {self.csr.shape} does not match {self.user_ids.size} user ids "
                f"and {self.item_ids.size} item ids"
            )

    @classmethod
    def from_arrays(
        cls,
        users: npt.ArrayLike,
        items: npt.ArrayLike,
        values: npt.ArrayLike | None = None,
    ) -> InteractionMatrix:
        """Build from parallel id arrays (in memory; for streams use :func:`mlscale.data.ingest_matrix`)."""
        u_ids, u_idx = np.unique(np.asarray(users), return_inverse=True)
        i_ids, i_idx = np.unique(np.asarray(items), return_inverse=True)
        vals = np.ones(u_idx.size, np.float32) if values is None else np.asarray(values, np.float32)
        csr = sp.csr_matrix((vals, (u_idx, i_idx)), shape=(u_ids.size, i_ids.size), dtype=np.float32)
        csr.sum_duplicates()
        return cls(csr=csr, user_ids=u_ids, item_ids=i_ids)

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.csr.shape
        return int(rows), int(cols)

    @property
    def nnz(self) -> int:
        return int(self.csr.nnz)

    @property
    def nbytes(self) -> int:
        """Bytes held by the CSR arrays (not the id maps)."""
        return int(self.csr.data.nbytes + self.csr.indices.nbytes + self.csr.indptr.nbytes)

    def _sorter(self, which: str) -> npt.NDArray[np.intp]:
        if which not in self._sorters:
            ids = self.user_ids if which == "user" else self.item_ids
            self._sorters[which] = np.argsort(ids, kind="stable")
        return self._sorters[which]

    def user_index(self, ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Row of each user id; -1 for an id the matrix does not know."""
        return lookup_ids(self.user_ids, self._sorter("user"), ids)

    def item_index(self, ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Column of each item id; -1 for an id the matrix does not know."""
        return lookup_ids(self.item_ids, self._sorter("item"), ids)

    def fingerprint(self) -> str:
        """A content hash of the matrix and its ids, for the model manifest."""
        h = hashlib.sha256()
        h.update(json.dumps(list(self.shape)).encode())
        for arr in (self.csr.indptr, self.csr.indices, self.csr.data, self.user_ids, self.item_ids):
            h.update(str(arr.dtype).encode())
            h.update(np.ascontiguousarray(arr).view(np.uint8).data)
        return "sha256:" + h.hexdigest()

    def save(self, folder: str | Path) -> Path:
        """Write the matrix as pickle-free ``.npy`` files into ``folder``, atomically.

        The files are written into a hidden folder beside ``folder`` that replaces it once
        complete: a failed save (a full disk) leaves no truncated ``.npy`` and an earlier
        matrix untouched.
        """
        out = Path(folder)
        if out.exists() and not out.is_dir():
            raise DataError(f"{out} exists and is not a folder")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for name, arr in self.arrays().items():
                np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
            (tmp / "matrix.json").write_text(json.dumps({"shape": list(self.shape), "nnz": self.nnz}) + "\n")
            if out.exists():
                old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
                out.rename(old)
                tmp.rename(out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The arrays that make up the matrix, by file name stem."""
        return {
            "indptr": self.csr.indptr,
            "indices": self.csr.indices,
            "data": self.csr.data,
            "user_ids": self.user_ids,
            "item_ids": self.item_ids,
        }

    @classmethod
    def from_saved_arrays(cls, arrays: dict[str, npt.NDArray[Any]], source: str = "arrays") -> InteractionMatrix:
        """Rebuild from the arrays of :meth:`arrays` (e.g. loaded from the registry)."""
        missing = {"indptr", "indices", "data", "user_ids", "item_ids"} - set(arrays)
        if missing:
            raise DataFormatError(f"missing matrix arrays: {sorted(missing)}", path=source)
        shape = (arrays["user_ids"].size, arrays["item_ids"].size)
        try:
            csr = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        except ValueError as exc:
            raise DataFormatError(f"inconsistent matrix arrays ({exc})", path=source) from None
        return cls(csr=csr, user_ids=arrays["user_ids"], item_ids=arrays["item_ids"])

    @classmethod
    def load(cls, folder: str | Path, *, mmap: bool = False) -> InteractionMatrix:
        """Read a matrix written by :meth:`save`."""
        src = Path(folder)
        arrays: dict[str, npt.NDArray[Any]] = {}
        for name in ("indptr", "indices", "data", "user_ids", "item_ids"):
            path = src / f"{name}.npy"
            if not path.exists():
                raise DataFormatError(f"missing {path.name}: not a matrix written by mlscale", path=str(src))
            try:
                arrays[name] = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            except ValueError as exc:
                raise DataFormatError(f"refused: {exc}", path=str(path)) from None
        return cls.from_saved_arrays(arrays, str(src))
