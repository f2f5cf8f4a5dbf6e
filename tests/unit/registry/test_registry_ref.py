"""ModelRef parsing, round trips and name validation."""

from __future__ import annotations

import pytest

from mlscale.errors import RegistryError
from mlscale.registry import ModelRef


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("recommend/ml100k", ModelRef("recommend", "ml100k", "latest")),
        ("recommend/ml100k@production", ModelRef("recommend", "ml100k", "production")),
        ("recommend/ml100k@3", ModelRef("recommend", "ml100k", "3")),
        ("a-b/c_d.e@staging-2", ModelRef("a-b", "c_d.e", "staging-2")),
    ],
)
def test_parse(text: str, expected: ModelRef) -> None:
    ref = ModelRef.parse(text)
    assert ref == expected
    assert str(ref) == text
    assert ModelRef.parse(str(ref)) == ref


def test_properties() -> None:
    assert ModelRef.parse("a/b@3").version == 3
    assert ModelRef.parse("a/b@prod").version is None
    assert ModelRef.parse("a/b").is_latest
    assert ModelRef.parse("a/b@latest").is_latest
    assert str(ModelRef.parse("a/b@latest")) == "a/b"
    assert ModelRef.parse("a/b@3").model == "a/b"
    assert ModelRef.parse("a/b").with_selector(7) == ModelRef("a", "b", "7")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "expected 'app/name'"),
        ("ml100k", "expected 'app/name'"),
        ("a/b/c", "expected 'app/name'"),
        ("a/b@", "expected 'app/name'"),
        ("../x", "invalid app name '..'"),
        ("/abs", "invalid app name ''"),
        ("a/..", "invalid model name '..'"),
        ("A/b", "no upper case"),
        ("a/b@0", "versions are whole numbers from 1"),
        ("a/b@03", "without leading zeros"),
        ("a/b@../c", "invalid alias"),
        ("a/b@Prod", "invalid alias 'Prod'"),
        ("a /b", "invalid app name"),
    ],
)
def test_parse_refuses(text: str, match: str) -> None:
    with pytest.raises(RegistryError, match=match):
        ModelRef.parse(text)


def test_constructor_validates_too() -> None:
    with pytest.raises(RegistryError, match="invalid model name"):
        ModelRef("app", "a/b")
    with pytest.raises(RegistryError, match="invalid selector"):
        ModelRef("app", "b", 3)  # type: ignore[arg-type]
