"""``mlscale demo``: the main job end to end on embedded defaults."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlscale._cli import _common

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job end to end on MovieLens-100k (ingest, train, evaluate, serve, load-test)",
        description="Verify and ingest MovieLens-100k from the data directory, train and evaluate the "
        "recommender on the local engine against popularity, publish it to the registry, promote it to "
        "production, ask it for recommendations (a known user and a cold one), then serve it over HTTP and "
        "put a short open-loop load test on it.",
    )
    p.add_argument("--work-dir", type=Path, default=None, help="where to write outputs (default: a temp folder)")
    _common.add_data_dir_arg(p)
    _common.add_registry_arg(p)
    p.set_defaults(handler=_demo)


Main = Callable[[Sequence[str]], int]


def _demo(args: argparse.Namespace) -> int:
    # The command line's own entry point runs each step; it is handed over by mlscale.cli (as the
    # ``cli_main`` default) rather than imported, so this module does not import the module that imports it.
    main: Main = args.cli_main
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="mlscale-demo-"))
    registry: str = args.registry or str(work / "registry")
    data = ["--data-dir", str(_common.data_dir(args))]
    reg = ["--registry", str(registry)]
    from mlscale.data.catalogue import get_dataset

    dataset = get_dataset("movielens-100k")
    first = (
        ("verify the data set's checksums", ["data", "verify", "movielens-100k", *data])
        if dataset.present(_common.data_dir(args)) == len(dataset.files)
        else ("download the data set from GroupLens and check it", ["data", "fetch", "movielens-100k", *data])
    )
    steps: list[tuple[str, list[str]]] = [
        first,
        (
            "ingest MovieLens-100k into a CSR matrix",
            ["data", "ingest", "movielens-100k", "--out", str(work / "ml100k-csr"), "--quiet", *data],
        ),
        (
            "train ALS and evaluate it against popularity (time split, last 10 per user)",
            # ALS outright: the load-test step's SLO (p99 <= 50 ms on a small machine) is a factor model's; the
            # no-flag default (EASE here) scores a user against the whole item-item matrix, ~17x the time.
            [
                "train",
                "recommend",
                "--data",
                "movielens-100k",
                "--name",
                "movielens",
                "--model",
                "als",
                "--evaluate",
                "--quiet",
                *data,
                *reg,
            ],
        ),
        (
            "promote it to production",
            ["models", "promote", "recommend/movielens", "--alias", "production", *reg],
        ),
        (
            "recommend for user 196, and for new user 100000 who just watched Star Wars (item 50)",
            [
                "recommend",
                "movielens@production",
                "--users",
                "196,100000",
                "--recent-items",
                "50",
                "--k",
                "5",
                *reg,
            ],
        ),
        ("the registry", ["models", "list", *reg]),
    ]
    total = len(steps) + 1
    for n, (title, argv) in enumerate(steps, 1):
        print(f"\n== {n}/{total} {title}\n$ mlscale {' '.join(argv)}", flush=True)
        status = main(argv)
        if status != 0:
            return status
    status = _serve_and_load(main, work, registry, _common.data_dir(args), total)
    print(f"\ndemo done; outputs in {work}")
    return status


def _serve_and_load(main: Main, work: Path, registry: str, data_dir: Path, n: int) -> int:
    """Serve the model on a free loopback port and put a short open-loop load test on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    serve = [
        sys.executable,
        "-m",
        "mlscale.cli",
        "serve",
        "--model",
        "movielens=recommend/movielens@production",
        "--port",
        str(port),
        "--registry",
        str(registry),
    ]
    print(f"\n== {n}/{n} serve it and load-test it for 5 s (recommend scenario, SLO p99 <= 50 ms)", flush=True)
    print(f"$ mlscale serve --model movielens=recommend/movielens@production --port {port} &", flush=True)
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                print(f"the server did not start; see {work / 'serve.log'}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        argv = [
            "loadtest",
            url,
            "--scenario",
            "recommend",
            "--data",
            "movielens-100k",
            "--data-dir",
            str(data_dir),
            "--rate",
            "200",
            "--duration",
            "5",
            "--processes",
            "1",
            "--report",
            str(work / "loadtest"),
        ]
        print(f"$ mlscale {' '.join(argv)}", flush=True)
        status = main(argv)
        print(f"open the load test report: {work / 'loadtest' / 'report.html'}")
        return status
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
