"""The examples in the registry's docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

_MODULES = [
    "mlscale.registry",
    "mlscale.registry._checksum",
    "mlscale.registry._manifest",
    "mlscale.registry._names",
    "mlscale.registry._ref",
]


@pytest.mark.parametrize("name", _MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
