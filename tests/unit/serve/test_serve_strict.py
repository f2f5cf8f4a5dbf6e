"""Smaller holes: echoed values clipped, the bearer scheme case-insensitive, include errors named right,
and an OpenAPI document as strict as the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.unit.serve.loopback import Client, serve

from mlscale.apps import build_predictor
from mlscale.serve import ServingApp, create_app
from mlscale.serve._http import Limits, Server


@pytest.fixture(scope="module")
def app(registry: Path) -> ServingApp:
    return create_app(registry, ["ml=recommend/toy@production"], predictor_factory=build_predictor, token="s3cret")


def _ask(app: ServingApp, *requests: bytes, limits: Limits | None = None) -> list[tuple[int, dict[str, Any]]]:
    async def go(port: int, server: Server) -> list[tuple[int, dict[str, Any]]]:
        c = await Client.open(port)
        out = []
        for raw in requests:
            await c.send(raw)
            status, _, body = await c.response()
            out.append((status, json.loads(body)))
        c.close()
        return out

    return serve(app, go, limits)


_AUTH = {"authorization": "Bearer s3cret"}


@pytest.mark.parametrize("header", ["bearer s3cret", "BEARER s3cret", "Bearer  s3cret", "Bearer s3cret "])
def test_the_bearer_scheme_is_case_insensitive(app: ServingApp, header: str) -> None:
    [(status, _)] = _ask(app, Client.encode("GET", "/v1/models", headers={"authorization": header}))
    assert status == 200


@pytest.mark.parametrize("header", ["Bearer S3CRET", "Basic s3cret", "s3cret", "Bearer"])
def test_a_wrong_token_or_scheme_is_still_401(app: ServingApp, header: str) -> None:
    [(status, _)] = _ask(app, Client.encode("GET", "/v1/models", headers={"authorization": header}))
    assert status == 401


def test_an_error_never_echoes_a_megabyte(app: ServingApp) -> None:
    huge = "x" * 900_000
    body = json.dumps({"users": [1], "include": [huge]}).encode()
    raw = Client.encode("POST", "/v1/models/ml/recommend", body, _AUTH)
    [(status, err)] = _ask(app, raw, limits=Limits(max_body=2 << 20))
    assert status in (200, 422)
    assert len(json.dumps(err)) < 5000
    key = "x" * 8000
    [(status, err)] = _ask(app, Client.encode("GET", f"/v1/models/ml/recommend/{key}", headers=_AUTH))
    assert status == 422
    assert len(err["error"]["message"]) < 1200


def test_an_empty_include_is_blamed_on_include_not_k(app: ServingApp) -> None:
    body = json.dumps({"users": [1], "k": 5, "include": []}).encode()
    [(status, err)] = _ask(app, Client.encode("POST", "/v1/models/ml/recommend", body, _AUTH))
    assert status == 422
    assert err["error"]["field"] == "include"
    # An include shorter than k is no error: the answer has the items there are.
    include = [int(i) for i in app.slots["ml"].live.predictor.model.item_ids_[:3]]  # type: ignore[attr-defined]
    body = json.dumps({"users": [1], "k": 5, "include": include, "exclude_seen": False}).encode()
    [(status, out)] = _ask(app, Client.encode("POST", "/v1/models/ml/recommend", body, _AUTH))
    assert status == 200
    assert sorted(out["results"][0]["items"]) == sorted(include)


def test_the_openapi_document_is_as_strict_as_the_server(app: ServingApp) -> None:
    [(status, doc)] = _ask(app, Client.encode("GET", "/openapi.json", headers=_AUTH))
    assert status == 200
    get = doc["paths"]["/v1/models/{name}/recommend/{user}"]["parameters"]
    k = next(p for p in get if p["name"] == "k")["schema"]
    assert k["type"] == "integer"
    assert k["minimum"] == 1
    schemas = doc["components"]["schemas"]
    users = schemas["RecommendRequest"]["properties"]["users"]
    assert users["minItems"] == 1
    ids = users["items"]["anyOf"]
    assert {"type": "integer", "minimum": -(1 << 63), "maximum": (1 << 63) - 1} in ids
    # The server refuses what the document says is invalid.
    body = json.dumps({"users": []}).encode()
    [(status, err)] = _ask(app, Client.encode("POST", "/v1/models/ml/recommend", body, _AUTH))
    assert (status, err["error"]["field"]) == (422, "users")
