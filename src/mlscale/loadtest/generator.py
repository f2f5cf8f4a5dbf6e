"""The open-loop load generator: requests leave on schedule, whatever the server does.

A closed-loop tool (one request per connection at a time, the next one sent
when the last one returns) slows down when the server does, so a stall delays
only the few requests caught in it and the percentiles hide it: *coordinated
omission*. Here every request has an **intended** send time drawn from the
arrival process (constant rate or Poisson) and its latency is measured from
that time, so time a request spends waiting for a free connection or behind
a stalled server is counted.

Several generator processes (each with its own event loop and connection
pool) share the rate; their HDR histograms are merged. Each step also reports
how late the generator itself sent (send lag) and how busy its processes were,
so a saturated generator is reported as such instead of being blamed on the
server. A closed-loop mode exists for comparison.

>>> spec = StepSpec(rate=100, duration=1)
>>> spec.arrival, spec.timeout
('poisson', 5.0)
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import multiprocessing as mp
import os
import ssl
import time
from array import array
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from hdrh.histogram import HdrHistogram

from mlscale.errors import UnreachableError, ValidationError
from mlscale.loadtest._client import Connection, build_request
from mlscale.loadtest.scenario import Request

__all__ = ["LoadGenerator", "StepResult", "StepSpec", "Target", "new_histogram"]

Arrival = Literal["constant", "poisson"]
_HIST_MAX_US = 3_600_000_000  # one hour, in microseconds


#: Send lag (p99, ms) past which a step is reported saturated: the offered load was not applied.
_SATURATED_LAG_MS = 50.0


def new_histogram() -> HdrHistogram:
    """An HDR histogram of microseconds, 1 us .. 1 h at 3 significant digits."""
    return HdrHistogram(1, _HIST_MAX_US, 3)


@dataclass(frozen=True, slots=True)
class Target:
    """Where the load goes: ``http://host:port`` (or https) and the request host header."""

    scheme: str
    host: str
    port: int
    base_path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(f"expected an http:// or https:// URL, got {url!r}", field="URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def check(self, path: str = "", timeout: float = 5.0) -> int:
        """One request before the run, so an unreachable URL fails fast and clearly."""
        cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", self.base_path + path or "/")
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise UnreachableError(
                f"cannot reach {self.scheme}://{self.netloc}{self.base_path}: {reason}",
                hint="is the server running, and is the URL right?",
            ) from None
        finally:
            conn.close()
        return status


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One measurement: ``rate`` requests/s for ``duration`` s after ``warmup`` s not recorded.

    ``closed_loop`` > 0 switches to a closed loop over that many connections
    (for comparison only: it hides queueing delay).
    """

    rate: float
    duration: float
    warmup: float = 0.0
    arrival: Arrival = "poisson"
    timeout: float = 5.0
    max_connections: int = 512
    seed: int = 0
    closed_loop: int = 0

    def __post_init__(self) -> None:
        if not (self.rate > 0 or self.closed_loop > 0):
            raise ValidationError(f"expected a rate > 0, got {self.rate}", field="rate")
        if not self.duration > 0:
            raise ValidationError(f"expected a duration > 0, got {self.duration}", field="duration")
        if not self.timeout > 0:
            raise ValidationError(f"expected a timeout > 0, got {self.timeout}", field="timeout")
        if self.arrival not in ("constant", "poisson"):
            raise ValidationError(f"expected 'constant' or 'poisson', got {self.arrival!r}", field="arrival")
        if self.max_connections < 1:
            raise ValidationError("expected at least 1", field="max_connections")


@dataclass
class StepResult:
    """What one step measured (merged over generator processes)."""

    spec: StepSpec
    sent: int = 0
    completed: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency: HdrHistogram = field(default_factory=new_histogram)
    service: HdrHistogram = field(default_factory=new_histogram)
    send_lag: HdrHistogram = field(default_factory=new_histogram)
    cpu: list[float] = field(default_factory=list)
    max_in_flight: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def offered_rate(self) -> float:
        return self.spec.rate

    @property
    def achieved_rate(self) -> float:
        """Answers per second (any status) over the measured window."""
        return self.completed / self.spec.duration

    @property
    def sent_rate(self) -> float:
        return self.sent / self.spec.duration

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float:
        return self.error_count / max(self.sent, 1)

    def percentile_ms(self, p: float, which: str = "latency") -> float:
        hist: HdrHistogram = getattr(self, which)
        return float(hist.get_value_at_percentile(p)) / 1000.0 if hist.get_total_count() else float("nan")

    @property
    def late(self) -> bool:
        """The requests were not sent on schedule (send lag p99 over 5 ms, or under 97% of the rate sent)."""
        if self.spec.closed_loop:
            return False
        return self.percentile_ms(99, "send_lag") > 5.0 or self.sent_rate < 0.97 * self.spec.rate

    @property
    def generator_saturated(self) -> bool:
        """The generator's own CPU, not the server, could not keep the schedule (late and over 90% busy)."""
        return self.late and bool(self.cpu) and max(self.cpu) > 0.9

    @property
    def saturation(self) -> tuple[str, ...]:
        """Why the load was not applied as offered, one reason each; empty when it was.

        Late sends and client-side timeouts both mean the latency figures miss part of the story:
        the requests that waited to be sent, or that never got an answer in time.
        """
        reasons: list[str] = []
        lag = self.percentile_ms(99, "send_lag")
        # Looser than `late`: a few ms of lag is the machine (a busy shared host), not lost load.
        if not self.spec.closed_loop and (lag > _SATURATED_LAG_MS or self.sent_rate < 0.9 * self.spec.rate):
            where = f"send lag p99 {lag:,.1f} ms, sent {self.sent_rate:,.0f}/s of {self.spec.rate:,.0f}/s offered"
            if self.generator_saturated:
                reasons.append(f"the generator's CPU was saturated ({where}): add --processes or another machine")
            else:
                reasons.append(
                    f"requests waited to be sent ({where}): every connection was busy (raise --max-connections, "
                    "now {:,}) or the server is past its capacity".format(self.spec.max_connections)
                )
        timeouts = self.errors.get("timeout", 0)
        if timeouts:
            reasons.append(
                f"{timeouts:,} requests ({timeouts / max(self.sent, 1):.1%}) timed out client-side after "
                f"{self.spec.timeout:g} s: their latency is not in the histograms"
            )
        return tuple(reasons)

    @property
    def saturated(self) -> bool:
        """The load test did not apply the offered load as specified (see :attr:`saturation`)."""
        return bool(self.saturation)


# -- one generator process ---------------------------------------------------------------------


def _quantized_record(hist: HdrHistogram, values: array[int]) -> None:
    """Record many microsecond values at once (3 significant digits, as the histogram keeps)."""
    if not values:
        return
    arr = np.frombuffer(values, dtype=np.int64).clip(1, _HIST_MAX_US)
    mag = np.power(10, np.maximum(np.floor(np.log10(arr)).astype(np.int64) - 2, 0))
    uniq, counts = np.unique(arr // mag * mag, return_counts=True)
    for v, c in zip(uniq.tolist(), counts.tolist(), strict=True):
        hist.record_value(v, c)


class _Run:
    """The state of one step inside one generator process."""

    def __init__(self, loop: asyncio.AbstractEventLoop, target: Target, spec: StepSpec, record_from: float) -> None:
        self.loop = loop
        self.target = target
        self.spec = spec
        self.record_from = record_from
        self.idle: list[Connection] = []
        self.conns: set[Connection] = set()
        self.opening = 0
        self.pending: deque[tuple[float, bytes, str]] = deque()
        self.lat: array[int] = array("q")
        self.svc: array[int] = array("q")
        self.lag: array[int] = array("q")
        self.sent = 0
        self.completed = 0
        self.ok = 0
        self.errors: dict[str, int] = {}
        self.kinds: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed_next: tuple[bytes, str] | None = None
        self.ssl = ssl.create_default_context() if target.scheme == "https" else None

    def sink(self, conn: Connection, status: int, _size: int, error: str | None, done: float) -> None:
        self.in_flight -= 1
        if conn.intended >= self.record_from:
            self.completed += 1 if error is None else 0
            if error is None and 200 <= status < 400:
                self.ok += 1
            kind = error or (None if 200 <= status < 400 else f"http_{status}")
            if kind is not None:
                self.errors[kind] = self.errors.get(kind, 0) + 1
            if error is None:
                self.lat.append(int((done - conn.intended) * 1e6))
                self.svc.append(int((done - conn.sent_at) * 1e6))
        if conn.closed:
            self.conns.discard(conn)
            if self.pending:
                self._open()
            return
        if self.spec.closed_loop and self.closed_next is not None:
            raw, kind = self.closed_next
            self._send(conn, done, raw, kind)
            return
        if self.pending:
            intended, raw, kind = self.pending.popleft()
            self._send(conn, intended, raw, kind)
        else:
            self.idle.append(conn)

    def _send(self, conn: Connection, intended: float, raw: bytes, kind: str) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        conn.send(raw, intended, kind)
        if intended >= self.record_from:
            self.sent += 1
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            self.lag.append(int((conn.sent_at - intended) * 1e6))

    def dispatch(self, intended: float, raw: bytes, kind: str) -> None:
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                self._send(conn, intended, raw, kind)
                return
            self.conns.discard(conn)
        self.pending.append((intended, raw, kind))
        if len(self.conns) + self.opening < self.spec.max_connections:
            self._open()

    def _open(self) -> None:
        self.opening += 1
        self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            _, conn = await self.loop.create_connection(
                lambda: Connection(self.loop, self.sink), self.target.host, self.target.port, ssl=self.ssl
            )
        except OSError:
            self.opening -= 1
            if self.pending:
                intended, _, _ = self.pending.popleft()
                if intended >= self.record_from:
                    self.sent += 1
                    self.errors["connect"] = self.errors.get("connect", 0) + 1
            await asyncio.sleep(0.01)
            if self.pending and not self.conns and not self.opening:
                self._open()
            return
        self.opening -= 1
        self.conns.add(conn)
        if self.pending:
            intended, raw, kind = self.pending.popleft()
            self._send(conn, intended, raw, kind)
        else:
            self.idle.append(conn)

    async def sweep(self) -> None:
        """Expire answers and queued requests older than the timeout."""
        while True:
            await asyncio.sleep(0.05)
            now = self.loop.time()
            for conn in list(self.conns):
                if conn.busy and now - conn.sent_at > self.spec.timeout:
                    conn.expire()
            while self.pending and now - self.pending[0][0] > self.spec.timeout:
                intended, _, _ = self.pending.popleft()
                if intended >= self.record_from:
                    self.sent += 1
                    self.errors["timeout"] = self.errors.get("timeout", 0) + 1

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


async def _open_loop(
    target: Target,
    requests: Sequence[tuple[bytes, str]],
    spec: StepSpec,
    start_at: float,
    index: int,
    processes: int,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    rng = np.random.default_rng(spec.seed * 1000 + index)
    rate = spec.rate / processes
    total = spec.warmup + spec.duration
    offsets: npt.NDArray[np.float64]
    if spec.arrival == "poisson":
        gaps = rng.exponential(1.0 / rate, size=int(rate * total * 1.3) + 20)
        offsets = np.cumsum(gaps)
        offsets = offsets[offsets < total]
    else:
        offsets = ((np.arange(int(rate * total)) + index / processes) / rate).astype(np.float64)
    picks = rng.integers(0, len(requests), size=offsets.size)
    t0 = loop.time() + (start_at - time.time())
    run = _Run(loop, target, spec, record_from=t0 + spec.warmup)
    for _ in range(min(spec.max_connections, max(4, int(rate * 0.01)))):
        run._open()
    sweeper = loop.create_task(run.sweep())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    i, n = 0, offsets.size
    due = t0 + offsets
    while i < n:
        now = loop.time()
        while i < n and due[i] <= now:
            raw, kind = requests[picks[i]]
            run.dispatch(float(due[i]), raw, kind)
            i += 1
        if i < n:
            wait = float(due[i]) - loop.time()
            # Sleep coarsely when far from the next send; yield to I/O only when close,
            # so the send lag stays well under a millisecond.
            await asyncio.sleep(wait - 0.002 if wait > 0.003 else 0)
    deadline = loop.time() + spec.timeout + 0.2
    while (run.in_flight or run.pending) and loop.time() < deadline:
        await asyncio.sleep(0.005)
    cpu = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    sweeper.cancel()
    run.close()
    return _summary(run, cpu)


async def _closed_loop(
    target: Target,
    requests: Sequence[tuple[bytes, str]],
    spec: StepSpec,
    start_at: float,
    index: int,
    processes: int,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    rng = np.random.default_rng(spec.seed * 1000 + index)
    conns = max(1, spec.closed_loop // processes)
    t0 = loop.time() + (start_at - time.time())
    run = _Run(loop, target, spec, record_from=t0 + spec.warmup)
    run.closed_next = requests[int(rng.integers(len(requests)))]
    await asyncio.sleep(max(0.0, t0 - loop.time()))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(conns):
        _, conn = await loop.create_connection(
            lambda: Connection(loop, run.sink), target.host, target.port, ssl=run.ssl
        )
        run.conns.add(conn)
        raw, kind = requests[int(rng.integers(len(requests)))]
        run._send(conn, loop.time(), raw, kind)
    await asyncio.sleep(max(0.0, t0 + spec.warmup + spec.duration - loop.time()))
    run.closed_next = None
    deadline = loop.time() + spec.timeout
    while run.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.005)
    cpu = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    run.close()
    return _summary(run, cpu)


def _summary(run: _Run, cpu: float) -> dict[str, Any]:
    hists = {}
    for name, values in (("latency", run.lat), ("service", run.svc), ("send_lag", run.lag)):
        h = new_histogram()
        _quantized_record(h, values)
        hists[name] = h.encode()
    return {
        "sent": run.sent,
        "completed": run.completed,
        "ok": run.ok,
        "errors": run.errors,
        "kinds": run.kinds,
        "cpu": cpu,
        "max_in_flight": run.max_in_flight,
        **hists,
    }


def _worker(pipe: Pipe, target: Target, raw_requests: list[tuple[bytes, str]], index: int, processes: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional off Linux
        pass
    pipe.send("ready")
    while True:
        msg = pipe.recv()
        if msg is None:
            return
        spec, start_at = msg
        runner = _closed_loop if spec.closed_loop else _open_loop
        try:
            result = asyncio.run(runner(target, raw_requests, spec, start_at, index, processes))
        except Exception as exc:
            result = {"failure": f"{type(exc).__name__}: {exc}"}
        pipe.send(result)


class LoadGenerator:
    """A pool of generator processes aimed at one target; run steps with :meth:`run`.

    Use as a context manager so the processes always stop.
    """

    def __init__(
        self,
        url: str,
        requests: Sequence[Request],
        *,
        processes: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        if processes < 1:
            raise ValidationError(f"expected at least 1, got {processes}", field="processes")
        if not requests:
            raise ValidationError("the scenario produced no requests", field="scenario")
        self.target = Target.parse(url)
        self.processes = processes
        hdrs = dict(headers or {})
        self._raw = [
            (
                build_request(r.method, self.target.netloc, self.target.base_path + r.path or "/", r.body, hdrs),
                r.kind,
            )
            for r in requests
        ]
        self._pipes: list[Pipe] = []
        self._procs: list[Any] = []

    def __enter__(self) -> LoadGenerator:
        ctx = mp.get_context("spawn")
        for i in range(self.processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker,
                args=(child, self.target, self._raw, i, self.processes),
                daemon=True,
                name=f"mlscale-loadgen-{i}",
            )
            proc.start()
            self._pipes.append(parent)
            self._procs.append(proc)
        deadline = time.monotonic() + 60
        for pipe, proc in zip(self._pipes, self._procs, strict=True):
            while not pipe.poll(0.1):
                if not proc.is_alive() or time.monotonic() > deadline:
                    self.close()
                    raise UnreachableError("a load generator process failed to start")
            pipe.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError, BrokenPipeError):
                pipe.send(None)
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        self._pipes, self._procs = [], []

    def run(self, spec: StepSpec) -> StepResult:
        """Run one step on every process at once and merge what they measured."""
        if not self._pipes:
            raise RuntimeError("use LoadGenerator as a context manager")
        start_at = time.time() + 0.2
        for pipe in self._pipes:
            pipe.send((spec, start_at))
        budget = spec.warmup + spec.duration + spec.timeout + 60
        result = StepResult(spec=spec)
        for pipe in self._pipes:
            if not pipe.poll(budget):
                raise UnreachableError("a load generator process stopped answering")
            part = pipe.recv()
            if "failure" in part:
                raise UnreachableError(f"the load generator failed: {part['failure']}")
            result.sent += part["sent"]
            result.completed += part["completed"]
            result.ok += part["ok"]
            result.max_in_flight += part["max_in_flight"]
            result.cpu.append(part["cpu"])
            for k, v in part["errors"].items():
                result.errors[k] = result.errors.get(k, 0) + v
            for k, v in part["kinds"].items():
                result.kinds[k] = result.kinds.get(k, 0) + v
            for name in ("latency", "service", "send_lag"):
                getattr(result, name).decode_and_add(part[name])
        return result


def default_processes() -> int:
    """Half the cores (at least one): the other half is usually the server's on a test box."""
    return max(1, (os.cpu_count() or 2) // 2)
