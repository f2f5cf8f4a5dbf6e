"""The analyst console: a web page for threat hunting, feedback, models, serving and load tests.

It sits between the command line and the applications: it reads the registry
(:mod:`~mlscale.console.models`), the threat app's scored runs
(:mod:`~mlscale.console.hunt`) and verdict logs, past load-test reports
(:mod:`~mlscale.console.reports`) and a server's ``/metrics``
(:mod:`~mlscale.console.serving`), and runs retraining through the application
contract (:mod:`~mlscale.console.jobs`). No stage or application imports it.

It is served by the project's own HTTP stack as a :class:`mlscale.serve.Mount`
at ``/ui/`` (:mod:`~mlscale.console.api`): ``mlscale console`` runs it alone,
``mlscale serve --console`` beside the models. The page is plain HTML, CSS and
JavaScript shipped in the package (no build step, no CDN).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlscale.console.api import ConsoleMount, ConsoleSettings

__all__ = ["MOUNT_FACTORY", "ConsoleMount", "ConsoleSettings", "mount"]

#: What ``ServeConfig.mounts`` names to build the console in a worker process.
MOUNT_FACTORY = "mlscale.console:mount"


def mount(options: Mapping[str, Any]) -> ConsoleMount:
    """The console mount for ``options`` (registry, runs, reports, data_dir, state, server, token)."""
    return ConsoleMount(ConsoleSettings(options))
