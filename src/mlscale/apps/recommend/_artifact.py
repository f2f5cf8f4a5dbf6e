"""Recommender models to and from the registry (arrays only, never pickles)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from mlscale.apps.base import Artifact
from mlscale.apps.base import publish_model as publish
from mlscale.apps.recommend import ann
from mlscale.apps.recommend.itemitem import ITEM_ITEM_KINDS, item_item_class
from mlscale.apps.recommend.model import ImplicitRecommender
from mlscale.errors import ArtifactError
from mlscale.registry import LoadedModel, Manifest, Store

__all__ = ["APP", "CODEC", "RecommendCodec", "from_artifact", "publish_model"]

APP = "recommend"
# numpy dtype kinds each array may have: f float, i/u integer, U/S text.
_KINDS = {
    "user_factors": "f",
    "item_factors": "f",
    "user_ids": "iuUS",
    "item_ids": "iuUS",
    "seen_data": "f",
    "seen_indices": "iu",
    "seen_indptr": "iu",
    "item_popularity": "fiu",
}
_ARRAYS = (
    "user_factors",
    "item_factors",
    "user_ids",
    "item_ids",
    "seen_indptr",
    "seen_indices",
    "seen_data",
    "item_popularity",
)


class RecommendCodec:
    """The recommender's :class:`~mlscale.apps.base.Codec`: factors, id maps, seen items, popularity."""

    def to_artifact(self, model: ImplicitRecommender) -> Artifact:
        seen = model.seen_
        arrays = {
            "user_factors": model.user_factors_,
            "item_factors": model.item_factors_,
            "user_ids": model.user_ids_,
            "item_ids": model.item_ids_,
            "seen_indptr": seen.indptr,
            "seen_indices": seen.indices,
            "seen_data": seen.data,
            "item_popularity": model.item_popularity_,
        }
        info = {
            "fold_in_weight": model.fold_in_weight_,
            "users": model.n_users,
            "items": model.n_items,
            "interactions": int(seen.nnz),
        }
        index = getattr(model, "ann_", None)
        if index is not None:  # the index: its own checksummed file, its facts in the manifest
            arrays[ann.ARRAY_KEY] = index.to_array()
            info[ann.META_KEY] = index.meta
        return Artifact(arrays=arrays, params=model.get_params(), extra=info)

    def from_artifact(self, loaded: LoadedModel) -> ImplicitRecommender:
        return from_artifact(loaded)


CODEC = RecommendCodec()


def publish_model(
    store: Store,
    name: str,
    model: ImplicitRecommender,
    *,
    metrics: Mapping[str, float],
    engine: str,
    data_fingerprint: str,
    extra: Mapping[str, Any] | None = None,
) -> Manifest:
    """Publish a fitted model as a new version of ``recommend/NAME`` (:func:`mlscale.apps.base.publish_model`)."""
    return publish(
        store, APP, CODEC, name, model, metrics=metrics, engine=engine, data_fingerprint=data_fingerprint, extra=extra
    )


def from_artifact(loaded: LoadedModel) -> ImplicitRecommender:
    """Rebuild a recommender from a loaded registry version (arrays stay memory-mapped)."""
    manifest = loaded.manifest
    if manifest.app != APP:
        raise ArtifactError(f"{manifest.ref} is a {manifest.app!r} model, not a recommender")
    missing = [a for a in _ARRAYS if a not in loaded.arrays]
    if missing:
        raise ArtifactError(f"{manifest.ref}: the artifact lacks arrays {missing}")
    a = loaded.arrays
    try:
        # A re-signed artifact can hold any dtype: check them here, not as a traceback in a request.
        for key, kinds in _KINDS.items():
            if a[key].dtype.kind not in kinds:
                raise ValueError(f"{key} has dtype {a[key].dtype}, expected one of kinds {kinds!r}")
        if a["user_factors"].ndim != 2 or a["item_factors"].ndim != 2:
            raise ValueError("the factor arrays must be 2-D")
        kind = manifest.params.get("model")
        model: ImplicitRecommender
        if kind in ITEM_ITEM_KINDS:
            # An item-item model keeps no user factors (width 0) and its n_items x n_items weights as item factors.
            if a["item_factors"].shape[0] != a["item_factors"].shape[1]:
                raise ValueError("an item-item model's weights must be square")
            model = item_item_class(kind)(**manifest.params)
        else:
            if a["user_factors"].shape[1] != a["item_factors"].shape[1]:
                raise ValueError("user and item factors differ in width")
            model = ImplicitRecommender(**manifest.params)
        seen = sp.csr_matrix(
            (a["seen_data"], a["seen_indices"], a["seen_indptr"]),
            shape=(a["user_ids"].size, a["item_ids"].size),
        )
        if a["user_factors"].shape[0] != a["user_ids"].size or a["item_factors"].shape[0] != a["item_ids"].size:
            raise ValueError("factor rows do not match the id maps")
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{manifest.ref}: inconsistent recommender artifact ({exc})") from None
    model._set_state(
        user_factors=a["user_factors"],
        item_factors=a["item_factors"],
        user_ids=a["user_ids"],
        item_ids=a["item_ids"],
        seen=seen,
        fold_in_weight=float(manifest.extra.get("fold_in_weight", 1.0)),
        item_popularity=np.asarray(a["item_popularity"]),
    )
    meta = manifest.extra.get(ann.META_KEY)
    if meta is not None:
        if kind in ITEM_ITEM_KINDS:  # no item factors to index: a manifest that says otherwise was tampered with
            raise ArtifactError(f"{manifest.ref}: an item-item model cannot carry an approximate index")
        if ann.ARRAY_KEY not in a:
            raise ArtifactError(f"{manifest.ref}: the manifest describes an index but {ann.ARRAY_KEY}.npy is missing")
        model.ann_ = ann.AnnIndex.from_array(
            a[ann.ARRAY_KEY],
            dict(meta),
            n_items=model.n_items,
            factors=int(model.item_factors_.shape[1]),
            where=f"{manifest.ref}: {ann.ARRAY_KEY}.npy",
        )
    return model
