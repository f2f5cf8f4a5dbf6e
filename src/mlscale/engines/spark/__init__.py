"""The Apache Spark engine (the ``[spark]`` extra): the session, and Arrow <-> Spark helpers for trainers.

- :class:`SparkEngine`, :func:`java_version`, :func:`spark_errors`: :mod:`.session`;
- :func:`functions`, :func:`to_arrow`, :func:`staging_dir`: :mod:`.arrow`.

Nothing here imports pyspark at import time.
"""

from mlscale.engines.spark.arrow import functions, staging_dir, to_arrow
from mlscale.engines.spark.session import MIN_JAVA, SparkEngine, java_version, spark_errors

__all__ = ["MIN_JAVA", "SparkEngine", "functions", "java_version", "spark_errors", "staging_dir", "to_arrow"]
