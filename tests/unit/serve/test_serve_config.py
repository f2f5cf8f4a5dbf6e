"""Settings of a serve run, the model arguments, and the docstring examples of the package."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

from mlscale.errors import ConfigError, ModelNotFoundError, ValidationError
from mlscale.registry import FileStore
from mlscale.serve import ServeConfig, resolve_models


def test_config_round_trips_through_json(tmp_path: Path) -> None:
    config = ServeConfig(registry=str(tmp_path), models=(("a", "recommend/a@production"),), workers=3, batch_wait=0.002)
    assert ServeConfig.from_json(config.to_json()) == config
    # What a worker is given to reopen the store: an object-store URI must survive the trip whole.
    remote = ServeConfig(registry="s3://bucket/team", models=(("a", "recommend/a"),))
    assert ServeConfig.from_json(remote.to_json()).registry == "s3://bucket/team"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("workers", 0),
        ("port", 70000),
        ("max_batch", 0),
        ("timeout", 0.0),
        ("batch_wait", 2.0),
        ("max_body", 10),
    ],
)
def test_config_names_the_bad_field(tmp_path: Path, field: str, value: object) -> None:
    with pytest.raises(ValidationError) as err:
        ServeConfig(registry=str(tmp_path), models=(("a", "recommend/a"),), **{field: value})  # type: ignore[arg-type]
    assert err.value.field == field


def test_two_models_cannot_share_a_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="served as 'a'"):
        ServeConfig(registry=str(tmp_path), models=(("a", "recommend/a"), ("a", "recommend/b")))


def test_model_arguments(store: FileStore) -> None:
    assert resolve_models(store, ["toy"]) == (("toy", "recommend/toy"),)
    assert resolve_models(store, ["shop=toy@production"]) == (("shop", "recommend/toy@production"),)
    assert resolve_models(store, []) == (("toy", "recommend/toy@production"),)  # production when it exists
    with pytest.raises(ConfigError, match="no model named 'nope'"):
        resolve_models(store, ["nope"])
    with pytest.raises(ModelNotFoundError):
        resolve_models(store, ["recommend/toy@staging"])


@pytest.mark.parametrize("name", ["mlscale.serve", "mlscale.serve.predictor", "mlscale.serve._metrics"])
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0
