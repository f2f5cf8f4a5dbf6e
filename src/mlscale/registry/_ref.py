"""References to a model in a registry: ``app/name``, ``app/name@alias``, ``app/name@3``.

>>> ref = ModelRef.parse("recommend/ml100k@production")
>>> ref.app, ref.name, ref.selector
('recommend', 'ml100k', 'production')
>>> str(ModelRef.parse("recommend/ml100k")), ModelRef.parse("recommend/ml100k@3").version
('recommend/ml100k', 3)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlscale.errors import RegistryError
from mlscale.registry._names import check_name

__all__ = ["LATEST", "ModelRef", "check_alias"]

#: The implicit alias of the highest version of a model.
LATEST = "latest"

_VERSION = re.compile(r"[1-9][0-9]{0,17}")
_DIGITS = re.compile(r"[0-9]+")


def check_alias(alias: object) -> str:
    """Return ``alias`` if it can name an alias; raise :class:`~mlscale.errors.RegistryError` if not.

    Aliases follow the name rule and must not be all digits (``@3`` means version 3).
    ``latest`` is accepted here: callers that store aliases refuse it themselves.
    """
    value = check_name(alias, "alias")
    if _DIGITS.fullmatch(value):
        raise RegistryError(
            f"invalid alias {value!r}: an alias cannot be all digits ('@{value}' already means version {value})"
        )
    return value


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Which model, and which of its versions: ``latest``, an alias or a version number.

    ``selector`` is always a string: ``"latest"``, an alias name, or a version
    number such as ``"3"`` (no leading zeros, versions start at 1).
    """

    app: str
    name: str
    selector: str = LATEST

    def __post_init__(self) -> None:
        check_name(self.app, "app name")
        check_name(self.name, "model name")
        if not isinstance(self.selector, str):
            raise RegistryError(f"invalid selector {self.selector!r}: expected a version number or an alias")
        if _DIGITS.fullmatch(self.selector):
            if not _VERSION.fullmatch(self.selector):
                raise RegistryError(
                    f"invalid version {self.selector!r} in {self.app}/{self.name}@{self.selector}: "
                    "versions are whole numbers from 1, written without leading zeros"
                )
        else:
            check_alias(self.selector)

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``app/name`` (latest), ``app/name@alias`` or ``app/name@VERSION``."""
        if not isinstance(text, str):
            raise RegistryError(f"invalid model reference {text!r}: expected a string like 'app/name@3'")
        model, at, selector = text.partition("@")
        app, slash, name = model.partition("/")
        if not slash or "/" in name or (at and not selector):
            raise RegistryError(
                f"invalid model reference {text!r}: expected 'app/name', 'app/name@alias' or "
                "'app/name@VERSION' (for example 'recommend/ml100k@production')"
            )
        return cls(app, name, selector if at else LATEST)

    @property
    def version(self) -> int | None:
        """The version number if the selector is one, else ``None``."""
        return int(self.selector) if _VERSION.fullmatch(self.selector) else None

    @property
    def is_latest(self) -> bool:
        """Whether this reference follows the highest version."""
        return self.selector == LATEST

    @property
    def model(self) -> str:
        """``app/name``, without the selector."""
        return f"{self.app}/{self.name}"

    def with_selector(self, selector: str | int) -> ModelRef:
        """The same model with another selector (a version number or an alias)."""
        return ModelRef(self.app, self.name, str(selector))

    def __str__(self) -> str:
        return self.model if self.is_latest else f"{self.model}@{self.selector}"
