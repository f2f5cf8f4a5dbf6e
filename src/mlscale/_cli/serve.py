"""``mlscale serve``: the prediction service over HTTP."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

from mlscale._cli._common import add_data_dir_arg, add_registry_arg, registry_root
from mlscale._cli.console import add_console_args, console_mount
from mlscale.apps import get_application
from mlscale.config import load_settings
from mlscale.data.ingest import parse_size
from mlscale.errors import ConfigError
from mlscale.registry import open_store

__all__ = ["PREDICTOR_FACTORY", "add_parser"]

#: What the serving workers build each model's predictor with: the model's application's.
PREDICTOR_FACTORY = "mlscale.apps:build_predictor"


def add_parser(sub: Any) -> None:
    """Add the ``serve`` command to the top-level subparsers."""
    p = sub.add_parser(
        "serve",
        help="serve models over HTTP: micro-batched, multi-process, hot-swapped",
        description="Serve registry models over HTTP/1.1 + JSON. Concurrent requests to a model are "
        "coalesced into one vectorised call; a moved alias (mlscale models promote) is picked up "
        "without a restart; when the server cannot answer in time it says 503 + Retry-After at once. "
        "Routes: POST /v1/models/NAME/ACTION, GET /v1/models/NAME/ACTION/KEY, /v1/models, /healthz, "
        "/readyz, /metrics, /openapi.json. Set MLSCALE_API_TOKEN to require a bearer token.",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]REF",
        help="model to serve, APP/MODEL[@alias|version] or MODEL (repeatable; default: every model of "
        "the registry, at @production when it has that alias, else the latest version)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free port)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads per worker (default: 1)")
    g = p.add_argument_group("batching and overload")
    g.add_argument("--max-batch", type=int, default=256, help="most rows per model call (default: 256)")
    g.add_argument(
        "--batch-wait-ms",
        type=float,
        default=0.0,
        help="hold a small batch this long for more requests (default: 0: batches form while the "
        "previous one runs, and a lone request is not delayed)",
    )
    g.add_argument(
        "--max-queue", type=int, default=2048, help="most rows waiting per model; beyond: 503 (default: 2048)"
    )
    g.add_argument(
        "--timeout-ms",
        type=float,
        default=1000.0,
        help="default deadline of a request; one that cannot be met gets 503 at once (default: 1000; "
        "clients may send X-Request-Timeout-Ms)",
    )
    g = p.add_argument_group("limits")
    g.add_argument("--max-body", default="1M", help="largest request body (default: 1M)")
    g.add_argument("--max-connections", type=int, default=10_000, help="per worker (default: 10000)")
    g.add_argument("--poll-interval", type=float, default=1.0, help="seconds between checks for a promoted version")
    g.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of artifacts on load")
    p.add_argument("--console", action="store_true", help="also serve the analyst console at /ui/")
    add_console_args(p, prefix="console-")
    add_data_dir_arg(p)
    add_registry_arg(p)
    p.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from mlscale.serve import ServeConfig, Supervisor, resolve_models, serve

    root = registry_root(args)
    store = open_store(root)
    models = resolve_models(store, args.model)
    for _, ref in models:
        app = store.resolve(ref).app
        if not get_application(app).servable:
            raise ConfigError(f"the {app!r} application cannot serve models yet")
    config = ServeConfig(
        registry=root,
        models=models,
        predictor_factory=PREDICTOR_FACTORY,
        host=args.host,
        port=args.port,
        workers=args.workers,
        threads=args.threads,
        max_batch=args.max_batch,
        batch_wait=args.batch_wait_ms / 1000.0,
        max_queue=args.max_queue,
        timeout=args.timeout_ms / 1000.0,
        max_body=parse_size(args.max_body),
        max_connections=args.max_connections,
        poll_interval=args.poll_interval,
        verify=not args.no_verify,
        mounts=(console_mount(args, prefix="console-"),) if args.console else (),
    )
    token = load_settings().api_token

    def ready(supervisor: Supervisor) -> None:
        host = args.host if ":" not in args.host else f"[{args.host}]"
        for name, ref in config.models:
            print(f"serving {ref} as /v1/models/{name}")
        if args.console:
            print(f"console at http://{host}:{supervisor.port}/ui/")
        print(
            f"listening on http://{host}:{supervisor.port} with {config.workers} worker(s)"
            f"{'; bearer token required' if token else ''}",
            flush=True,
        )
        if token is None and not _is_loopback(args.host):
            print(
                "warning: listening beyond this machine without a token; set MLSCALE_API_TOKEN",
                file=sys.stderr,
            )

    return serve(config, token=token, on_ready=ready)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
