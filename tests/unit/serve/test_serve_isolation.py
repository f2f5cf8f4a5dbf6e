"""One client's bad request never fails its neighbours: decode-time bounds, and a batch that bisects on failure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.serve.loopback import Client, serve

from mlscale.apps import build_predictor
from mlscale.apps.threat import ThreatDetector
from mlscale.apps.threat import publish_model as publish_threat
from mlscale.apps.threat.synthetic import generate_flows
from mlscale.registry import open_store
from mlscale.serve import ServingApp, create_app
from mlscale.serve._batcher import Batcher
from mlscale.serve._http import Server

_POISON = 1 << 70  # breaks the whole call, as an id beyond int64 did (OverflowError)


class PoisonRun:
    """A predictor stand-in: x*10 for x >= 0; an error instance for x < 0 (fails alone); raises on poison."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, batch: Sequence[int]) -> list[Any]:
        self.calls += 1
        if any(x == _POISON for x in batch):
            raise OverflowError("Python int too large to convert to C long")
        return [x * 10 if x >= 0 else ValueError("negative") for x in batch]


def _one_batch(requests: list[int], run: PoisonRun, offload: bool) -> list[Any]:
    async def go() -> list[Any]:
        b = Batcher(run, max_batch=len(requests), offload_after=0.0 if offload else 10.0)
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in requests]
        for r, f in zip(requests, futs, strict=True):
            b.submit(r, 1, loop.time() + 30, f.set_result)
        out = await asyncio.gather(*futs)
        b.close()
        return out

    return asyncio.run(go())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(st.integers(0, 1000), st.integers(-5, -1), st.just(_POISON)), min_size=1, max_size=40),
    st.booleans(),
)
def test_any_mix_in_one_batch_gives_every_valid_request_its_answer(requests: list[int], offload: bool) -> None:
    run = PoisonRun()
    out = _one_batch(requests, run, offload)
    for req, result in zip(requests, out, strict=True):
        if req == _POISON:
            assert isinstance(result, OverflowError)
        elif req < 0:
            assert isinstance(result, ValueError)
        else:
            assert result == req * 10
    poison = requests.count(_POISON)
    # Bisection: a clean batch is one call; each culprit costs about two calls per halving.
    assert run.calls <= 1 + 2 * poison * max(1, len(requests).bit_length())


@pytest.fixture(scope="module")
def app(registry: Path) -> ServingApp:
    return create_app(registry, ["ml=recommend/toy@production"], predictor_factory=build_predictor)


def _post(path: str, body: Any) -> bytes:
    return Client.encode("POST", path, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"users": [1, _POISON]}, "users[1]"),
        ({"users": [1], "exclude": [_POISON]}, "exclude[0]"),
        ({"users": [1], "include": [-(1 << 64)]}, "include[0]"),
        ({"users": [1], "recent_items": [_POISON]}, "recent_items"),
    ],
)
def test_an_id_beyond_int64_is_422_and_its_pipelined_neighbours_are_answered(
    app: ServingApp, bad: dict[str, Any], field: str
) -> None:
    async def go(port: int, server: Server) -> list[tuple[int, dict[str, Any]]]:
        c = await Client.open(port)
        good = _post("/v1/models/ml/recommend", {"users": [1, 2], "k": 3})
        # One write: the three requests are parsed in one loop turn, so they share a micro-batch.
        await c.send(good + _post("/v1/models/ml/recommend", bad) + good)
        out = [await c.response() for _ in range(3)]
        c.close()
        return [(status, json.loads(body)) for status, _, body in out]

    (s1, b1), (s2, b2), (s3, b3) = serve(app, go)
    assert (s1, s3) == (200, 200)
    assert b1 == b3
    assert s2 == 422
    assert b2["error"]["field"].startswith(field)


def test_similar_and_get_path_ids_beyond_int64_are_422(app: ServingApp) -> None:
    async def go(port: int, server: Server) -> list[tuple[int, dict[str, Any]]]:
        c = await Client.open(port)
        await c.send(
            _post("/v1/models/ml/similar", {"items": [_POISON]})
            + Client.encode("GET", f"/v1/models/ml/recommend/{_POISON}")
            + Client.encode("GET", f"/v1/models/ml/similar/{_POISON}?k=2")
            + Client.encode("GET", "/v1/models/ml/recommend/1?k=2")
        )
        out = [await c.response() for _ in range(4)]
        c.close()
        return [(status, json.loads(body)) for status, _, body in out]

    (s1, b1), (s2, b2), (s3, b3), (s4, _) = serve(app, go)
    assert (s1, s2, s3, s4) == (422, 422, 422, 200)
    assert b1["error"]["field"] == "items[0]"
    assert b2["error"]["field"] == "user"
    assert b3["error"]["field"] == "item"


@pytest.fixture(scope="module")
def threat_app(tmp_path_factory: pytest.TempPathFactory) -> ServingApp:
    root = tmp_path_factory.mktemp("threat-registry")
    detector = ThreatDetector(topics=4, passes=2, seed=0).fit(generate_flows(2000, hosts=30, seed=0))
    publish_threat(open_store(root), "flows", detector, metrics={}, engine="local", data_fingerprint="f")
    return create_app(root, ["fl=threat/flows@1"], predictor_factory=build_predictor)


@pytest.mark.parametrize(
    ("flow", "field"),
    [
        ({"ts": 1e300}, "flows[0].ts"),
        ({"src_bytes": _POISON}, "flows[0].src_bytes"),
        ({"duration": -1.0}, "flows[0].duration"),
    ],
)
def test_a_threat_flow_out_of_range_is_422_and_fails_no_neighbour(
    threat_app: ServingApp, flow: dict[str, Any], field: str
) -> None:
    base = {"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 443, "src_port": 50000}

    async def go(port: int, server: Server) -> list[tuple[int, dict[str, Any]]]:
        c = await Client.open(port)
        good = _post("/v1/models/fl/score", {"flows": [base]})
        await c.send(good + _post("/v1/models/fl/score", {"flows": [{**base, **flow}]}) + good)
        out = [await c.response() for _ in range(3)]
        c.close()
        return [(status, json.loads(body)) for status, _, body in out]

    (s1, _), (s2, b2), (s3, _) = serve(threat_app, go)
    assert (s1, s2, s3) == (200, 422, 200)
    assert b2["error"]["field"] == field


def test_empty_flows_are_refused_as_the_schema_says(threat_app: ServingApp) -> None:
    async def go(port: int, server: Server) -> tuple[int, dict[str, Any]]:
        c = await Client.open(port)
        status, _, body = await c.request("POST", "/v1/models/fl/score", b'{"flows": []}')
        c.close()
        return status, json.loads(body)

    status, body = serve(threat_app, go)
    assert (status, body["error"]["field"]) == (422, "flows")
