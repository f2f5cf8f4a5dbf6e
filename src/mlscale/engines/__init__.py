"""Where training runs. :func:`get_engine` is the one place an engine is chosen.

>>> with get_engine("local", threads=1) as engine:
...     engine.name, engine.threads
('local', 1)
"""

from __future__ import annotations

from typing import Any

from mlscale.config import load_settings
from mlscale.engines.base import Engine
from mlscale.engines.local import LocalEngine
from mlscale.errors import ConfigError

__all__ = ["ENGINES", "Engine", "LocalEngine", "get_engine"]

ENGINES = ("local", "spark")


def get_engine(name: str, **options: Any) -> Engine:
    """The engine called ``name``; a missing one raises an error that says the fix."""
    if name == "local":
        # 0 / unset means the MLSCALE_THREADS setting, whose own 0 means every core.
        return LocalEngine(threads=int(options.get("threads", 0) or 0) or load_settings().threads)
    if name == "spark":
        try:
            from mlscale.engines.spark import SparkEngine  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise ConfigError(
                f"the spark engine is not available ({exc})",
                hint="install it with `pip install 'mlscale[spark]'` (and Java 17+)",
            ) from None
        engine: Engine = SparkEngine(**options)
        return engine
    raise ConfigError(f"unknown engine {name!r}: expected one of {', '.join(ENGINES)}")
