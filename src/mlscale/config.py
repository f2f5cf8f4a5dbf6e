"""Typed settings, read from ``MLSCALE_*`` environment variables.

Flags on the command line win over the environment, which wins over the
defaults below. Nothing is read at import time: call :func:`load_settings`.

>>> s = load_settings({"MLSCALE_DATA_DIR": "/data", "MLSCALE_THREADS": "2"})
>>> str(s.data_dir), s.threads
('/data', 2)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlscale.errors import ConfigError

__all__ = ["Settings", "default_cache_dir", "load_settings"]


def default_cache_dir() -> Path:
    """The per-user cache folder (``$XDG_CACHE_HOME/mlscale`` or ``~/.cache/mlscale``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlscale"


def _default_registry() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mlscale" / "registry"


@dataclass(frozen=True, slots=True)
class Settings:
    """Where data and models live and how much of the machine mlscale may use."""

    data_dir: Path
    #: A folder or a URI (``s3://bucket/prefix``): a string, since ``pathlib`` would fold ``//`` into ``/``.
    registry: str
    threads: int
    api_token: str | None = None


def _int(env: Mapping[str, str], key: str, default: int, minimum: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise ConfigError(f"{key}={raw!r}: expected a number >= {minimum}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    data_dir = env.get("MLSCALE_DATA_DIR") or str(default_cache_dir() / "data")
    registry = env.get("MLSCALE_REGISTRY") or str(_default_registry())
    return Settings(
        data_dir=Path(data_dir).expanduser(),
        registry=registry if "://" in registry else str(Path(registry).expanduser()),
        threads=_int(env, "MLSCALE_THREADS", 0, 0),
        api_token=env.get("MLSCALE_API_TOKEN") or None,
    )
