"""The examples in the threat application's docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

_MODULES = [
    "mlscale.apps.threat.corpus",
    "mlscale.apps.threat.evaluate",
    "mlscale.apps.threat.feedback",
    "mlscale.apps.threat.ingest",
    "mlscale.apps.threat.lda",
    "mlscale.apps.threat.model",
    "mlscale.apps.threat.predictor",
    "mlscale.apps.threat.rank",
    "mlscale.apps.threat.schema",
    "mlscale.apps.threat.synthetic",
    "mlscale.apps.threat.words",
]


@pytest.mark.parametrize("name", _MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
