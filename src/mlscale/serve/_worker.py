"""One worker process: load and warm the models, then serve on the socket the supervisor shares.

Started by the supervisor as ``python -m mlscale.serve._worker FD STATUS_FD CONFIG_JSON``.
It accepts connections only once every model is loaded and warmed (so a
replaced worker never answers "not ready"), writes ``ready`` to the status
pipe, and on SIGTERM stops accepting, finishes what is in flight (up to
``grace`` seconds) and exits. It also exits if the supervisor disappears.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from threadpoolctl import threadpool_limits

from mlscale.config import load_settings
from mlscale.errors import ConfigError, MlscaleError
from mlscale.registry import ModelRef, Store, open_store
from mlscale.serve._app import ServeMetrics, ServingApp
from mlscale.serve._batcher import OverloadedError
from mlscale.serve._config import ServeConfig
from mlscale.serve._http import Limits, Server, install_loop_policy
from mlscale.serve._metrics import Metrics
from mlscale.serve._models import BatchSettings, ModelSlot, PredictorFactory, Watcher, load_live, resolve_factory
from mlscale.serve.mount import build_mount

__all__ = ["build_app", "drain", "main", "run_worker"]

log = logging.getLogger("mlscale.serve")


def build_app(
    config: ServeConfig,
    store: Store,
    metrics: Metrics,
    token: str | None,
    predictor_factory: PredictorFactory | None = None,
) -> ServingApp:
    """Load and warm every configured model; the routes that serve them.

    ``predictor_factory`` builds each model's predictor (default: the config's ``"module:attribute"``).
    """
    factory = predictor_factory or (resolve_factory(config.predictor_factory) if config.models else None)
    serve_metrics = ServeMetrics(metrics)
    settings = BatchSettings(max_batch=config.max_batch, max_wait=config.batch_wait, max_queue=config.max_queue)
    slots = {}
    for name, ref_text in config.models:
        ref = ModelRef.parse(ref_text)
        exact = ref.with_selector(store.current_version(ref))
        assert factory is not None
        live = load_live(store, exact, predictor_factory=factory, verify=config.verify)
        slots[name] = ModelSlot(name, ref, live, settings, serve_metrics.stats)
    mounts = [build_mount(f, options) for f, options in config.mounts]
    return ServingApp(slots, metrics=serve_metrics, token=token, timeout=config.timeout, mounts=mounts)


def _no_factory(loaded: object) -> Any:  # only models need a predictor factory; a mounts-only server has none
    raise ConfigError("no predictor factory")


def limits_of(config: ServeConfig) -> Limits:
    """The connection limits a configuration asks for."""
    return Limits(max_body=config.max_body, max_connections=config.max_connections)


async def _serve(config: ServeConfig, app: ServingApp, sock: socket.socket, status_fd: int | None) -> int:
    loop = asyncio.get_running_loop()
    server = Server(app, limits_of(config), loop)
    app._connections = server.connections
    server.on_tick.append(app.update_gauges)
    store = open_store(config.registry)
    watcher = Watcher(
        store,
        list(app.slots.values()),
        loop,
        predictor_factory=resolve_factory(config.predictor_factory) if config.models else _no_factory,
        interval=config.poll_interval,
        verify=config.verify,
        on_swap=app.on_swap,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()

    def watch_parent() -> None:
        if os.getppid() != parent:
            log.error("the supervisor is gone; stopping")
            stop.set()
        else:
            loop.call_later(1.0, watch_parent)

    await server.start(sock, backlog=config.backlog)
    watcher.start()
    watch_parent()
    if status_fd is not None:
        os.write(status_fd, b"ready\n")
    await stop.wait()
    watcher.stop()
    await drain(server, app, config.grace)
    return 0


async def drain(server: Server, app: ServingApp, grace: float) -> int:
    """Stop gracefully: stop accepting, answer what is in flight for up to ``grace`` seconds, then refuse
    every request still unanswered (503, ``Retry-After: 1``) and close. Returns how many were refused.

    No client is left waiting on a connection that is then reset: each request received gets an answer.
    """
    app.draining = server.draining = True
    server.stop_accepting()
    await asyncio.sleep(0.05)  # let the loop read what clients had already sent: it is in flight too
    # Keep a little of the grace period to write the refusals.
    margin = min(0.2, grace / 4)
    deadline = time.monotonic() + grace - margin
    while server.in_flight() and time.monotonic() < deadline:
        server.close_idle()
        await asyncio.sleep(0.02)
    shutdown = OverloadedError("the server is shutting down", retry_after=1, reason="shutdown")
    refused = 0
    for slot in app.slots.values():
        for batcher in slot.batchers.values():
            refused += batcher.fail_all(shutdown)
    # Requests whose batch is still computing: refused too, rather than cut off.
    refused += server.refuse_unanswered()
    if refused:
        log.warning("shutting down: refused %d requests not answered within the %.1f s grace period", refused, grace)
    await asyncio.sleep(min(0.05, margin))  # the refusals go out before the sockets close
    server.close()
    for slot in app.slots.values():
        for batcher in slot.batchers.values():
            batcher.close()
    return refused


def _raise_open_files_limit() -> None:
    """Allow as many connections as the system lets this user have (the default soft limit is often 1024)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not on this platform or not allowed
        pass


def run_worker(config: ServeConfig, sock: socket.socket, status_fd: int | None = None) -> int:
    """Serve until SIGTERM; returns the exit status."""
    _raise_open_files_limit()
    # One BLAS thread per worker: the workers are the parallelism, and more would oversubscribe the cores.
    threadpool_limits(config.threads)
    store = open_store(config.registry)
    metrics = Metrics(config.metrics_dir, worker=str(os.getpid()))
    app = build_app(config, store, metrics, load_settings().api_token)
    loop = install_loop_policy()()
    try:
        return loop.run_until_complete(_serve(config, app, sock, status_fd))
    finally:
        loop.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of a worker process."""
    args = list(sys.argv[1:] if argv is None else argv)
    fd, status_fd, config = int(args[0]), int(args[1]), ServeConfig.from_json(args[2])
    logging.basicConfig(level=logging.WARNING, format=f"mlscale serve [worker {os.getpid()}] %(message)s")
    sock = socket.socket(fileno=fd)
    try:
        return run_worker(config, sock, status_fd)
    except MlscaleError as err:
        print(f"mlscale serve [worker {os.getpid()}]: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":  # pragma: no cover - run by the supervisor
    sys.exit(main())
