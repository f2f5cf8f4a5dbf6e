"""Slow clients (slowloris): deadlines for the whole head and body that no trickle of bytes pushes back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from tests.unit.serve.loopback import Client, serve

from mlscale.apps import build_predictor
from mlscale.serve import ServingApp, create_app
from mlscale.serve._http import Limits, Server

# Small limits so the test takes seconds; the defaults are 10 s for the head, 60 s and 4 KiB/s for the body.
_LIMITS = Limits(head_timeout=1.5, body_timeout=4.0, min_body_rate=200.0, body_grace=1.0, max_connections=120)


@pytest.fixture(scope="module")
def app(registry: Path) -> ServingApp:
    return create_app(registry, ["ml=recommend/toy@production"], predictor_factory=build_predictor)


async def _trickle(port: int, chunks: list[bytes], every: float, until: float) -> tuple[int | None, float]:
    """Send ``chunks`` one by one every ``every`` seconds; the status the server answered, and when."""
    c = await Client.open(port)
    start = time.monotonic()
    try:
        for chunk in chunks:
            await c.send(chunk)
            try:
                status, _, _ = await c.response(timeout=every)
                return status, time.monotonic() - start
            except (TimeoutError, asyncio.IncompleteReadError):
                pass
            if time.monotonic() - start > until:
                return None, time.monotonic() - start
        return None, time.monotonic() - start
    except (ConnectionError, asyncio.IncompleteReadError):
        return 0, time.monotonic() - start
    finally:
        c.close()


def test_trickled_heads_are_cut_off_and_the_server_stays_open(app: ServingApp) -> None:
    head = [b"GET /healthz HTTP/1.1\r\n"] + [b"x-pad-%d: 1\r\n" % i for i in range(40)]

    async def go(port: int, server: Server) -> tuple[list[tuple[int | None, float]], int]:
        trickles = [asyncio.create_task(_trickle(port, head, 0.3, until=8.0)) for _ in range(100)]
        await asyncio.sleep(0.5)
        out = await asyncio.gather(*trickles)
        c = await Client.open(port)
        status, _, _ = await c.request("GET", "/healthz")
        c.close()
        return out, status

    out, status = serve(app, go, _LIMITS)
    assert [s for s, _ in out] == [408] * 100
    assert max(t for _, t in out) < 4.0  # head deadline 1.5 s, checked once a second
    assert status == 200


def test_a_trickled_body_is_cut_off(app: ServingApp) -> None:
    head = b"POST /v1/models/ml/recommend HTTP/1.1\r\nhost: t\r\ncontent-length: 5000\r\n\r\n"

    async def go(port: int, server: Server) -> list[tuple[int | None, float]]:
        tasks = [asyncio.create_task(_trickle(port, [head] + [b" "] * 60, 0.2, until=10.0)) for _ in range(50)]
        return await asyncio.gather(*tasks)

    out = serve(app, go, _LIMITS)
    assert [s for s, _ in out] == [408] * 50
    assert max(t for _, t in out) < 4.0  # under 200 B/s after a 1 s grace


def test_a_connection_that_sends_nothing_is_closed_after_the_head_deadline(app: ServingApp) -> None:
    async def go(port: int, server: Server) -> float:
        c = await Client.open(port)
        start = time.monotonic()
        data = await asyncio.wait_for(c.reader.read(), 5)
        assert data == b""
        c.close()
        return time.monotonic() - start

    assert serve(app, go, _LIMITS) < 3.5


def test_slow_but_steady_clients_are_served(app: ServingApp) -> None:
    body = b'{"users": [1, 2], "k": 3}'
    head = b"POST /v1/models/ml/recommend HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % len(body)

    async def go(port: int, server: Server) -> tuple[int | None, float]:
        return await _trickle(port, [head[:20], head[20:], body[:10], body[10:]], 0.3, until=5.0)

    status, _ = serve(app, go, _LIMITS)
    assert status == 200
