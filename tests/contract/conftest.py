"""One Spark session (``local[2]``) for the whole test run, shared by every spark test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlscale.engines.spark import SparkEngine


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[SparkEngine]:
    engine = SparkEngine(master="local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    _ = engine.session  # start it once; engines created later in this process reuse it
    yield engine
    engine.close()
