"""The vision application's optional libraries, imported only when a command needs them.

The other applications and the stages never import torch; the vision modules
call :func:`require` inside the functions that need a library, so that a
missing one is a clear error with the exact install line, not a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mlscale.errors import DependencyError

__all__ = ["INSTALL", "require"]

#: The install line printed when a vision library is missing.
INSTALL = "pip install 'mlscale[vision]'"


def require(module: str) -> ModuleType:
    """Import ``module`` (``torch``, ``onnxruntime``...) or raise a :class:`DependencyError` naming the fix.

    >>> require("json").__name__
    'json'
    >>> require("no_such_module_xyz")
    Traceback (most recent call last):
    ...
    mlscale.errors.DependencyError: the vision application needs 'no_such_module_xyz', which is not installed
      hint: pip install 'mlscale[vision]'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DependencyError(
            f"the vision application needs {module.split('.')[0]!r}, which is not installed", hint=INSTALL
        ) from None
