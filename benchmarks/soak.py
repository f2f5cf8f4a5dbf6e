"""Soak and chaos: ``mlscale serve`` at half its capacity for minutes, while a worker is killed every
minute, the alias is promoted every two minutes and 1% of the requests are malformed.

Reports requests sent, failures by cause, the p99 latency per minute, and the RSS of every worker over
time (a plot). The goal: no valid request fails except those in flight on (or bound for a kept-alive
connection to) a worker at the moment it is killed, and flat memory.

Causes: ``killed_worker`` (a reset, close or timeout within 2 s of a kill, or a reset or close on a
kept-alive connection opened before a kill: it may lead to the dead worker; a live worker never resets
a connection mid-request), ``http_5xx`` (a server
error), ``http_503`` (refused at overload), ``timeout`` (no answer within the client timeout),
``unexpected_4xx`` (a valid request refused), ``malformed_accepted`` (a malformed one answered 2xx),
``connect`` (no connection).

The load client is open loop (each request due at a fixed time; latency counted from then), on one
process; capacity is measured first with a closed loop of 16 connections for 5 s. On a shared machine
the figures are noisy: read them as a check of behaviour under chaos, not as speed.

Run: ``python -m benchmarks soak [--minutes 10] [--workers 2] [--out DIR]``; ``--minutes 2`` is the
short mode (two kills, one promotion).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "main", "run"]

_BAD_BODIES = (
    b'{"users": [1], "k": 0}',
    b'{"users": [99999999999999999999999]}',
    b"{not json",
    b'{"users": "everyone"}',
)


def add_parser(sub: Any) -> None:
    """Add ``soak`` to ``python -m benchmarks``."""
    p = sub.add_parser("soak", help="mlscale serve under chaos at 50%% of capacity (kills, promotions, bad input)")
    _arguments(p)
    p.set_defaults(handler=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, default=10.0, help="soak duration (default 10; 2 = short mode)")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    p.add_argument("--kill-every", type=float, default=60.0, help="seconds between worker kills (default 60)")
    p.add_argument("--promote-every", type=float, default=120.0, help="seconds between promotions (default 120)")
    p.add_argument("--malformed", type=float, default=0.01, help="share of malformed requests (default 0.01)")
    p.add_argument("--load", type=float, default=0.5, help="share of the measured capacity to offer (default 0.5)")
    p.add_argument("--rate", type=float, default=0.0, help="offer this rate instead of measuring capacity")
    p.add_argument("--timeout", type=float, default=2.0, help="client timeout in seconds (default 2)")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("MLSCALE_DATA_DIR", "../shared/data")))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))


@dataclass
class _Tally:
    sent: int = 0
    ok: int = 0
    malformed_sent: int = 0
    malformed_refused: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    per_minute: dict[int, list[float]] = field(default_factory=dict)
    failed_per_minute: dict[int, int] = field(default_factory=dict)
    kills: list[float] = field(default_factory=list)
    promotions: list[tuple[float, int]] = field(default_factory=list)
    rss: list[tuple[float, int, int]] = field(default_factory=list)

    def fail(self, cause: str, minute: int) -> None:
        self.failed[cause] = self.failed.get(cause, 0) + 1
        self.failed_per_minute[minute] = self.failed_per_minute.get(minute, 0) + 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _train(registry: Path, data_dir: Path) -> list[int]:
    """Two versions of a MovieLens-100k recommender (promotions alternate between them); their user ids."""
    import numpy as np

    from mlscale.apps.recommend import ImplicitRecommender, publish_model
    from mlscale.apps.recommend.ingest import ingest_matrix
    from mlscale.data import InteractionReader
    from mlscale.registry import open_store

    matrix = ingest_matrix(InteractionReader(data_dir / "movielens-100k" / "u.data"))
    store = open_store(registry)
    for seed in (0, 1):
        model = ImplicitRecommender(factors=32, iterations=8, threads=1, seed=seed).fit(matrix)
        publish_model(store, "ml", model, metrics={}, engine="local", data_fingerprint="soak")
    store.promote("recommend/ml@1", "production")
    return [int(u) for u in np.asarray(matrix.user_ids)]


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.used = False
        self.opened = time.monotonic()


async def _exchange(conn: _Conn, raw: bytes, timeout: float) -> tuple[int, bytes]:
    conn.writer.write(raw)
    await conn.writer.drain()
    head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), timeout)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await asyncio.wait_for(conn.reader.readexactly(length), timeout)
    if b"connection: close" in head.lower():
        conn.writer.close()
        conn.used = False
        raise _ClosedAfterAnswerError(status, body)
    return status, body


class _ClosedAfterAnswerError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def _request(users: list[int], bad: bool, rng: random.Random) -> bytes:
    if bad:
        body = rng.choice(_BAD_BODIES)
    elif rng.random() < 0.5:
        return f"GET /v1/models/ml/recommend/{rng.choice(users)}?k=10 HTTP/1.1\r\nhost: s\r\n\r\n".encode()
    else:
        body = json.dumps({"users": [rng.choice(users)], "k": 10}).encode()
    head = f"POST /v1/models/ml/recommend HTTP/1.1\r\nhost: s\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _closed_loop_capacity(port: int, users: list[int], seconds: float = 5.0, conns: int = 16) -> float:
    rng = random.Random(1)
    done = 0
    stop = time.monotonic() + seconds

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = _Conn(reader, writer)
        while time.monotonic() < stop:
            status, _ = await _exchange(conn, _request(users, False, rng), 10)
            done += status == 200
        writer.close()

    await asyncio.gather(*(one() for _ in range(conns)))
    return done / seconds


async def _soak(port: int, users: list[int], rate: float, args: argparse.Namespace, tally: _Tally) -> None:
    rng = random.Random(0)
    idle: list[_Conn] = []
    start = time.monotonic()
    duration = args.minutes * 60
    tasks: set[asyncio.Task[None]] = set()

    def near_kill(at: float, conn: _Conn | None) -> bool:
        # In flight at a kill, or a kept-alive connection opened before one (it may be to the dead worker).
        stale = conn is not None and any(conn.opened < k for k in tally.kills)
        return stale or any(-0.5 <= at - k <= 2.0 for k in tally.kills)

    async def one(due: float) -> None:
        minute = int((due - start) // 60)
        bad = rng.random() < args.malformed
        raw = _request(users, bad, rng)
        tally.sent += 1
        tally.malformed_sent += bad
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), args.timeout)
                conn = _Conn(reader, writer)
            status, _ = await _exchange(conn, raw, args.timeout)
            idle.append(conn)
        except _ClosedAfterAnswerError as err:
            status = err.status
        except TimeoutError:
            # A timeout is a kill's only when it comes right after one (a live worker never goes silent).
            tally.fail("killed_worker" if near_kill(time.monotonic(), None) else "timeout", minute)
            if conn is not None:
                conn.writer.close()
            return
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            tally.fail("killed_worker" if near_kill(time.monotonic(), conn) else "connect", minute)
            if conn is not None:
                conn.writer.close()
            return
        took = time.monotonic() - due
        if bad:
            if 400 <= status < 500:
                tally.malformed_refused += 1
            elif status >= 500:
                tally.fail("http_5xx", minute)
            else:
                tally.fail("malformed_accepted", minute)
            return
        if status == 200:
            tally.ok += 1
            tally.per_minute.setdefault(minute, []).append(took)
        elif status == 503:
            tally.fail("http_503", minute)
        elif status >= 500:
            tally.fail("http_5xx", minute)
        else:
            tally.fail("unexpected_4xx", minute)

    i = 0
    while True:
        due = start + i / rate
        if due - start >= duration:
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.writer.close()


async def _chaos(supervisor: int, registry: Path, args: argparse.Namespace, tally: _Tally) -> None:
    import psutil

    from mlscale.registry import open_store

    store = open_store(registry)
    start = time.monotonic()
    next_kill, next_promote, version = args.kill_every, args.promote_every, 1
    root = psutil.Process(supervisor)
    while time.monotonic() - start < args.minutes * 60:
        now = time.monotonic() - start
        workers = [p for p in root.children(recursive=True) if "serve._worker" in " ".join(p.cmdline())]
        for p in workers:
            with contextlib.suppress(psutil.Error):
                tally.rss.append((round(now, 1), p.pid, p.memory_info().rss))
        if now >= next_kill and workers:
            tally.kills.append(time.monotonic())
            with contextlib.suppress(ProcessLookupError):
                os.kill(random.Random(int(now)).choice(workers).pid, signal.SIGKILL)
            next_kill += args.kill_every
        if now >= next_promote:
            version = 3 - version
            ref = f"recommend/ml@{version}"
            await asyncio.get_running_loop().run_in_executor(None, store.promote, ref, "production")
            tally.promotions.append((round(now, 1), version))
            next_promote += args.promote_every
        await asyncio.sleep(2.0)


def _p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2)


def _plot(tally: _Tally, minutes: dict[int, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 7))
    by_pid: dict[int, list[tuple[float, int]]] = {}
    for t, pid, rss in tally.rss:
        by_pid.setdefault(pid, []).append((t, rss))
    for pid, points in sorted(by_pid.items()):
        ax1.plot([t for t, _ in points], [r / 2**20 for _, r in points], label=f"worker {pid}")
    ax1.set_xlabel("seconds")
    ax1.set_ylabel("RSS (MiB)")
    ax1.set_title("RSS per worker (a killed worker's line ends; its replacement starts a new one)")
    ax1.legend(fontsize="small")
    xs = sorted(minutes)
    ax2.bar(xs, [minutes[m]["p99_ms"] or 0 for m in xs])
    ax2.set_xlabel("minute")
    ax2.set_ylabel("p99 latency (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """Train, serve, measure capacity, soak under chaos, report."""
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mlscale-soak-"))
    registry = work / "registry"
    users = _train(registry, args.data_dir)
    port = _free_port()
    log = work / "serve.log"
    cmd = [
        sys.executable,
        "-c",
        "import sys; from mlscale.cli import main; sys.exit(main())",
        "serve",
        "--registry",
        str(registry),
        "--model",
        "ml=recommend/ml@production",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--poll-interval",
        "1",
    ]
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
        capacity = asyncio.run(_closed_loop_capacity(port, users)) if not args.rate else 0.0
        rate = args.rate or max(1.0, args.load * capacity)
        print(f"capacity (closed loop, 16 connections): {capacity:,.0f}/s; offering {rate:,.0f}/s", flush=True)
        tally = _Tally()

        async def both() -> None:
            await asyncio.gather(_soak(port, users, rate, args, tally), _chaos(proc.pid, registry, args, tally))

        asyncio.run(both())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    minutes = {
        m: {"ok": len(v), "p99_ms": _p99(v), "failed": tally.failed_per_minute.get(m, 0)}
        for m, v in sorted(tally.per_minute.items())
    }
    rss_by_pid: dict[int, list[int]] = {}
    for _, pid, rss in tally.rss:
        rss_by_pid.setdefault(pid, []).append(rss)
    result = {
        "minutes": args.minutes,
        "workers": args.workers,
        "capacity_rps": round(capacity, 1),
        "offered_rps": round(rate, 1),
        "sent": tally.sent,
        "ok": tally.ok,
        "malformed_sent": tally.malformed_sent,
        "malformed_refused_4xx": tally.malformed_refused,
        "failed_by_cause": dict(sorted(tally.failed.items())),
        "failed_valid_not_explained_by_a_kill": sum(v for k, v in tally.failed.items() if k != "killed_worker"),
        "kills": len(tally.kills),
        "promotions": tally.promotions,
        "per_minute": minutes,
        "rss_mib_first_last_per_worker": {
            str(pid): [round(v[0] / 2**20, 1), round(v[-1] / 2**20, 1)] for pid, v in rss_by_pid.items()
        },
        "note": "one shared machine: figures are noisy; a check of behaviour under chaos, not of speed",
    }
    (args.out / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(tally, minutes, args.out / "soak.png")
    print(json.dumps(result, indent=2))
    print(f"wrote {args.out / 'soak.json'} and {args.out / 'soak.png'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.soak``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n")[0])
    _arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
