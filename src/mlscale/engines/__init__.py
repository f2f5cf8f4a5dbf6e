"""Where training runs. :func:`get_engine` is the one place an engine is chosen.

A new engine is one module (or package) here with an :class:`Engine` subclass,
one line in :func:`get_engine`, and one trainer per application that supports it.

>>> with get_engine("local", threads=1) as engine:
...     engine.name, engine.threads
('local', 1)
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

from mlscale.config import load_settings
from mlscale.engines.base import Engine
from mlscale.engines.local import LocalEngine
from mlscale.errors import ConfigError

__all__ = ["ENGINES", "Engine", "LocalEngine", "get_engine"]

ENGINES = ("local", "spark")


def get_engine(
    name: str, *, threads: int = 0, master: str | None = None, conf: Mapping[str, str] | None = None
) -> Engine:
    """The engine called ``name``, each taking the options that concern it; a missing one says the fix.

    ``threads``: the local engine's (0: the ``MLSCALE_THREADS`` setting, whose own 0 means every core);
    ``master`` / ``conf``: Spark's.
    """
    if name == "local":
        return LocalEngine(threads=int(threads or 0) or load_settings().threads)
    if name == "spark":
        # The engine module imports pyspark only when a session starts; check for it now, so a missing
        # extra is one clear line before any work rather than a failure after the data was read.
        if importlib.util.find_spec("pyspark") is None:
            raise ConfigError(
                "the spark engine needs pyspark, which is not installed",
                hint="install it with `pip install 'mlscale[spark]'` (and Java 17+)",
            )
        from mlscale.engines.spark import SparkEngine

        return SparkEngine(master=master, conf=conf)
    raise ConfigError(f"unknown engine {name!r}: expected one of {', '.join(ENGINES)}")
