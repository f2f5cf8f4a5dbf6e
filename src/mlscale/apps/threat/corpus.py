"""IP documents: word counts per IP, built from a stream of flow batches with memory bounded by the corpus.

Each batch's (IP, word) pairs are counted with NumPy (no Python loop over
flows) and merged into the running counts, so memory grows with the number of
*distinct* (IP, word) pairs, not with the number of flows: billions of flows
of a network with a few million hosts fit. IPs and words get dense ids in order
of first appearance.

>>> b = CorpusBuilder()
>>> b.add(pa.array(["10.0.0.1", "10.0.0.2", "10.0.0.1"]), np.array([7, 7, 9]))
>>> b.add(pa.array(["10.0.0.1"]), np.array([7]), weight=3)
>>> c = b.build()
>>> c.ips.to_pylist(), c.vocab.tolist(), c.counts.toarray().tolist()
(['10.0.0.1', '10.0.0.2'], [7, 9], [[4.0, 1.0], [1.0, 0.0]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from mlscale.errors import DataError

__all__ = ["Corpus", "CorpusBuilder", "IdMap"]

_COMPACT_EVERY = 1 << 22


class IdMap:
    """Dense ids for values (IP strings or int64 word codes) in order of first appearance."""

    def __init__(self, value_type: pa.DataType) -> None:
        self._chunks: list[pa.Array] = []
        self._known: pa.Array = pa.array([], value_type)
        self.value_type = value_type

    def __len__(self) -> int:
        return len(self._known)

    @property
    def values(self) -> pa.Array:
        return self._known

    def encode(self, values: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64]:
        """The id of each value, adding values not seen before."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        uniq = pc.unique(values)
        local = np.asarray(pc.index_in(values, value_set=uniq).to_numpy(zero_copy_only=False), dtype=np.int64)
        known = pc.index_in(uniq, value_set=self._known) if len(self._known) else pa.nulls(len(uniq), pa.int32())
        mapping = np.asarray(pc.fill_null(known, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        new = mapping < 0
        if new.any():
            mapping[new] = np.arange(len(self._known), len(self._known) + int(new.sum()))
            self._known = pa.concat_arrays([self._known, uniq.filter(pa.array(new))])
        return mapping[local]


@dataclass(frozen=True)
class Corpus:
    """Documents (one per IP) x vocabulary (word codes) counts, as a CSR matrix."""

    ips: pa.Array
    vocab: npt.NDArray[np.int64]
    counts: sp.csr_matrix

    @property
    def n_docs(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_words(self) -> int:
        return int(self.counts.shape[1])

    @property
    def total(self) -> float:
        return float(self.counts.sum())


class CorpusBuilder:
    """Accumulates (IP, word) counts batch by batch; :meth:`build` returns the :class:`Corpus`."""

    def __init__(self) -> None:
        self.ips = IdMap(pa.string())
        self.words = IdMap(pa.int64())
        self._keys: list[npt.NDArray[np.int64]] = []
        self._counts: list[npt.NDArray[np.float64]] = []
        self._pending = 0

    def add(
        self,
        ips: pa.Array | pa.ChunkedArray,
        words: npt.NDArray[np.int64],
        weight: float | npt.NDArray[np.float64] = 1.0,
    ) -> None:
        """Count ``words[i]`` once (or ``weight`` times) in the document of ``ips[i]``."""
        if len(ips) != len(words):
            raise ValueError("ips and words must have the same length")
        if len(ips) == 0:
            return
        doc = self.ips.encode(ips)
        word = self.words.encode(pa.array(words, pa.int64()))
        keys = (doc << 32) | word
        w = np.broadcast_to(np.asarray(weight, dtype=np.float64), keys.shape)
        uniq, inverse = np.unique(keys, return_inverse=True)
        self._keys.append(uniq)
        self._counts.append(np.bincount(inverse, weights=w, minlength=uniq.size).astype(np.float64))
        self._pending += uniq.size
        if self._pending > _COMPACT_EVERY:
            self._compact()

    def _compact(self) -> None:
        if len(self._keys) <= 1:
            return
        keys = np.concatenate(self._keys)
        counts = np.concatenate(self._counts)
        uniq, inverse = np.unique(keys, return_inverse=True)
        self._keys = [uniq]
        self._counts = [np.bincount(inverse, weights=counts, minlength=uniq.size).astype(np.float64)]
        self._pending = uniq.size

    def build(self) -> Corpus:
        """The corpus so far (documents in order of first appearance)."""
        self._compact()
        if not self._keys or len(self.ips) == 0:
            raise DataError("no flows to learn from: the corpus is empty")
        keys, counts = self._keys[0], self._counts[0]
        rows = (keys >> 32).astype(np.int64)
        cols = (keys & 0xFFFFFFFF).astype(np.int64)
        matrix = sp.csr_matrix((counts, (rows, cols)), shape=(len(self.ips), len(self.words)))
        matrix.sum_duplicates()
        return Corpus(ips=self.ips.values, vocab=np.asarray(self.words.values.to_numpy(), np.int64), counts=matrix)
