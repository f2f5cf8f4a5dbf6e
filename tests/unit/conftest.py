"""Fixtures shared by the unit tests of more than one stage."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from mlscale.data.readers import interaction_schema

#: ``batches(users, items, size, id_type=int64)``: interaction record batches of at most ``size`` rows.
BatchMaker = Callable[..., list[pa.RecordBatch]]


INT64 = pa.int64()


def _batches(users: np.ndarray, items: np.ndarray, size: int, id_type: pa.DataType = INT64) -> list[pa.RecordBatch]:
    schema = interaction_schema(id_type)
    out = []
    for s in range(0, users.size, size):
        n = min(size, users.size - s)
        out.append(
            pa.RecordBatch.from_arrays(
                [
                    pa.array(users[s : s + n], type=id_type),
                    pa.array(items[s : s + n], type=id_type),
                    pa.array(np.ones(n, np.float32)),
                    pa.nulls(n, pa.int64()),
                ],
                schema=schema,
            )
        )
    return out


@pytest.fixture
def batches() -> BatchMaker:
    """Interaction record batches (all ratings 1, no timestamps) cut from user and item id arrays."""
    return _batches
