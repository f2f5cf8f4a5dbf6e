"""Extra routes under a path prefix: how a caller adds its own pages or JSON API to the service.

The serve stage names no application and no user interface. A caller that
wants more routes (``mlscale serve --console`` mounts the analyst console at
``/ui/``) hands the :class:`~mlscale.serve.ServingApp` one or more
:class:`Mount` objects; the worker processes build theirs from
``ServeConfig.mounts``, pairs of a ``"module:attribute"`` factory and a JSON
text of options, as they do for the predictor factory.

A mount sees the method, the path (prefix included), the raw query string and
the body, and answers once through ``reply``, **on the event loop's thread**
(a mount that works in a thread hands the reply back with
``loop.call_soon_threadsafe``). The bearer token is checked before a mount is
called, except for the paths the mount calls :meth:`Mount.public` (static
pages: a browser loads them without a header, then sends the token itself).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from mlscale.errors import ConfigError

__all__ = ["Mount", "MountFactory", "Reply", "build_mount"]

#: ``reply(status, body, content_type, headers)``: answer the request (once).
Reply = Callable[[int, bytes, bytes, tuple[tuple[bytes, bytes], ...]], None]


class Mount(Protocol):
    """Routes under ``prefix`` (such as ``/ui``: it answers ``/ui`` and everything under ``/ui/``)."""

    prefix: str

    def public(self, path: str) -> bool:
        """Whether ``path`` is served without the bearer token."""
        ...

    def handle(self, method: str, path: str, query: str, body: bytes, reply: Reply) -> None:
        """Answer one request through ``reply``, now or later (on the loop's thread)."""
        ...

    def openapi(self) -> Mapping[str, Any]:
        """``{"paths": {...}, "schemas": {...}}`` merged into ``/openapi.json``."""
        ...


#: Builds a mount in a worker process from its options.
MountFactory = Callable[[Mapping[str, Any]], Mount]


def build_mount(factory: str, options: str = "{}") -> Mount:
    """The mount ``"module:attribute"`` builds from ``options`` (a JSON object)."""
    module, sep, attr = factory.partition(":")
    if not sep:
        raise ConfigError(f"expected 'module:attribute' for a mount factory, got {factory!r}")
    try:
        made: MountFactory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"cannot load the mount factory {factory!r}: {err}") from None
    opts = json.loads(options)
    if not isinstance(opts, dict):
        raise ConfigError(f"the options of mount {factory!r} must be a JSON object")
    return made(opts)
