"""Batch top-K for every user to Parquet, a chunk of users at a time (bounded memory).

Output columns: ``user``, ``rank`` (1 = best), ``item``, ``score``. The file is
written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from mlscale.apps.recommend.model import ImplicitRecommender
from mlscale.errors import ValidationError

if TYPE_CHECKING:
    from mlscale.apps.base import Job
    from mlscale.engines import Engine

__all__ = ["PRECOMPUTER", "LocalPrecomputer", "precompute", "precompute_line"]


def precompute(
    model: ImplicitRecommender,
    out: str | Path,
    *,
    k: int = 100,
    chunk_users: int = 10_000,
    exclude_seen: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Write every user's top-``k`` to ``out`` (Parquet); returns the rows written."""
    model._check_fitted()
    if chunk_users < 1:
        raise ValidationError(f"expected >= 1, got {chunk_users}", field="chunk_users")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    id_type = pa.int64() if model.user_ids_.dtype.kind in "iu" else pa.string()
    item_type = pa.int64() if model.item_ids_.dtype.kind in "iu" else pa.string()
    schema = pa.schema([("user", id_type), ("rank", pa.int16()), ("item", item_type), ("score", pa.float32())])
    written = 0
    # One BLAS thread: implicit's top-k runs its own threads, and two pools on the same cores fight
    # (measured: 1.7x users/s on 2 cores, benchmarks/README.md).
    try:
        with threadpool_limits(1, "blas"), pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for start in range(0, model.n_users, chunk_users):
                users = model.user_ids_[start : start + chunk_users]
                recs = model.recommend(users, k=k, exclude_seen=exclude_seen)
                ok = recs.valid.ravel()
                n, width = recs.items.shape
                table = pa.table(
                    {
                        "user": pa.array(np.repeat(users, width)[ok], type=id_type),
                        "rank": pa.array(np.tile(np.arange(1, width + 1, dtype=np.int16), n)[ok]),
                        "item": pa.array(recs.items.ravel()[ok], type=item_type),
                        "score": pa.array(recs.scores.ravel()[ok]),
                    },
                    schema=schema,
                )
                writer.write_table(table)
                written += table.num_rows
                if on_chunk is not None:
                    on_chunk(len(users))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


def precompute_line(model: ImplicitRecommender, rows: int, took: float, out: object) -> str:
    """What ``mlscale precompute recommend`` prints, whichever engine scored."""
    return (
        f"{model.n_users:,} users, {rows:,} rows in {took:.1f}s "
        f"({model.n_users / max(took, 1e-9):,.0f} users/s) -> {out}"
    )


class LocalPrecomputer:
    """Every user's top-k in this process, a chunk at a time (the contract's Precomputer)."""

    def precompute(self, engine: Engine, model: ImplicitRecommender, job: Job) -> str:
        k = int(job.option("k", 100))
        model._check_k(k, model.n_items)
        start = time.perf_counter()
        out = job.option("out")
        rows = precompute(
            model,
            out,
            k=k,
            chunk_users=int(job.option("chunk_users", 10_000)),
            exclude_seen=not job.option("include_seen", False),
        )
        return precompute_line(model, rows, time.perf_counter() - start, out)


PRECOMPUTER = LocalPrecomputer()
