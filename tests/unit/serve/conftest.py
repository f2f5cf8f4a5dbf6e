"""A small recommender in a registry, trained once for the serve unit tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlscale.apps.recommend import ImplicitRecommender, publish_model
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.registry import FileStore, open_store


def _model(seed: int) -> ImplicitRecommender:
    rng = np.random.default_rng(seed)
    users = rng.integers(1, 120, 6000)
    items = (users % 7) * 30 + rng.integers(0, 40, 6000)
    matrix = InteractionMatrix.from_arrays(users, items)
    return ImplicitRecommender(factors=16, iterations=4, threads=1, seed=seed).fit(matrix)


@pytest.fixture(scope="session")
def small_model() -> ImplicitRecommender:
    return _model(0)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, small_model: ImplicitRecommender) -> Path:
    root = tmp_path_factory.mktemp("serve-registry")
    store = open_store(root)
    publish_model(store, "toy", small_model, metrics={"ndcg@10": 0.1}, engine="local", data_fingerprint="t")
    store.promote("recommend/toy@1", "production")
    return root


@pytest.fixture
def store(registry: Path) -> FileStore:
    return open_store(registry)
