"""Incremental update: fold new interactions (new users and items too) into a fitted model.

No full retrain. With the other side's factors held fixed, one ALS half-step
solves each touched row exactly (:func:`~mlscale.apps.recommend.model.solve_rows`):

1. new users are solved from the items the model already knows;
2. new items are solved from the users that interacted with them (old and new);
3. every user with new interactions is solved again, now against all items.

The seen-items matrix grows by the new interactions (repeats add up), and item
popularity is recounted. Factors of users and items the new data does not
touch are unchanged, which is what makes this cheap; retrain periodically to
let the whole model move.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import scipy.sparse as sp

from mlscale.apps.base import Job, TrainResult
from mlscale.apps.recommend import ann
from mlscale.apps.recommend.idmap import IdMap
from mlscale.apps.recommend.itemitem import ItemItemRecommender
from mlscale.apps.recommend.model import ImplicitRecommender, solve_rows, weight_matrix
from mlscale.errors import DataError

if TYPE_CHECKING:
    from mlscale.registry import Manifest

__all__ = ["UPDATER", "Updater", "update_model"]


def _extended_ids(old: npt.NDArray[np.generic], new: pa.Array) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.int32]]:
    kind = pa.int64() if old.dtype.kind in "iu" else pa.string()
    idmap = IdMap(kind)
    idmap.encode(pa.array(old, type=kind))
    try:
        idx = idmap.encode(new.cast(kind))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise DataError(f"the new data's ids ({new.type}) do not match the model's ({kind})") from None
    return idmap.ids(), idx


def update_model(model: ImplicitRecommender, new: pa.Table) -> ImplicitRecommender:
    """A new fitted model: ``model`` with the interactions of ``new`` (reader schema) folded in."""
    model._check_fitted()
    if new.num_rows == 0:
        raise DataError("no new interactions to fold in")
    user_ids, u = _extended_ids(model.user_ids_, new.column("user").combine_chunks())
    item_ids, i = _extended_ids(model.item_ids_, new.column("item").combine_chunks())
    n_u, n_i = user_ids.size, item_ids.size
    values = new.column("rating").to_numpy().astype(np.float32)
    old_seen = model.seen_
    indptr = np.concatenate([old_seen.indptr, np.full(n_u - model.n_users, old_seen.indptr[-1])])
    seen = sp.csr_matrix((old_seen.data, old_seen.indices, indptr), shape=(n_u, n_i), copy=True)
    seen = (seen + sp.csr_matrix((values, (u, i)), shape=(n_u, n_i))).tocsr()
    seen.sum_duplicates()
    if isinstance(model, ItemItemRecommender):
        # An item-item model scores histories: the new rows are all it needs (new items: zero weights).
        return model.with_seen(user_ids, item_ids, seen)
    weighted = weight_matrix(seen, model.weighting, model.bm25_k1, model.bm25_b)

    f = model.item_factors_.shape[1]
    uf = np.zeros((n_u, f), np.float32)
    uf[: model.n_users] = model.user_factors_
    itf = np.zeros((n_i, f), np.float32)
    itf[: model.n_items] = model.item_factors_
    new_users = np.arange(model.n_users, n_u)
    new_items = np.arange(model.n_items, n_i)
    touched = np.unique(u).astype(np.int64)
    conf = model.alpha
    bpr = model.model == "bpr"

    def rows_of(
        m: sp.csr_matrix, r: int, limit: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        a, b = m.indptr[r], m.indptr[r + 1]
        cols, vals = m.indices[a:b].astype(np.int64), m.data[a:b]
        if limit is not None:
            keep = cols < limit
            cols, vals = cols[keep], vals[keep]
        return cols, vals

    def solve_users(users: npt.NDArray[np.int64], item_limit: int | None) -> None:
        known = itf[: item_limit or n_i]
        gram = known.T @ known
        pairs = [rows_of(weighted, int(r), item_limit) for r in users]
        uf[users] = solve_rows(
            [p[0] for p in pairs],
            known,
            gram,
            model.regularization_,
            conf,
            weights=[p[1] for p in pairs],
            bpr=bpr,
        )

    if new_users.size:
        solve_users(new_users, model.n_items)
    if new_items.size:
        by_item = weighted.T.tocsr()
        gram_u = uf.T @ uf
        pairs = [rows_of(by_item, int(c)) for c in new_items]
        itf[new_items] = solve_rows(
            [p[0] for p in pairs], uf, gram_u, model.regularization_, conf, weights=[p[1] for p in pairs]
        )
        if bpr:
            itf[new_items, -1] = 0.0  # no bias evidence for a new item
    solve_users(touched, None)

    updated = ImplicitRecommender(**model.get_params())
    updated._set_state(
        user_factors=uf,
        item_factors=itf,
        user_ids=user_ids,
        item_ids=item_ids,
        seen=seen,
        fold_in_weight=float(weighted.data.mean()),
    )
    return updated


class Updater:
    """``mlscale update recommend``: read the new interactions and fold them in (the contract's Updater)."""

    def update(self, model: ImplicitRecommender, manifest: Manifest, job: Job) -> TrainResult:
        from mlscale.apps.recommend.reader_args import stream_options
        from mlscale.data.sources import open_interactions

        new = open_interactions(job.data, job.data_dir, **stream_options(job.options)).read_all()
        start = time.perf_counter()
        updated = update_model(model, new)
        took = time.perf_counter() - start
        # New item factors: the old index no longer describes them. Rebuilt as it was built (flags override).
        old_index = getattr(model, "ann_", None)
        base = None if old_index is None else ann.AnnParams(**old_index.meta["params"])
        ann.index_model(updated, job.options, base=base, quiet=bool(job.option("quiet")))
        return TrainResult(
            updated,
            {"update_seconds": round(took, 3)},
            manifest.data_fingerprint + f"+update:{new.num_rows}",
            extra={"updated_from": manifest.version, "update_rows": new.num_rows, "data": job.data},
            summary=f"folded {new.num_rows:,} interactions into {manifest.ref} in {took:.2f}s "
            f"(+{updated.n_users - model.n_users} users, +{updated.n_items - model.n_items} items)",
        )


UPDATER = Updater()
