"""Fixtures shared by the registry tests: a store in a temporary folder and a publisher."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from mlscale.registry import FileStore, Manifest

Publish = Callable[..., Manifest]


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "registry")


@pytest.fixture
def publish(store: FileStore) -> Publish:
    """Publish a small but realistic model (factors, ids, a table); keyword arguments override."""

    def _publish(app: str = "recommend", name: str = "ml100k", seed: int = 0, **overrides: Any) -> Manifest:
        rng = np.random.default_rng(seed)
        kwargs: dict[str, Any] = {
            "arrays": {
                "user_factors": rng.standard_normal((50, 8)).astype(np.float32),
                "item_ids": np.arange(100, 140, dtype=np.int64),
            },
            "tables": {"items": pa.table({"item_id": [1, 2, 3], "title": ["a", "b", "c"]})},
            "params": {"factors": 8, "regularization": 0.01, "seed": seed},
            "metrics": {"ndcg@10": 0.3 + seed / 100, "precision@10": 0.2, "recall@10": 0.25, "map@10": 0.1},
            "engine": "local",
            "data_fingerprint": "sha256:feedface",
        }
        kwargs.update(overrides)
        return store.publish(app, name, **kwargs)

    return _publish
