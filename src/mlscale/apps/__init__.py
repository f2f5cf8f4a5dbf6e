"""Applications, discovered through the ``mlscale.apps`` entry point group.

>>> "recommend" in application_names()
True
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from mlscale.apps.base import VERBS, Application
from mlscale.errors import ConfigError

__all__ = ["VERBS", "Application", "application_names", "get_application"]


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group="mlscale.apps")}


@cache
def _load(name: str) -> Application:
    # Loaded one at a time: a server of one application need not import the others' libraries.
    ep = _entry_points()[name]
    app = ep.load()
    if not isinstance(app, Application):
        raise ConfigError(f"entry point {ep.name!r} ({ep.value}) is not an mlscale Application")
    return app


def application_names() -> list[str]:
    """Names of the installed applications (nothing is imported)."""
    return sorted(_entry_points())


def get_application(name: str) -> Application:
    """The application called ``name``; an unknown name raises an error listing the known ones."""
    names = _entry_points()
    if name not in names:
        close = difflib.get_close_matches(name, list(names), n=1)
        raise ConfigError(
            f"unknown application {name!r}; installed: {', '.join(sorted(names)) or 'none'}",
            hint=f"did you mean {close[0]!r}?" if close else None,
        )
    return _load(name)
