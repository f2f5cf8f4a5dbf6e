"""Overload: how fast ``mlscale serve`` says 503 when offered three times its capacity.

One worker; capacity measured first (closed loop, 16 connections, 5 s); then an open loop at
``--factor`` x capacity for ``--duration`` s over up to 512 connections, each request with a
deadline of ``--deadline-ms`` (``X-Request-Timeout-Ms``: with the default 1 s deadline, 512 requests
in flight queue within it and nothing is refused). For every answer the
*service time* (from the request's actual send to its answer, so the client's own queueing is not
counted) is recorded by status: the point is that a 503 costs the server nearly nothing (it is
decided before the request is decoded) and comes back at once, not after the batch ahead of it.

Run: ``python -m benchmarks overload [--factor 3] [--duration 20]``. Figures from a shared machine
are noisy; the ratio of the 503 and 200 service times in one run is the figure to read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.soak import _closed_loop_capacity, _Conn, _exchange, _free_port, _request, _train

__all__ = ["add_parser", "main", "run"]


def add_parser(sub: Any) -> None:
    """Add ``overload`` to ``python -m benchmarks``."""
    p = sub.add_parser("overload", help="service time of 503s at 3x capacity (mlscale serve, one worker)")
    _arguments(p)
    p.set_defaults(handler=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--factor", type=float, default=3.0, help="offered load as a multiple of capacity (default 3)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of overload (default 20)")
    p.add_argument("--deadline-ms", type=int, default=100, help="each request's X-Request-Timeout-Ms (default 100)")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("MLSCALE_DATA_DIR", "../shared/data")))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))


async def _overload(
    port: int, users: list[int], rate: float, duration: float, deadline_ms: int
) -> dict[int, list[float]]:
    header = b"host: s\r\nx-request-timeout-ms: %d\r\n" % deadline_ms
    rng = random.Random(0)
    idle: list[_Conn] = []
    opened = 0
    by_status: dict[int, list[float]] = {}
    start = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()

    async def one() -> None:
        nonlocal opened
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                if opened >= 512:
                    by_status.setdefault(-1, []).append(0.0)  # no connection free: the client's limit
                    return
                opened += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                conn = _Conn(reader, writer)
            sent = time.monotonic()
            raw = _request(users, False, rng).replace(b"host: s\r\n", header, 1)
            status, _ = await _exchange(conn, raw, 5.0)
            by_status.setdefault(status, []).append(time.monotonic() - sent)
            idle.append(conn)
        except Exception:
            by_status.setdefault(0, []).append(0.0)
            opened -= 1

    i = 0
    while (due := start + i / rate) - start < duration:
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.writer.close()
    return by_status


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 3)


def run(args: argparse.Namespace) -> int:
    """Train, serve with one worker, measure capacity, overload, report service times by status."""
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mlscale-overload-"))
    users = _train(work / "registry", args.data_dir)
    port = _free_port()
    log = work / "serve.log"
    cmd = [sys.executable, "-c", "import sys; from mlscale.cli import main; sys.exit(main())", "serve"]
    cmd += ["--registry", str(work / "registry"), "--model", "ml=recommend/ml@production", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the server did not start; log:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        capacity = asyncio.run(_closed_loop_capacity(port, users))
        rate = args.factor * capacity
        by_status = asyncio.run(_overload(port, users, rate, args.duration, args.deadline_ms))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    service = {
        str(status): {"count": len(v), "p50_ms": _pct(v, 50), "p99_ms": _pct(v, 99)}
        for status, v in sorted(by_status.items())
        if status > 0
    }
    result = {
        "capacity_rps": round(capacity, 1),
        "offered_rps": round(rate, 1),
        "deadline_ms": args.deadline_ms,
        "service_by_status": service,
        "client_errors": len(by_status.get(0, [])),
        "client_out_of_connections": len(by_status.get(-1, [])),
        "note": "one shared machine: noisy; read the 503/200 ratio of one run",
    }
    (args.out / "overload.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.overload``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overload", description=__doc__.split("\n")[0])
    _arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
