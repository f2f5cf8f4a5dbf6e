"""Applications, discovered through the ``mlscale.apps`` entry point group.

>>> "recommend" in application_names()
True
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib.metadata import entry_points

from mlscale.apps.base import VERBS, Application
from mlscale.errors import ConfigError

__all__ = ["VERBS", "Application", "application_names", "get_application"]


@cache
def _registry() -> dict[str, Application]:
    found: dict[str, Application] = {}
    for ep in entry_points(group="mlscale.apps"):
        app = ep.load()
        if not isinstance(app, Application):
            raise ConfigError(f"entry point {ep.name!r} ({ep.value}) is not an mlscale Application")
        found[ep.name] = app
    return found


def application_names() -> list[str]:
    """Names of the installed applications."""
    return sorted(_registry())


def get_application(name: str) -> Application:
    """The application called ``name``; an unknown name raises an error listing the known ones."""
    apps = _registry()
    if name not in apps:
        close = difflib.get_close_matches(name, list(apps), n=1)
        raise ConfigError(
            f"unknown application {name!r}; installed: {', '.join(sorted(apps)) or 'none'}",
            hint=f"did you mean {close[0]!r}?" if close else None,
        )
    return apps[name]
