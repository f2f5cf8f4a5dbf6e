"""Params classes -> CLI flags -> params -> manifest dict, and the checks their metadata drives."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

import pytest

from mlscale._cli.params import add_params_arguments, params_from_args, params_to_argv
from mlscale.apps.base import param, params_from_dict, params_to_dict
from mlscale.apps.recommend.params import AlsParams, BprParams
from mlscale.cli import main
from mlscale.errors import ValidationError

FAMILIES = {"als": AlsParams, "bpr": BprParams}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_params_arguments(parser, FAMILIES)
    return parser


def test_defaults_come_from_the_dataclass_per_family() -> None:
    parser = _parser()
    assert params_from_args(FAMILIES, parser.parse_args([])) == ("als", AlsParams())
    family, bpr = params_from_args(FAMILIES, parser.parse_args(["--model", "bpr", "--factors", "8"]))
    assert family == "bpr"
    assert bpr == BprParams(factors=8)
    assert bpr.iterations == 100  # BPR's own default, not ALS's 15


def test_an_engine_default_fills_only_what_the_user_did_not_set() -> None:
    parser = _parser()
    spark = {"regularization": 0.05}
    assert params_from_args(FAMILIES, parser.parse_args([]), spark)[1].regularization == 0.05
    assert params_from_args(FAMILIES, parser.parse_args(["--regularization", "2"]), spark)[1].regularization == 2.0


def test_round_trip_through_flags_and_manifest() -> None:
    params = BprParams(factors=16, learning_rate=0.1, weighting="tfidf", seed=3)
    args = _parser().parse_args(params_to_argv(params, "bpr"))
    assert params_from_args(FAMILIES, args) == ("bpr", params)
    assert params_from_dict(BprParams, params_to_dict(params)) == params


def test_help_shows_each_default_once_from_the_class(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "training iterations (default: als: 15, bpr: 100)" in out
    assert "BPR learning rate (default: 0.05; bpr only)" in out
    assert "--bm25-k1" not in out  # hidden


@pytest.mark.parametrize(
    ("values", "message"),
    [({"factors": 0}, "factors: expected a number >= 1, got 0"), ({"weighting": "x"}, "weighting: expected one of")],
)
def test_metadata_checks_name_the_field(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        params_from_dict(AlsParams, values)


def test_a_bad_flag_value_is_one_clear_line(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "recommend", "--data", "x.csv", "--name", "m", "--factors", "0"]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "factors: expected a number >= 1, got 0" in err
    assert "Traceback" not in err


@dataclass(frozen=True)
class P:
    mode: Literal["a", "b"] = param("a", "mode")
    bins: int | None = param(None, "bins")


def test_literal_and_optional_fields_become_typed_flags() -> None:
    parser = argparse.ArgumentParser()
    add_params_arguments(parser, {"p": P})
    assert params_from_args({"p": P}, parser.parse_args(["--mode", "b", "--bins", "3"]))[1] == P("b", 3)
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "c"])
