"""The application contract: how an application plugs into every stage.

An application (``apps/<name>/``) is found through the ``mlscale.apps`` entry
point group, so the stages and the command line never import one by name.
It answers the generic verbs it supports (``mlscale train APP``,
``mlscale evaluate APP``...) and may add commands of its own.
"""

from __future__ import annotations

import abc
import argparse
from typing import TYPE_CHECKING, Any, ClassVar

from mlscale.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from mlscale.loadtest.scenario import Scenario
    from mlscale.registry import LoadedModel
    from mlscale.serve.predictor import Predictor

__all__ = ["VERBS", "Application"]

#: Generic verbs of the command line: ``mlscale VERB APP ...``.
VERBS: tuple[str, ...] = ("train", "evaluate", "update", "precompute")


class Application(abc.ABC):
    """One ML application (recommendations, threat detection...)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    #: The subset of :data:`VERBS` this application answers.
    verbs: ClassVar[frozenset[str]]

    @abc.abstractmethod
    def add_arguments(self, verb: str, parser: argparse.ArgumentParser) -> None:
        """Add the flags of ``mlscale VERB <this app>`` to ``parser``."""

    @abc.abstractmethod
    def run(self, verb: str, args: argparse.Namespace) -> int:
        """Carry out ``verb``; return the exit status."""

    def add_commands(self, sub: Any) -> None:  # noqa: B027 - optional hook
        """Add the application's own top-level commands (optional)."""

    def predictor(self, model: LoadedModel) -> Predictor:
        """What ``mlscale serve`` answers requests with, for a loaded version of one of this app's models.

        Applications that can be served override this; the default refuses.
        """
        raise ConfigError(
            f"the {self.name!r} application cannot serve models yet",
            hint="serve a model of an application that implements Application.predictor",
        )

    def scenario(self, mix: dict[str, Any], *, data: str | None, data_dir: Path, model: str) -> Scenario:
        """The requests ``mlscale loadtest --scenario <this app>`` sends, built from ``data``.

        ``mix`` holds the scenario file's ``[mix]`` options; ``model`` is the served
        model name the requests address. Applications that can be load-tested
        override this; the default refuses.
        """
        raise ConfigError(
            f"the {self.name!r} application has no load-test scenario",
            hint="load-test it with a plain GET (no --scenario) or a scenario of another application",
        )
