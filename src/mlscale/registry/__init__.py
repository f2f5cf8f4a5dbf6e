"""Versioned, checksummed, pickle-free model artifacts.

A model is ``app/name`` (``recommend/ml100k``); every :meth:`Store.publish`
adds version 1, 2, 3... that never changes afterwards. ``latest`` always means
the highest version, and named aliases (``production``, ``staging``) move
with :meth:`Store.promote`. A reference is ``app/name``, ``app/name@alias`` or
``app/name@3`` (:class:`ModelRef`).

Arrays are stored as ``.npy`` and tables as ``.parquet``, never pickled; each
version's ``manifest.json`` records the SHA-256 of every file, and loading
refuses a tampered, incomplete or pickled version with an
:class:`~mlscale.errors.ArtifactError` naming the file. Publishing is atomic:
a version is visible completely or not at all.

:func:`open_store` opens a folder (:class:`FileStore`) or, for
``s3://bucket/prefix``, an S3-compatible bucket (:class:`ObjectStore`: the
same guarantees through conditional writes, and a verified read-through cache
of versions on each host).

>>> import tempfile
>>> import numpy as np
>>> import pyarrow as pa
>>> from mlscale.registry import open_store
>>> with tempfile.TemporaryDirectory() as tmp:
...     store = open_store(tmp)
...     published = store.publish(
...         "recommend", "ml100k",
...         arrays={"item_factors": np.eye(3, dtype=np.float32)},
...         tables={"items": pa.table({"item_id": [10, 20, 30]})},
...         params={"factors": 3}, metrics={"ndcg@10": 0.25},
...         engine="local", data_fingerprint="sha256:0123",
...     )
...     _ = store.promote("recommend/ml100k@1", "production")
...     model = store.load("recommend/ml100k@production")
...     print(published.ref, model.arrays["item_factors"].shape, model.tables["items"].num_rows)
...     print(store.aliases("recommend", "ml100k"))
...     del model  # release the memory maps before the folder goes
recommend/ml100k@1 (3, 3) 3
{'latest': 1, 'production': 1}
"""

from __future__ import annotations

from mlscale.registry._filestore import ALLOWED_SUFFIXES, FileStore
from mlscale.registry._manifest import Manifest
from mlscale.registry._names import NAME_RULE
from mlscale.registry._objectstore import ObjectStore
from mlscale.registry._open import open_store
from mlscale.registry._ref import LATEST, ModelRef
from mlscale.registry._store import LoadedModel, Store

__all__ = [
    "ALLOWED_SUFFIXES",
    "LATEST",
    "NAME_RULE",
    "FileStore",
    "LoadedModel",
    "Manifest",
    "ModelRef",
    "ObjectStore",
    "Store",
    "open_store",
]
