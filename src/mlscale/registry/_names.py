"""Validation of the names that become folder and file names in a registry.

Every app, model name, alias and array/table key ends up as one path component
on disk, so each is checked against one strict pattern before it is used:
nothing a caller passes can escape the registry root.

>>> check_name("ml100k", "model name")
'ml100k'
>>> check_name("../x", "model name")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
mlscale.errors.RegistryError: invalid model name '../x': ...
"""

from __future__ import annotations

import re
from typing import TypeGuard

from mlscale.errors import RegistryError

__all__ = ["NAME_PATTERN", "NAME_RULE", "check_name", "is_valid_name"]

#: What app, model, alias names and artifact keys must match.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")

#: The rule in words, for error messages.
NAME_RULE = (
    "use 1 to 64 characters from a-z, 0-9, '_', '.' and '-', starting with a letter or digit "
    "(no upper case, no '/', no '..')"
)


def is_valid_name(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a string that :func:`check_name` accepts."""
    return isinstance(value, str) and NAME_PATTERN.fullmatch(value) is not None and ".." not in value


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a valid ``what`` (app, model name, alias...); else raise.

    Raises :class:`~mlscale.errors.RegistryError` that says what is allowed.
    """
    if not is_valid_name(value):
        raise RegistryError(f"invalid {what} {value!r}: {NAME_RULE}")
    return value
