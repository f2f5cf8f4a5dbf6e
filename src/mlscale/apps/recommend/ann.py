"""Approximate top-k over the item factors (faiss), so a large catalogue stays fast to serve.

(About 740 lines, one concept: the index, its tuning, storage and flags. The ``--ann-*`` flags are this
module's own (:func:`add_flags`, added by the app's ``add_arguments`` to ``train`` and ``update``): the
contract's generated flags describe the model family's params, and these are not a family's but every factor
model's build settings; :func:`params_from_options` reads them from a ``Job``.)

An exact recommendation scores every item: its cost grows linearly with the
catalogue (about 40 ms per user at 1M items x 64 factors on one core). An
:class:`AnnIndex` finds the top items by inner product, the model's own score,
in a fraction of that, at a measured recall.

Index kinds (:attr:`AnnParams.kind`):

- ``auto`` (default): no index below :data:`EXACT_BELOW` items (the model's
  own exact scoring costs a few milliseconds there and needs no second copy of
  the factors), ``ivf`` above;
- ``flat``: ``faiss.IndexFlatIP``, exact (for tests, and to serve the exact
  answer through faiss);
- ``ivf``: ``faiss.IndexIVFFlat``, ``nlist`` lists (default ``4 * sqrt(items)``
  rounded to a power of two, at most 8192), ``nprobe`` tuned at build time.
  Inner-product search is reduced to L2 search (Bachrach et al., 2014): each
  item gets one more coordinate ``sqrt(M^2 - |y|^2)`` (``M`` the largest item
  norm) and each query a 0, so the nearest augmented item is the one of highest
  dot product. ``METRIC_INNER_PRODUCT`` on the raw factors clusters badly when
  item norms vary (popular items have larger ones): measured at 1M items,
  recall@10 0.96 needed ``nprobe`` 768 of 4096 lists with it;
- ``hnsw``: ``faiss.IndexHNSWFlat`` with ``METRIC_INNER_PRODUCT``,
  ``efSearch`` tuned at build time. It builds about 50x slower than IVF here
  (120 s for 200k items on this machine's shared cores, vs 2.4 s), so ``auto``
  never picks it.
- ``none``: no index.

**Tuning and recall.** After building, a seeded sample of users
(:attr:`AnnParams.sample_users`) is scored exactly and through the index with
each ``nprobe`` / ``efSearch`` of a growing grid; the first setting whose
recall@k (the share of the exact top-k the index returns, no filters) reaches
:attr:`AnnParams.recall_target` is kept. The curve, the recall reached and the
recall of ``similar`` items are stored in :attr:`AnnIndex.meta` (the
manifest's ``extra["ann"]``). A build that misses the target warns
(:class:`RecallWarning`); one below :attr:`AnnParams.min_recall` is an error.

**Scores and filters.** The index only proposes candidates: every score
returned is recomputed as the dot product of the user's and the item's factors
(``similar``: their cosine), so scores are the model's own. Seen items and the
``exclude`` list are honoured by over-fetching ``k + len(seen) + len(exclude)``
candidates and dropping those (faiss ID selectors would need one search per
user, since each user's seen set differs); a user whose over-fetch exceeds
:data:`MAX_FETCH`, or for whom the index returned fewer than ``k`` allowed
items, is scored exactly instead. ``include`` (a candidate list) is always
scored exactly: it is small by construction.

**Storage.** The index is stored as faiss's own binary format
(``faiss.serialize_index``) in one ``uint8`` array, ``ann_index.npy``, which
the registry checksums like every other file. :meth:`AnnIndex.from_array`
reads it with ``faiss.ZeroCopyIOReader`` and ``IO_FLAG_MMAP_IFC`` straight
from the memory-mapped file: for ``flat`` and ``ivf`` the vectors and lists
stay in the page cache, shared by every serving worker (measured: 1 MiB of
private memory after loading a 50 MiB IVF index); ``hnsw`` shares its vectors
but copies part of its graph (about 40% of the file).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> items, users = rng.standard_normal((500, 8), np.float32), rng.standard_normal((50, 8), np.float32)
>>> index = build_index(items, users, AnnParams(kind="ivf", nlist=8, sample_users=50))
>>> index.kind, index.meta["recall_at_k"] >= 0.95
('ivf', True)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from mlscale.errors import ArtifactError, DependencyError, ValidationError

if TYPE_CHECKING:
    from mlscale.apps.recommend.model import ImplicitRecommender

__all__ = [
    "ARRAY_KEY",
    "EXACT_BELOW",
    "INSTALL",
    "MAX_FETCH",
    "META_KEY",
    "AnnIndex",
    "AnnParams",
    "RecallWarning",
    "add_flags",
    "attach_index",
    "build_index",
    "exact_topk",
    "gather_rows",
    "params_from_flags",
    "recall_at_k",
    "require_faiss",
]

#: Below this many items ``auto`` builds no index: exact scoring is a few ms per user there.
EXACT_BELOW = 50_000
#: The most candidates fetched for one user; a user with more seen/excluded items is scored exactly.
MAX_FETCH = 2048
#: The registry array that holds the serialised index, and the manifest ``extra`` key of its facts.
ARRAY_KEY = "ann_index"
META_KEY = "ann"
INSTALL = "pip install 'mlscale[recommend]'"
AnnKind = Literal["auto", "none", "flat", "ivf", "hnsw"]
_KINDS = ("auto", "none", "flat", "ivf", "hnsw")
_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096, 8192)
_SIMILAR_OVERFETCH = 10
# Exact top-k is computed in blocks of items so that (queries x block) scores stay near 128 MiB.
_BLOCK_SCORES = 1 << 25

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Seen = tuple[npt.NDArray[Any], npt.NDArray[Any]]


class RecallWarning(UserWarning):
    """An index build reached a recall below its target."""


def require_faiss() -> Any:
    """The ``faiss`` module, or a :class:`DependencyError` with the install line."""
    try:
        import faiss
    except ImportError:
        raise DependencyError(f"approximate retrieval needs faiss: {INSTALL}") from None
    return faiss


@dataclass(frozen=True, slots=True)
class AnnParams:
    """How to build (and tune) an item index; every field has a CLI flag ``--ann-<field>``."""

    #: auto (none below ``exact_below`` items, ivf above), none, flat (exact), ivf or hnsw.
    kind: AnnKind = "auto"
    #: recall@k to reach on the user sample when tuning nprobe / efSearch.
    recall_target: float = 0.95
    #: fail the build (instead of warning) when recall@k ends below this.
    min_recall: float | None = None
    #: the k of recall@k.
    k: int = 10
    #: users sampled (seeded) to tune and measure recall.
    sample_users: int = 1000
    seed: int = 0
    #: catalogue size from which ``auto`` builds an index.
    exact_below: int = EXACT_BELOW
    #: IVF lists (default: 4 * sqrt(items), a power of two, at most 8192).
    nlist: int | None = None
    #: IVF lists searched (default: tuned to the recall target).
    nprobe: int | None = None
    #: HNSW links per node.
    hnsw_m: int = 32
    ef_construction: int = 64
    #: HNSW search breadth (default: tuned to the recall target).
    ef_search: int | None = None

    def __post_init__(self) -> None:
        def positive(value: int | None) -> bool:
            return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)

        checks: list[tuple[str, bool, str]] = [
            ("kind", self.kind in _KINDS, " | ".join(_KINDS)),
            ("recall_target", 0.0 < self.recall_target <= 1.0, "a number in (0, 1]"),
            ("min_recall", self.min_recall is None or 0.0 <= self.min_recall <= 1.0, "a number in [0, 1]"),
            ("k", positive(self.k), "an integer >= 1"),
            ("sample_users", positive(self.sample_users), "an integer >= 1"),
            ("exact_below", isinstance(self.exact_below, int) and self.exact_below >= 0, "an integer >= 0"),
            ("nlist", positive(self.nlist), "an integer >= 1"),
            ("nprobe", positive(self.nprobe), "an integer >= 1"),
            ("hnsw_m", positive(self.hnsw_m), "an integer >= 1"),
            ("ef_construction", positive(self.ef_construction), "an integer >= 1"),
            ("ef_search", positive(self.ef_search), "an integer >= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValidationError(f"expected {expected}, got {getattr(self, name)!r}", field=f"ann_{name}")

    def resolved_kind(self, n_items: int) -> str:
        """The kind actually built for a catalogue of ``n_items``."""
        if self.kind != "auto":
            return self.kind
        return "none" if n_items < self.exact_below else "ivf"


def default_nlist(n_items: int) -> int:
    """IVF lists for a catalogue: 4 * sqrt(n) as a power of two, in 1..8192 (8192 bounds the build time).

    >>> default_nlist(1_000_000), default_nlist(10_000), default_nlist(10)
    (4096, 512, 5)
    """
    if n_items < 2:
        return 1
    return int(min(8192, 2 ** round(math.log2(4 * math.sqrt(n_items))), max(1, n_items // 2)))


def _set_threads(faiss: Any, threads: int) -> None:
    faiss.omp_set_num_threads(threads if threads > 0 else (os.cpu_count() or 1))


def gather_rows(indptr: npt.NDArray[Any], indices: npt.NDArray[Any], rows: I64) -> Seen:
    """The CSR rows ``rows`` of ``(indptr, indices)`` as a new, compact ``(indptr, indices)`` pair."""
    starts = indptr[rows].astype(np.int64)
    lens = indptr[rows + 1].astype(np.int64) - starts
    out_ptr = np.zeros(rows.size + 1, np.int64)
    np.cumsum(lens, out=out_ptr[1:])
    total = int(out_ptr[-1])
    if rows.size == 1:
        return out_ptr, np.asarray(indices[int(starts[0]) : int(starts[0]) + total])
    offsets = np.arange(total) - np.repeat(out_ptr[:-1], lens) + np.repeat(starts, lens)
    return out_ptr, np.asarray(indices)[offsets]


def exact_topk(
    query: F32, items: npt.NDArray[np.float32], k: int, *, norms: F32 | None = None, skip: I64 | None = None
) -> I64:
    """Exact top-``k`` item rows by inner product (or by ``score / norms``), computed in blocks of items.

    ``skip[j]``: an item row never returned for query ``j`` (the item itself, for ``similar``).
    """
    n, n_items = query.shape[0], items.shape[0]
    k = min(k, n_items)
    block = max(k, _BLOCK_SCORES // max(1, n))
    best_s = np.full((n, 0), -np.inf, np.float32)
    best_i = np.zeros((n, 0), np.int64)
    for start in range(0, n_items, block):
        stop = min(n_items, start + block)
        s = query @ np.asarray(items[start:stop]).T
        if norms is not None:
            s /= norms[start:stop]
        if skip is not None:
            inside = (skip >= start) & (skip < stop)
            s[np.flatnonzero(inside), skip[inside] - start] = -np.inf
        take = min(k, stop - start)
        part = np.argpartition(-s, take - 1, axis=1)[:, :take]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        best_i = np.concatenate([best_i, part + start], axis=1)
        if best_s.shape[1] > k:
            keep = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
            best_s, best_i = np.take_along_axis(best_s, keep, 1), np.take_along_axis(best_i, keep, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, 1)


# Below this many comparisons a broadcast == beats np.isin (which sorts): the single-user case.
_BROADCAST = 1 << 16


def _member(ids: I64, forbidden: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """``ids[i, j]`` in row ``i`` of ``forbidden`` (one row broadcast to all, or one row per query)."""
    if ids.size * forbidden.shape[1] <= _BROADCAST:
        out: npt.NDArray[np.bool_] = (ids[:, :, None] == forbidden[:, None, :]).any(axis=2)
        return out
    return (
        np.isin(ids, forbidden)
        if forbidden.shape[0] == 1
        else np.array([np.isin(a, b) for a, b in zip(ids, forbidden, strict=True)])
    )


def _member_rows(ids: I64, indptr: npt.NDArray[Any], indices: npt.NDArray[Any], n_items: int) -> npt.NDArray[np.bool_]:
    """``ids[i, j]`` in CSR row ``i`` of ``(indptr, indices)``."""
    if ids.shape[0] == 1:
        return _member(ids, np.asarray(indices[int(indptr[0]) : int(indptr[1])], dtype=np.int64)[None, :])
    rows = np.arange(ids.shape[0], dtype=np.int64)
    keys = np.repeat(rows, np.diff(indptr)) * n_items + indices
    return np.isin(rows[:, None] * n_items + ids, keys)


def recall_at_k(found: I64, truth: I64) -> float:
    """Mean share of each row of ``truth`` found in the same row of ``found`` (-1 never matches).

    >>> recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 4, 1]]))
    0.6666666666666666
    """
    hits = [np.intersect1d(f[f >= 0], t).size / max(1, t.size) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) if hits else 1.0


class AnnIndex:
    """A faiss index over the item factors (rows = item columns of the model), with its build facts."""

    def __init__(self, index: Any, kind: str, meta: dict[str, Any], *, buffer: npt.NDArray[np.uint8] | None = None):
        self.index = index
        self.kind = kind
        self.meta = meta
        # The bytes a zero-copy index points into: they must live as long as the index.
        self._buffer = buffer
        self._faiss = require_faiss()
        self._setting = int(meta.get("nprobe") or meta.get("ef_search") or 0)
        self._augmented = meta.get("transform") == "mips-to-l2"
        self._norms: F32 | None = None

    @property
    def similar_ok(self) -> bool:
        """Whether ``similar`` goes through the index: only if its measured recall met the target."""
        return float(self.meta.get("similar_recall_at_k") or 0.0) >= float(self.meta.get("recall_target", 1.0))

    @property
    def n_items(self) -> int:
        return int(self.index.ntotal)

    def __repr__(self) -> str:
        recall = self.meta.get("recall_at_k")
        return f"AnnIndex({self.kind}, items={self.n_items}, setting={self._setting}, recall@k={recall})"

    # -- searching ------------------------------------------------------------------------

    def _params(self, fetch: int, setting: int | None = None) -> Any:
        value = self._setting if setting is None else setting
        if self.kind == "ivf":
            return self._faiss.SearchParametersIVF(nprobe=max(1, value))
        if self.kind == "hnsw":
            return self._faiss.SearchParametersHNSW(efSearch=max(value, fetch))
        return None

    def search(self, query: F32, fetch: int, *, setting: int | None = None, threads: int = 1) -> I64:
        """Candidate item rows for each query (-1 where the index found fewer than ``fetch``)."""
        _set_threads(self._faiss, threads)
        q = np.ascontiguousarray(query, dtype=np.float32)
        if self._augmented:
            q = np.concatenate([q, np.zeros((q.shape[0], 1), np.float32)], axis=1)
        fetch = max(1, min(fetch, self.n_items))
        params = self._params(fetch, setting)
        _, ids = self.index.search(q, fetch, params=params) if params is not None else self.index.search(q, fetch)
        return np.asarray(ids, dtype=np.int64)

    def topk(
        self,
        query: F32,
        k: int,
        item_factors: npt.NDArray[np.float32],
        *,
        seen: Seen | None,
        excluded: I64,
        exact: Callable[[I64], tuple[I64, F32]],
        threads: int = 1,
    ) -> tuple[I64, F32]:
        """Top-``k`` item rows and exact scores per query, seen and excluded items dropped.

        ``seen`` (CSR ``indptr, indices``, one row per query) and ``excluded`` are
        honoured by over-fetching; ``exact(rows)`` answers the queries (by
        position) that the index cannot serve within :data:`MAX_FETCH`.
        """
        n = query.shape[0]
        y = np.asarray(item_factors)
        n_items = y.shape[0]
        if n == 1:  # a lone request: the same steps in 1-D, a third of the numpy calls (its latency)
            one = self._topk_one(query, k, y, seen, excluded, threads)
            if one is not None:
                return one
        counts = np.diff(seen[0]).astype(np.int64) if seen is not None else np.zeros(n, np.int64)
        need = k + counts + excluded.size
        ok = (need <= MAX_FETCH) & (need < n_items)
        out_ids = np.full((n, k), -1, np.int64)
        out_scores = np.full((n, k), -np.inf, np.float32)
        use = np.flatnonzero(ok)
        short = np.flatnonzero(~ok)
        if use.size:
            q = np.asarray(query[use], dtype=np.float32)
            ids = self.search(q, int(need[use].max()), threads=threads)
            valid = ids >= 0
            if excluded.size:
                valid &= ~_member(ids, excluded[None, :])
            if seen is not None and int(counts[use].sum()):
                sub_ptr, sub_idx = seen if use.size == n else gather_rows(seen[0], seen[1], use.astype(np.int64))
                valid &= ~_member_rows(ids, np.asarray(sub_ptr), np.asarray(sub_idx), n_items)
            safe = np.where(valid, ids, 0)
            scores = np.matmul(y[safe], q[:, :, None])[:, :, 0]
            scores[~valid] = -np.inf
            width = min(k, scores.shape[1])
            order = np.argsort(-scores, axis=1, kind="stable")[:, :width]
            top_s = np.take_along_axis(scores, order, 1)
            top_i = np.take_along_axis(ids, order, 1)
            top_i[~np.isfinite(top_s)] = -1
            out_ids[use, :width], out_scores[use, :width] = top_i, top_s
            # The index found fewer than k allowed items: the exact path says whether more exist.
            short = np.union1d(short, use[valid.sum(axis=1) < k])
        if short.size:
            ex_ids, ex_scores = exact(short.astype(np.int64))
            out_ids[short] = -1
            out_scores[short] = -np.inf
            out_ids[short, : ex_ids.shape[1]], out_scores[short, : ex_ids.shape[1]] = ex_ids, ex_scores
        return out_ids, out_scores

    def _topk_one(
        self, query: F32, k: int, y: F32, seen: Seen | None, excluded: I64, threads: int
    ) -> tuple[I64, F32] | None:
        """:meth:`topk` for one query; ``None`` when it needs the exact path."""
        forbid = excluded
        if seen is not None and int(seen[0][1]) > int(seen[0][0]):
            own = np.asarray(seen[1][int(seen[0][0]) : int(seen[0][1])], dtype=np.int64)
            forbid = own if not excluded.size else np.concatenate([own, excluded])
        need = k + forbid.size
        if need > MAX_FETCH or need >= y.shape[0]:
            return None
        ids = self.search(query, need, threads=threads)[0]
        valid = ids >= 0
        if forbid.size:
            valid &= ~_member(ids[None, :], forbid[None, :])[0]
        ids = ids[valid]
        if ids.size < k:
            return None
        scores = y[ids] @ np.asarray(query[0], dtype=np.float32)
        order = np.argsort(-scores, kind="stable")[:k]
        return ids[order][None, :], scores[order][None, :]

    def similar(self, rows: I64, k: int, item_factors: npt.NDArray[np.float32], *, threads: int = 1) -> tuple[I64, F32]:
        """The ``k`` items of highest cosine to each item row (itself excluded), from over-fetched candidates."""
        y = np.asarray(item_factors)
        if self._norms is None or self._norms.size != y.shape[0]:
            norms = np.linalg.norm(y, axis=1).astype(np.float32)
            norms[norms == 0] = 1.0
            self._norms = norms
        norms = self._norms
        q = y[rows] / norms[rows, None]
        ids = self.search(q, k * _SIMILAR_OVERFETCH + 1, threads=threads)
        valid = (ids >= 0) & (ids != rows[:, None])
        safe = np.where(valid, ids, 0)
        scores = np.matmul(y[safe], q[:, :, None])[:, :, 0] / norms[safe]
        scores[~valid] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top_s = np.take_along_axis(scores, order, 1).astype(np.float32)
        top_i = np.take_along_axis(ids, order, 1)
        top_i[~np.isfinite(top_s)] = -1
        return top_i, top_s

    def warm(self) -> None:
        """Fault the index's pages in (a memory-mapped index otherwise pays for them on first requests)."""
        if self._buffer is not None:
            int(self._buffer[:: 1 << 12].sum())

    # -- storage --------------------------------------------------------------------------

    def to_array(self) -> npt.NDArray[np.uint8]:
        """The index in faiss's binary format, as the array the registry stores."""
        return np.asarray(self._faiss.serialize_index(self.index), dtype=np.uint8)

    @classmethod
    def from_array(
        cls, data: npt.NDArray[Any], meta: dict[str, Any], *, n_items: int, factors: int, where: str = "ann_index"
    ) -> AnnIndex:
        """Read an index written by :meth:`to_array` without copying its vectors (see the module notes)."""
        faiss = require_faiss()
        buf = np.asarray(data)
        if buf.dtype != np.uint8 or buf.ndim != 1 or not buf.flags.c_contiguous or buf.size == 0:
            raise ArtifactError(f"{where}: expected a flat uint8 array (a faiss index), got {buf.dtype}{buf.shape}")
        kind = str(meta.get("kind", ""))
        if kind not in ("flat", "ivf", "hnsw"):
            raise ArtifactError(f"{where}: unknown index kind {kind!r} in the manifest (expected flat, ivf or hnsw)")
        try:
            reader = faiss.ZeroCopyIOReader(faiss.swig_ptr(buf), buf.size)
            index = faiss.read_index(reader, faiss.IO_FLAG_MMAP_IFC)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else "unreadable"
            raise ArtifactError(f"{where}: not a readable faiss index ({first})") from None
        if int(index.ntotal) != n_items or int(index.d) != factors + (meta.get("transform") == "mips-to-l2"):
            raise ArtifactError(
                f"{where}: the index holds {index.ntotal} x {index.d} vectors, the model {n_items} x {factors}"
            )
        return cls(index, kind, meta, buffer=buf)


def mips_to_l2(y: F32) -> F32:
    """Items with one more coordinate, ``sqrt(M^2 - |y|^2)``: all of norm ``M``, so L2 order = dot order."""
    sq = np.einsum("ij,ij->i", y, y, dtype=np.float64)
    extra = np.sqrt(np.maximum(sq.max() - sq, 0.0)).astype(np.float32)
    return np.concatenate([y, extra[:, None]], axis=1)


def _train_ivf(faiss: Any, y: F32, nlist: int, seed: int) -> Any:
    quantizer = faiss.IndexFlatL2(y.shape[1])
    index = faiss.IndexIVFFlat(quantizer, y.shape[1], nlist, faiss.METRIC_L2)
    # 64 points per list trains k-means well; more only costs time.
    rng = np.random.default_rng(seed)
    n_train = min(y.shape[0], nlist * 64)
    sample = y if n_train == y.shape[0] else y[np.sort(rng.choice(y.shape[0], n_train, replace=False))]
    index.cp.seed = seed
    index.cp.min_points_per_centroid = 1  # a small catalogue: no warning about few points per list
    index.train(np.ascontiguousarray(sample))
    return index


def _make(faiss: Any, kind: str, y: F32, p: AnnParams) -> tuple[Any, dict[str, Any]]:
    d = y.shape[1]
    if kind == "flat":
        return faiss.IndexFlatIP(d), {}
    if kind == "ivf":
        nlist = min(p.nlist or default_nlist(y.shape[0]), y.shape[0])
        return _train_ivf(faiss, y, nlist, p.seed), {"nlist": nlist, "transform": "mips-to-l2"}
    index = faiss.IndexHNSWFlat(d, p.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = p.ef_construction
    return index, {"hnsw_m": p.hnsw_m, "ef_construction": p.ef_construction}


def build_index(
    item_factors: npt.NDArray[np.float32],
    user_factors: npt.NDArray[np.float32],
    params: AnnParams | None = None,
    *,
    threads: int = 0,
) -> AnnIndex | None:
    """Build, tune and measure an index over ``item_factors`` (``None`` when the kind resolves to ``none``).

    Raises :class:`ValidationError` when recall@k ends below ``params.min_recall``;
    warns (:class:`RecallWarning`) when it ends below ``params.recall_target``.
    """
    p = params or AnnParams()
    y = np.ascontiguousarray(item_factors, dtype=np.float32)
    n_items, d = y.shape
    kind = p.resolved_kind(n_items)
    if kind == "none" or n_items == 0:
        return None
    faiss = require_faiss()
    _set_threads(faiss, threads)
    start = time.perf_counter()
    stored = mips_to_l2(y) if kind == "ivf" else y
    index, facts = _make(faiss, kind, stored, p)
    index.add(stored)
    del stored
    build_s = time.perf_counter() - start

    k = min(p.k, n_items)
    rng = np.random.default_rng(p.seed)
    users = np.asarray(user_factors)
    n_sample = min(p.sample_users, users.shape[0])
    rows = np.sort(rng.choice(users.shape[0], n_sample, replace=False)) if n_sample else np.zeros(0, np.int64)
    queries = np.ascontiguousarray(users[rows], dtype=np.float32)
    truth = exact_topk(queries, y, k)
    ann = AnnIndex(index, kind, dict(facts))
    fixed = p.nprobe if kind == "ivf" else p.ef_search if kind == "hnsw" else None
    if kind == "ivf":
        grid = [fixed] if fixed else [g for g in _GRID if g < facts["nlist"]] + [facts["nlist"]]
    elif kind == "hnsw":
        grid = [fixed] if fixed else [g for g in _GRID if g >= k]
    else:
        grid = [0]
    curve: list[dict[str, float]] = []
    chosen, recall = grid[-1], 0.0
    tune_start = time.perf_counter()
    for setting in grid:
        t = time.perf_counter()
        found = ann.search(queries, k, setting=setting, threads=threads) if n_sample else truth
        per_query_us = (time.perf_counter() - t) / max(1, n_sample) * 1e6
        recall = recall_at_k(found, truth)
        curve.append({"setting": setting, "recall": round(recall, 4), "us_per_query": round(per_query_us, 1)})
        chosen = setting
        if recall >= p.recall_target:
            break
    if kind == "ivf":
        facts["nprobe"] = chosen
    elif kind == "hnsw":
        facts["ef_search"] = chosen
    ann._setting = chosen
    similar = _similar_recall(ann, y, k, rng, threads)
    tune_s = time.perf_counter() - tune_start
    size = _serialized_bytes(faiss, index)
    meta: dict[str, Any] = {
        "kind": kind,
        "metric": "inner_product",
        **facts,
        "k": k,
        "recall_at_k": round(recall, 4),
        "recall_target": p.recall_target,
        "met_target": recall >= p.recall_target,
        "similar_recall_at_k": similar,
        "sample_users": int(n_sample),
        "seed": p.seed,
        "curve": curve,
        "items": int(n_items),
        "factors": int(d),
        "bytes": size,
        "bytes_per_item": round(size / n_items, 1),
        "build_seconds": round(build_s, 3),
        "tune_seconds": round(tune_s, 3),
        "faiss": str(faiss.__version__),
        "params": asdict(p),
    }
    ann.meta = meta
    if p.min_recall is not None and recall < p.min_recall:
        raise ValidationError(
            f"the {kind} index reached recall@{k} {recall:.3f}, below the minimum {p.min_recall}",
            field="ann_min_recall",
            hint="raise --ann-nlist / --ann-ef-construction, fix --ann-nprobe / --ann-ef-search higher, "
            "or use --ann-kind flat",
        )
    if recall < p.recall_target:
        warnings.warn(
            f"the {kind} index reached recall@{k} {recall:.3f}, below the target {p.recall_target} "
            f"(setting {chosen}, the largest tried)",
            RecallWarning,
            stacklevel=2,
        )
    return ann


def _serialized_bytes(faiss: Any, index: Any) -> int:
    """The size of the serialised index, counted as faiss writes it (no second copy: 2.6 GB at 10M items)."""
    total = 0

    def count(chunk: bytes) -> int:
        nonlocal total
        total += len(chunk)
        return len(chunk)

    writer = faiss.PyCallbackIOWriter(count)
    faiss.write_index(index, writer)
    del writer  # flushes the last chunk
    return total


def _similar_recall(ann: AnnIndex, y: F32, k: int, rng: np.random.Generator, threads: int) -> float | None:
    """Recall@k of ``similar`` (cosine) through the index, on a seeded sample of items."""
    n_items = y.shape[0]
    if n_items < 2:
        return None
    norms = np.linalg.norm(y, axis=1).astype(np.float32)
    norms[norms == 0] = 1.0
    rows = np.sort(rng.choice(n_items, min(200, n_items), replace=False)).astype(np.int64)
    kk = min(k, n_items - 1)
    truth = exact_topk(y[rows] / norms[rows, None], y, kk, norms=norms, skip=rows)
    found, _ = ann.similar(rows, kk, y, threads=threads)
    return round(recall_at_k(found, truth), 4)


_FLAG_HELP = {
    "kind": f"index over the item factors: auto (none below --ann-exact-below items, ivf above), none, flat "
    f"(exact, faiss), ivf or hnsw (default: auto; needs {INSTALL})",
    "recall_target": "recall@k that tuning nprobe / efSearch aims for (default: 0.95)",
    "min_recall": "fail instead of warning when the index's recall@k ends below this",
    "k": "the k of the recall measured at build time (default: 10)",
    "sample_users": "users sampled (seeded) to tune and measure recall (default: 1000)",
    "seed": "seed of the user sample and of IVF training (default: 0)",
    "exact_below": f"catalogue size from which auto builds an index (default: {EXACT_BELOW})",
    "nlist": "IVF lists (default: 4 * sqrt(items) as a power of two, at most 8192)",
    "nprobe": "IVF lists searched (default: tuned to the recall target)",
    "hnsw_m": "HNSW links per node (default: 32)",
    "ef_construction": "HNSW build breadth (default: 64)",
    "ef_search": "HNSW search breadth (default: tuned to the recall target)",
}


def add_flags(parser: argparse.ArgumentParser, *, inherit: bool = False) -> None:
    """One ``--ann-<field>`` flag per :class:`AnnParams` field (defaults from the dataclass).

    ``inherit`` (``update``): every flag defaults to None, "as the stored index was built".
    """
    group = parser.add_argument_group("approximate index" + (" (default: as the model's index was built)" * inherit))
    for f in fields(AnnParams):
        default = None if inherit or f.default is MISSING else f.default
        flag = "--ann-" + f.name.replace("_", "-")
        if f.name == "kind":
            group.add_argument(flag, dest="ann_kind", choices=_KINDS, default=default, help=_FLAG_HELP[f.name])
            continue
        number = float if f.name in ("recall_target", "min_recall") else int
        group.add_argument(flag, dest=f"ann_{f.name}", type=number, default=default, help=_FLAG_HELP[f.name])


def params_from_flags(args: argparse.Namespace) -> AnnParams:
    """The :class:`AnnParams` that :func:`add_flags`' flags describe."""
    return AnnParams(**{f.name: getattr(args, f"ann_{f.name}") for f in fields(AnnParams)})


def params_from_options(options: Mapping[str, Any], base: AnnParams | None = None) -> AnnParams:
    """``base`` (default: :class:`AnnParams`'s defaults) with the ``ann_*`` options that are set (a Job's options)."""
    values = asdict(base or AnnParams())
    for f in fields(AnnParams):
        value = options.get(f"ann_{f.name}")
        if value is not None:
            values[f.name] = value
    return AnnParams(**values)


def check_family(family: str, options: Mapping[str, Any]) -> None:
    """Refuse, before training, an index asked of a family without item factors (EASE, kNN)."""
    kind = options.get("ann_kind")
    if family in ("ease", "knn") and kind not in (None, "auto", "none"):
        raise ValidationError(
            f"an {family} model has no item factors to index; --ann-kind {kind} needs --model als or bpr",
            field="--ann-kind",
        )


def index_model(
    model: ImplicitRecommender, options: Mapping[str, Any], *, base: AnnParams | None = None, quiet: bool = False
) -> AnnIndex | None:
    """Build the index a trainer or updater attaches: factor models (ALS, BPR) only.

    An item-item model (EASE, kNN) scores with an items x items weight matrix, not factors: it never gets one
    (asked for explicitly, by ``auto`` choosing it, a line on stderr says so).
    """
    from mlscale.apps.recommend.itemitem import ItemItemRecommender

    params = params_from_options(options, base)
    if isinstance(model, ItemItemRecommender):
        model.ann_ = None
        if params.kind not in ("auto", "none") and not quiet:
            print(f"no approximate index: an {model.model} model has no item factors", file=sys.stderr)
        return None
    return attach_index(model, params, quiet=quiet)


def attach_index(model: ImplicitRecommender, params: AnnParams, *, quiet: bool = False) -> AnnIndex | None:
    """Build ``model``'s index as ``params`` say (none: detach any), attach it and print one line about it."""
    model._check_fitted()
    kind = params.resolved_kind(model.n_items)
    if kind != "none" and params.kind == "auto":
        try:
            require_faiss()
        except DependencyError as err:
            if not quiet:
                print(f"no approximate index ({model.n_items:,} items): {err}", file=sys.stderr)
            model.ann_ = None
            return None
    index = build_index(model.item_factors_, model.user_factors_, params, threads=model.threads)
    model.ann_ = index
    if index is not None and not quiet:
        m = index.meta
        setting = (
            f" nprobe={m['nprobe']}" if "nprobe" in m else f" efSearch={m['ef_search']}" if "ef_search" in m else ""
        )
        print(
            f"index: {m['kind']}{setting}, recall@{m['k']} {m['recall_at_k']:.3f} on {m['sample_users']} users "
            f"(target {m['recall_target']}), {m['bytes'] / 2**20:,.1f} MiB ({m['bytes_per_item']} B/item), "
            f"built in {m['build_seconds'] + m['tune_seconds']:.1f}s"
        )
    return index
