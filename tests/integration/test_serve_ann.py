"""``mlscale serve`` on loopback with a model that carries an approximate index (and one that does not)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.integration.test_serve import Server, _start, _stop

from mlscale.apps.recommend import from_artifact
from mlscale.cli import main
from mlscale.registry import open_store


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-ann-registry")
    base = ["data", "synth-model", "--items", "5k", "--users", "500", "--factors", "16", "--registry", str(root)]
    assert main([*base, "--name", "big", "--ann-kind", "ivf", "--quiet"]) == 0
    assert main([*base, "--name", "plain", "--ann-kind", "none", "--quiet"]) == 0
    return root


@pytest.fixture(scope="module")
def server(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = _start(
        tmp_path_factory.mktemp("serve-ann"),
        registry,
        "--model",
        "big=recommend/big",
        "--model",
        "plain=recommend/plain",
    )
    yield srv
    assert _stop(srv.proc) == 0, srv.log.read_text()[-3000:]


def test_served_answers_come_from_the_index(server: Server, registry: Path) -> None:
    model = from_artifact(open_store(registry).load("recommend/big"))
    assert model.ann_ is not None
    users = [int(u) for u in model.user_ids_[:20]]
    body = server.json("/v1/models/big/recommend", {"users": users, "k": 10, "exclude": [1, 2, 3]})
    expected = model.recommend(users, k=10, exclude=[1, 2, 3])
    for got, items in zip(body["results"], expected.items.tolist(), strict=True):
        assert got["items"] == items
        assert not set(got["items"]) & {1, 2, 3}
    one = server.json(f"/v1/models/big/recommend/{users[0]}?k=5")
    assert one["results"][0]["items"] == model.recommend(users[:1], k=5).items[0].tolist()
    cold = server.json("/v1/models/big/recommend", {"recent_items": [4, 5, 6], "k": 5})
    assert cold["results"][0]["strategy"] == "fold-in"
    similar = server.json("/v1/models/big/similar", {"items": [7], "k": 4})
    assert len(similar["results"][0]["items"]) == 4


def test_a_model_without_an_index_is_still_served(server: Server, registry: Path) -> None:
    model = from_artifact(open_store(registry).load("recommend/plain"))
    assert model.ann_ is None
    body = server.json("/v1/models/plain/recommend", {"users": [1, 2], "k": 3})
    assert [r["items"] for r in body["results"]] == np.asarray(model.recommend([1, 2], k=3).items).tolist()
