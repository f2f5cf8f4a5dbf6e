"""A graceful stop answers or refuses every request it received, within the grace period."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.unit.serve.loopback import Client, serve

from mlscale.apps import build_predictor
from mlscale.serve import create_app
from mlscale.serve._http import Server
from mlscale.serve._worker import drain


def test_drain_answers_every_request_in_the_grace_period(registry: Path) -> None:
    app = create_app(registry, ["ml=recommend/toy@production"], predictor_factory=build_predictor)
    batcher = app.slots["ml"].batchers["recommend"]
    run = batcher.run

    def slow(batch: Sequence[Any]) -> Sequence[Any]:  # fault injection: a batch outlives the grace period
        time.sleep(1.0)
        return run(batch)

    batcher.run = slow
    batcher.offload_after = 0.0
    body = json.dumps({"users": [1], "k": 3}).encode()

    async def go(port: int, server: Server) -> tuple[list[int], float, int, int]:
        clients = [await Client.open(port) for _ in range(6)]
        idle = await Client.open(port)
        assert (await idle.request("GET", "/healthz"))[0] == 200
        for c in clients:  # one batch computes, five wait in the queue
            await c.send(Client.encode("POST", "/v1/models/ml/recommend", body, {"x-request-timeout-ms": "30000"}))
            await asyncio.sleep(0.02)
        start = time.monotonic()
        refused = await drain(server, app, grace=0.4)
        took = time.monotonic() - start
        statuses = [(await c.response(timeout=2))[0] for c in clients]
        idle_eof = len(await asyncio.wait_for(idle.reader.read(), 2))
        for c in [*clients, idle]:
            c.close()
        return statuses, took, refused, idle_eof

    statuses, took, refused, idle_eof = serve(app, go)
    assert statuses == [503] * 6  # nobody left hanging or reset
    assert refused == 6
    assert took < 0.6  # within the grace period (plus the write)
    assert idle_eof == 0  # the idle keep-alive connection was closed, not left open
    # After the stop, the batcher refuses at once.
    assert batcher.closed
