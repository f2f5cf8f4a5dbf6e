"""``mlscale console``: the analyst console on its own (``mlscale serve --console`` mounts it beside models)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlscale._cli._common import add_data_dir_arg, add_registry_arg, data_dir, registry_root

__all__ = ["add_console_args", "add_parser", "console_mount"]


def add_console_args(p: argparse.ArgumentParser, *, prefix: str = "") -> None:
    """Where the console reads from (``prefix``: ``console-`` when added to ``mlscale serve``)."""
    g = p.add_argument_group("console")
    g.add_argument(
        f"--{prefix}runs",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of scored runs (mlscale threat score --out DIR/NAME.parquet; default: REGISTRY/.console/runs)",
    )
    g.add_argument(f"--{prefix}reports", type=Path, default=None, metavar="DIR", help="folder of load-test reports")
    if not prefix:
        g.add_argument("--server", default="", metavar="URL", help="a running mlscale serve to watch (its /metrics)")


def console_mount(args: argparse.Namespace, *, prefix: str = "", server: str = "") -> tuple[str, str]:
    """The (factory, options) pair of ``ServeConfig.mounts`` that builds the console.

    The console reads the threat app's runs and verdicts: without its extra this fails now, with the
    ``pip install 'mlscale[threat]'`` line, not in the worker.
    """
    from mlscale.apps import get_application

    get_application("threat")
    from mlscale.console import MOUNT_FACTORY

    key = prefix.replace("-", "_")
    runs = getattr(args, f"{key}runs")
    reports = getattr(args, f"{key}reports")
    registry = registry_root(args)  # a folder, or a store URI (s3://...) kept as given
    options: dict[str, Any] = {
        "registry": registry if "://" in registry else str(Path(registry).expanduser().resolve()),
        "runs": str(runs.resolve()) if runs else None,
        "reports": str(reports.resolve()) if reports else None,
        "data_dir": str(data_dir(args).resolve()),
        "server": server,
        "mounted": bool(prefix),
    }
    return MOUNT_FACTORY, json.dumps(options)


def add_parser(sub: Any) -> None:
    """Add the ``console`` command to the top-level subparsers."""
    p = sub.add_parser(
        "console",
        help="the analyst console: threat hunting, feedback, models, serving and load tests in a browser",
        description="A web page at http://HOST:PORT/ui/ over the registry, the scored runs of `mlscale threat "
        "score`, past load-test reports and a running server's /metrics. Set MLSCALE_API_TOKEN to require "
        "a bearer token (the page asks for it).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8088, help="port (default: 8088; 0: any free port)")
    add_console_args(p)
    add_data_dir_arg(p)
    add_registry_arg(p)
    p.set_defaults(handler=_console)


def _console(args: argparse.Namespace) -> int:
    from mlscale.config import load_settings
    from mlscale.serve import ServeConfig, Supervisor, serve

    config = ServeConfig(
        registry=registry_root(args),
        models=(),
        host=args.host,
        port=args.port,
        mounts=(console_mount(args, server=args.server),),
    )

    def ready(supervisor: Supervisor) -> None:
        host = args.host if ":" not in args.host else f"[{args.host}]"
        token = " (bearer token required: the page asks for it)" if load_settings().api_token else ""
        print(f"console on http://{host}:{supervisor.port}/ui/{token}", flush=True)

    return serve(config, on_ready=ready)
