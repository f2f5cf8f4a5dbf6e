"""Between Spark and Arrow: the helpers every application's Spark trainer uses.

pyspark is imported when a function runs, never when this module is imported,
so a trainer module can be loaded (and its docs built) without the extra.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

__all__ = ["functions", "staging_dir", "to_arrow"]


def functions() -> Any:
    """``pyspark.sql.functions`` (imported on first use)."""
    from pyspark.sql import functions as f

    return f


def to_arrow(df: Any) -> pa.Table:
    """A Spark DataFrame collected as an Arrow table (``toArrow`` on Spark 4, through pandas before)."""
    if hasattr(df, "toArrow"):
        return df.toArrow()
    return pa.Table.from_pandas(df.toPandas(), preserve_index=False)  # pragma: no cover - Spark < 4


@contextmanager
def staging_dir(prefix: str = "mlscale-stage-", parent: Path | None = None) -> Iterator[Path]:
    """A temporary folder (under ``parent``) for data staged as Parquet for Spark; removed on exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
