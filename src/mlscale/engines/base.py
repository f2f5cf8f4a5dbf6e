"""The engine contract: where an application's training runs.

An engine is deliberately small: it names itself, knows its parallelism and
releases what it holds. Each application declares one trainer per engine it
supports (``Application.trainers``, keyed by :attr:`Engine.name`); the generic
``train`` verb picks it, so neither the engines nor the apps branch on an engine.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Any, ClassVar

__all__ = ["Engine"]


class Engine(abc.ABC):
    """A place to run training (this process, a Spark cluster...)."""

    name: ClassVar[str]

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Facts about the engine for model manifests and logs (JSON-able)."""

    @property
    @abc.abstractmethod
    def threads(self) -> int:
        """Cores the engine trains with (for a cluster: the default parallelism)."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the engine holds (idempotent)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
