"""Manifest JSON round trip and validation of malformed manifests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlscale.errors import ArtifactError
from mlscale.registry import Manifest, ModelRef

_GOOD: dict[str, Any] = {
    "format": 1,
    "app": "recommend",
    "name": "ml100k",
    "version": 2,
    "params": {"factors": 64},
    "metrics": {"ndcg@10": 0.31, "count": 3},
    "engine": "local",
    "data_fingerprint": "sha256:ab",
    "created": "2024-05-01T12:00:00.000Z",
    "mlscale_version": "0.1.0",
    "files": {"item_factors.npy": "a" * 64},
    "extra": {},
}


def test_round_trip_and_ref() -> None:
    manifest = Manifest.from_json(json.dumps(_GOOD))
    assert manifest.ref == ModelRef("recommend", "ml100k", "2")
    assert manifest.metrics == {"ndcg@10": 0.31, "count": 3.0}
    assert isinstance(manifest.metrics["count"], float)
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert json.loads(manifest.to_json()) == {**_GOOD, "metrics": {"ndcg@10": 0.31, "count": 3.0}}
    assert Manifest.from_json(manifest.to_json().encode()) == manifest


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"version": 0}, "'version' must be a whole number >= 1"),
        ({"version": "2"}, "'version' must be a whole number >= 1"),
        ({"version": True}, "'version' must be a whole number >= 1"),
        ({"app": "../etc"}, "field 'app' is not a valid name"),
        ({"params": []}, "field 'params' must be a JSON object"),
        ({"metrics": {"x": "high"}}, "metric 'x' must be a finite number"),
        ({"engine": ""}, "'engine' must be a non-empty string"),
        ({"data_fingerprint": 5}, "'data_fingerprint' must be a string"),
        ({"created": "yesterday"}, "'created' must be a UTC ISO-8601 time"),
        ({"created": "2024-05-01T12:00:00+02:00"}, "'created' must be a UTC ISO-8601 time"),
        ({"files": {"../x.npy": "a" * 64}}, "not a plain file name"),
        ({"files": {"manifest.json": "a" * 64}}, "not a plain file name"),
        ({"files": {"x.npy": "ABC"}}, "64 lower-case hex digits"),
        ({"surprise": 1}, "unknown field"),
        ({"format": 2}, "written by a newer mlscale"),
        ({"format": "1"}, "'format' must be a whole number"),
    ],
)
def test_malformed_manifests_are_refused(change: dict[str, Any], match: str) -> None:
    data = {**_GOOD, **change}
    with pytest.raises(ArtifactError, match=match) as info:
        Manifest.from_json(json.dumps(data), source="/reg/a/b/2/manifest.json")
    assert str(info.value).startswith("/reg/a/b/2/manifest.json: ")


@pytest.mark.parametrize(
    "text", ["", "{", "[]", '"x"', b"\xff\xfe", json.dumps({k: v for k, v in _GOOD.items() if k != "files"})]
)
def test_unparseable_or_incomplete_manifests_are_refused(text: str | bytes) -> None:
    with pytest.raises(ArtifactError, match="malformed manifest"):
        Manifest.from_json(text)


def test_nan_is_not_json() -> None:
    text = json.dumps(_GOOD).replace("0.31", "NaN")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        Manifest.from_json(text)
