"""The embedded default engine: training in this process, on this machine's cores."""

from __future__ import annotations

import os
import platform
from typing import Any, ClassVar

from mlscale.engines.base import Engine
from mlscale.errors import ValidationError

__all__ = ["LocalEngine"]


class LocalEngine(Engine):
    """Train in-process with ``threads`` worker threads (0 = every core).

    >>> LocalEngine(threads=2).threads
    2
    """

    name: ClassVar[str] = "local"

    def __init__(self, threads: int = 0) -> None:
        if threads < 0:
            raise ValidationError(f"expected 0 (all cores) or more, got {threads}", field="threads")
        self._threads = threads

    @property
    def threads(self) -> int:
        return self._threads or (os.cpu_count() or 1)

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "threads": self.threads,
            "host": platform.node(),
            "python": platform.python_version(),
        }
