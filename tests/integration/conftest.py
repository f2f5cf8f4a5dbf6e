"""Fixtures: tiny HTTP servers with known behaviour, in their own process, for testing the load tester."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

_SERVER = r"""
import asyncio, sys, time
port, delay, stall_every, stall_for = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
start = time.monotonic()
delays = []

async def pause():
    if stall_every > 0:
        phase = (time.monotonic() - start) % stall_every
        if phase > stall_every - stall_for:  # inside a stall: wait for it to end
            await asyncio.sleep(stall_every - phase)
    if delay:
        await asyncio.sleep(delay)

async def handle(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            while (h := await reader.readline()) not in (b"\r\n", b""):
                pass
            if line.startswith(b"GET /stats"):
                # the server's own view of its delay (median, us): the test compares the tool with it
                done = sorted(delays) or [0]
                body = str(done[len(done) // 2]).encode()
                delays.clear()
            else:
                arrived = time.perf_counter()
                await pause()
                delays.append(int((time.perf_counter() - arrived) * 1e6))
                body = b"ok"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s"
                         % (len(body), body))
    except ConnectionError:
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def known_server(delay: float = 0.0, stall_every: float = 0.0, stall_for: float = 0.0) -> Iterator[str]:
    """Serve 200 "ok" after ``delay`` s; freeze for ``stall_for`` s every ``stall_every`` s. Yields the URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port), str(delay), str(stall_every), str(stall_for)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        while proc.stdout.readline().strip() != "ready":
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("test server did not start")
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def fake_server() -> Callable[..., AbstractContextManager[str]]:
    """``with server(delay=..., stall_every=..., stall_for=...) as url:`` (see :func:`known_server`)."""
    return known_server


@pytest.fixture
def unused_port() -> int:
    return free_port()


def server_median_delay_ms(url: str) -> float:
    """The median delay the known server itself measured since the last call."""
    import urllib.request

    with urllib.request.urlopen(url.rstrip("/") + "/stats", timeout=5) as resp:
        return int(resp.read()) / 1000.0


@pytest.fixture
def server_delay() -> Callable[[str], float]:
    """``server_delay(url)``: the known server's own median delay (ms) since the last call."""
    return server_median_delay_ms


@pytest.fixture(scope="module")
def unused_port_factory() -> Callable[[], int]:
    """A function returning a free loopback port (for module-scoped servers)."""
    return free_port
