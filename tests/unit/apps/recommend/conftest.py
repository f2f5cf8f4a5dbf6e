from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from mlscale.apps.recommend import ImplicitRecommender
from mlscale.apps.recommend.ingest import ingest_matrix
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.data import InteractionReader


@pytest.fixture(scope="session")
def ml100k_table(shared_data: Path) -> pa.Table:
    return InteractionReader(shared_data / "movielens-100k" / "u.data").read_all()


@pytest.fixture(scope="session")
def ml100k_matrix(ml100k_table: pa.Table) -> InteractionMatrix:
    return ingest_matrix(ml100k_table.to_batches())


@pytest.fixture(scope="session")
def ml100k_model(ml100k_matrix: InteractionMatrix) -> ImplicitRecommender:
    return ImplicitRecommender(threads=2).fit(ml100k_matrix)
