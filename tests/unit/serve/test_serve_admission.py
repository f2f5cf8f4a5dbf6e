"""Admission by cost and refusals that cost nothing: on a real loopback server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.unit.serve.loopback import Client, serve

from mlscale.apps import build_predictor
from mlscale.serve import ServingApp, create_app
from mlscale.serve._http import Server


@pytest.fixture
def app(registry: Path) -> ServingApp:
    return create_app(registry, ["ml=recommend/toy@production"], predictor_factory=build_predictor)


def _slow(app: ServingApp, seconds: float) -> None:
    """Fault injection: every batch of ``recommend`` takes ``seconds`` (in the batch thread)."""
    batcher = app.slots["ml"].batchers["recommend"]
    run = batcher.run

    def slow(batch: Sequence[Any]) -> Sequence[Any]:
        time.sleep(seconds)
        return run(batch)

    batcher.run = slow
    batcher.offload_after = 0.0


def _post(body: Any, headers: dict[str, str] | None = None) -> bytes:
    return Client.encode("POST", "/v1/models/ml/recommend", json.dumps(body).encode(), headers)


def test_users_times_k_past_the_results_cap_is_422_up_front(app: ServingApp) -> None:
    async def go(port: int, server: Server) -> tuple[int, dict[str, Any], float]:
        c = await Client.open(port)
        t = time.monotonic()
        status, _, body = await c.request(
            "POST",
            "/v1/models/ml/recommend",
            json.dumps({"users": list(range(1, 10_001)), "k": 150}).encode(),
        )
        c.close()
        return status, json.loads(body), time.monotonic() - t

    status, body, took = serve(app, go)
    assert status == 422
    assert body["error"]["field"] == "users"
    assert "1,500,000 results" in body["error"]["message"]
    assert took < 1.0


def test_a_request_over_the_work_budget_is_413_whatever_its_timeout(app: ServingApp) -> None:
    batcher = app.slots["ml"].batchers["recommend"]
    batcher.per_row = 1e-3  # as if measured: a millisecond a user

    async def go(port: int, server: Server) -> list[tuple[int, dict[str, Any]]]:
        c = await Client.open(port)
        big = _post({"users": list(range(1, 5001)), "k": 5}, {"x-request-timeout-ms": "600000"})
        small = _post({"users": [1, 2], "k": 5})
        await c.send(big + small)
        out = [await c.response(timeout=2.0) for _ in range(2)]
        c.close()
        return [(s, json.loads(b)) for s, _, b in out]

    (s_big, b_big), (s_small, _) = serve(app, go)
    assert s_big == 413
    assert "split it" in b_big["error"]["message"]
    assert s_small == 200


def test_a_503_is_answered_at_once_while_a_batch_computes(app: ServingApp) -> None:
    _slow(app, 1.5)
    app.slots["ml"].batchers["recommend"].max_queue = 2

    async def go(port: int, server: Server) -> tuple[list[int], float, float]:
        clients = [await Client.open(port) for _ in range(4)]
        t0 = time.monotonic()
        for c in clients[:3]:  # one computes (1.5 s), two fill the queue
            await c.send(_post({"users": [1], "k": 3}, {"x-request-timeout-ms": "10000"}))
            await asyncio.sleep(0.05)
        t1 = time.monotonic()
        status, headers, _ = await clients[3].request("POST", "/v1/models/ml/recommend", b'{"users": [2]}')
        refused_in = time.monotonic() - t1
        # Refused before any work is spent on it: the body is not even decoded (it is not JSON).
        garbage, _, _ = await clients[3].request("POST", "/v1/models/ml/recommend", b"not json")
        assert garbage == 503
        first = [(await c.response(timeout=10))[0] for c in clients[:3]]
        for c in clients:
            c.close()
        assert headers["retry-after"]
        return [status, *first], refused_in, time.monotonic() - t0

    statuses, refused_in, total = serve(app, go)
    assert statuses == [503, 200, 200, 200]
    assert total > 1.4  # the batch did take its time...
    assert refused_in < 0.5  # ...and the refusal did not wait for it
