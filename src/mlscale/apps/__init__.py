"""Applications, discovered through the ``mlscale.apps`` entry point group.

Besides the installed entry points, ``MLSCALE_APPS`` may name more, as
``NAME=module:attribute`` separated by commas (how the contract suite runs its
example application without packaging it). An application whose libraries are
missing fails on load with the ``pip install 'mlscale[NAME]'`` line that brings them.

>>> "recommend" in application_names()
True
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from functools import cache
from typing import TYPE_CHECKING

from mlscale.apps.base import VERBS, Application, load_object
from mlscale.errors import ConfigError

if TYPE_CHECKING:
    from mlscale.registry import LoadedModel
    from mlscale.serve.predictor import Predictor

__all__ = ["VERBS", "Application", "application_names", "build_predictor", "get_application"]


@cache
def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group="mlscale.apps")}
    for item in filter(None, (s.strip() for s in os.environ.get("MLSCALE_APPS", "").split(","))):
        name, sep, value = item.partition("=")
        if not sep or ":" not in value:
            raise ConfigError(f"MLSCALE_APPS: expected NAME=module:attribute, got {item!r}")
        found[name.strip()] = value.strip()
    return found


def _missing_extra(name: str, module: str) -> ConfigError:
    return ConfigError(
        f"the {name} app needs the {module!r} library, which is not installed",
        hint=f"install it with `pip install 'mlscale[{name}]'`",
    )


@cache
def _load(name: str) -> Application:
    # Loaded one at a time: a server of one application need not import the others' libraries.
    value = _entry_points()[name]
    try:
        app = load_object(value)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("mlscale"):
            raise _missing_extra(name, exc.name.partition(".")[0]) from None
        raise
    if not isinstance(app, Application):
        raise ConfigError(f"entry point {name!r} ({value}) is not an mlscale Application")
    for module in getattr(app, "requires", ()):
        if importlib.util.find_spec(module) is None:
            raise _missing_extra(name, module)
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


def build_predictor(loaded: LoadedModel) -> Predictor:
    """The predictor the model's application gives for a loaded version (what ``mlscale serve`` injects)."""
    return get_application(loaded.manifest.app).predictor(loaded)
