"""Open the store a location names: a folder, or an object-store URI.

Its own module so the two stores need not import each other (the object store
builds on the file store; choosing between them belongs to neither).
"""

from __future__ import annotations

import os

from mlscale.config import load_settings
from mlscale.registry._filestore import FileStore
from mlscale.registry._objectstore import ObjectStore
from mlscale.registry._store import Store

__all__ = ["open_store"]


def open_store(root: str | os.PathLike[str] | None = None) -> Store:
    """The model store at ``root`` (default: the ``registry`` setting, ``$MLSCALE_REGISTRY``).

    ``s3://bucket/prefix`` opens an :class:`~mlscale.registry.ObjectStore` (boto3 is
    imported only when it is used); anything else is a folder (:class:`~mlscale.registry.FileStore`).
    A store's :attr:`~mlscale.registry.Store.location` reopens it here.
    """
    location = load_settings().registry if root is None else root
    if str(location).startswith("s3:/"):  # also what pathlib makes of "s3://" (one slash), if given a Path
        return ObjectStore(str(location))
    return FileStore(location)
