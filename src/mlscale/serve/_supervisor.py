"""The supervisor: one listening socket, N worker processes, a dead worker replaced.

The supervisor binds the port itself and hands the listening socket to each
worker (inherited file descriptor): connections waiting in the accept queue
are taken by whichever worker is free, so a worker that dies loses only the
connections it had open, and its replacement starts accepting once its models
are warm. Workers are fresh interpreters (not forks), so nothing a worker does
can corrupt another. The model arrays are memory-mapped read-only from the
registry, so every worker shares the same physical pages: memory does not
grow with the worker count (``benchmarks/serve.py`` measures it).
"""

from __future__ import annotations

import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType

from mlscale.errors import ConfigError, MlscaleError
from mlscale.serve._config import ServeConfig
from mlscale.serve._metrics import Metrics, mark_dead

__all__ = ["Supervisor", "bind_socket"]

log = logging.getLogger("mlscale.serve")

_MAX_BACKOFF = 10.0


def bind_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that worker processes can inherit."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ConfigError(f"cannot resolve --host {host!r}: {err}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {err.strerror}",
            hint="choose another --port, or stop the process that uses it",
        ) from None
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes]
    status: int
    started: float
    ready: bool = False
    buffer: bytes = field(default=b"")


class Supervisor:
    """Starts the workers, replaces any that die, and stops them all on SIGTERM or SIGINT."""

    def __init__(self, config: ServeConfig, sock: socket.socket, *, env: dict[str, str] | None = None) -> None:
        self.sock = sock
        self._own_dir = config.metrics_dir is None
        metrics_dir = config.metrics_dir or Path(tempfile.mkdtemp(prefix="mlscale-serve-", dir=_shm()))
        self.config = replace(config, metrics_dir=metrics_dir, port=sock.getsockname()[1])
        # Every BLAS / OpenMP library a worker loads, even after start-up, gets the worker's thread count:
        # several threads per worker would fight over the cores the workers already share.
        self.env = dict(os.environ if env is None else env)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            self.env.setdefault(var, str(self.config.threads))
        self.metrics = Metrics(metrics_dir, worker=f"supervisor-{os.getpid()}")
        self.restarts = self.metrics.counter(
            "mlscale_worker_restarts_total", "Worker processes that died and were replaced."
        )
        self.workers: dict[int, _Worker] = {}
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self.backoff: dict[int, float] = {}

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``--port 0``)."""
        return int(self.config.port)

    def _spawn(self, index: int) -> _Worker:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        cmd = [
            sys.executable,
            "-m",
            "mlscale.serve._worker",
            str(self.sock.fileno()),
            str(write_fd),
            self.config.to_json(),
        ]
        proc = subprocess.Popen(cmd, pass_fds=(self.sock.fileno(), write_fd), env=self.env)
        os.close(write_fd)
        worker = _Worker(index, proc, read_fd, time.monotonic())
        self.workers[index] = worker
        self.selector.register(read_fd, selectors.EVENT_READ, worker)
        return worker

    def _drop(self, worker: _Worker) -> None:
        self.selector.unregister(worker.status)
        os.close(worker.status)
        assert self.config.metrics_dir is not None
        mark_dead(self.config.metrics_dir, str(worker.proc.pid))

    def _read_status(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            worker: _Worker = key.data
            try:
                chunk = os.read(worker.status, 256)
            except BlockingIOError:
                continue
            worker.buffer += chunk
            if b"ready\n" in worker.buffer:
                worker.ready = True
            if not chunk:
                self.selector.unregister(worker.status)
                os.close(worker.status)
                worker.status = -1

    def start(self) -> None:
        """Start every worker and wait until all are ready; a worker failing at startup is an error."""
        for index in range(self.config.workers):
            self._spawn(index)
        while not all(w.ready for w in self.workers.values()):
            self._read_status(0.05)
            for w in self.workers.values():
                code = w.proc.poll()
                if code is not None and not w.ready:
                    self.stop()
                    raise MlscaleError(f"a worker exited with status {code} while starting (its error is above)")

    def run(self) -> int:
        """Supervise until SIGTERM or SIGINT, then stop the workers gracefully; returns the exit status."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not self.stopping:
                self._read_status(0.1)
                self._reap()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _reap(self) -> None:
        now = time.monotonic()
        for index, worker in list(self.workers.items()):
            code = worker.proc.poll()
            if code is None or self.stopping:
                continue
            lived = now - worker.started
            delay = self.backoff.get(index, 0.0)
            # A worker that dies soon after starting is probably failing for good: back off.
            delay = min(_MAX_BACKOFF, max(0.1, delay * 2)) if lived < 5.0 else 0.0
            self.backoff[index] = delay
            log.error(
                "worker %d (pid %d) exited with status %s; replacing it%s",
                index,
                worker.proc.pid,
                code,
                f" in {delay:.1f}s" if delay else "",
            )
            if worker.status >= 0:
                self._drop(worker)
            else:
                assert self.config.metrics_dir is not None
                mark_dead(self.config.metrics_dir, str(worker.proc.pid))
            del self.workers[index]
            self.restarts.inc()
            if delay:
                time.sleep(delay)
            if not self.stopping:
                self._spawn(index)

    def stop(self) -> None:
        """SIGTERM every worker, wait up to the grace period, then SIGKILL what is left."""
        self.stopping = True
        for w in self.workers.values():
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.grace + 2.0
        for w in self.workers.values():
            try:
                w.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            if w.status >= 0:
                self.selector.unregister(w.status)
                os.close(w.status)
                w.status = -1
        self.workers.clear()
        self.sock.close()
        if self._own_dir and self.config.metrics_dir is not None:
            shutil.rmtree(self.config.metrics_dir, ignore_errors=True)

    def worker_pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [w.proc.pid for w in self.workers.values()]


def _shm() -> str | None:
    # Metrics files in RAM when the system has a tmpfs for it.
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
