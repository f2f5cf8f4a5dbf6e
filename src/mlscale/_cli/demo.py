"""``mlscale demo``: the main job end to end on embedded defaults."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from mlscale._cli import _common

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job end to end on MovieLens-100k",
        description="Verify and ingest MovieLens-100k from the data directory, train and evaluate the "
        "recommender on the local engine against popularity, publish it to the registry, promote it to "
        "production and ask it for recommendations (a known user and a cold one).",
    )
    p.add_argument("--work-dir", type=Path, default=None, help="where to write outputs (default: a temp folder)")
    _common.add_data_dir_arg(p)
    _common.add_registry_arg(p)
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from mlscale.cli import main

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="mlscale-demo-"))
    registry = args.registry or work / "registry"
    data = ["--data-dir", str(_common.data_dir(args))]
    reg = ["--registry", str(registry)]
    steps: list[tuple[str, list[str]]] = [
        ("verify the data set's checksums", ["data", "verify", "movielens-100k", *data]),
        (
            "ingest MovieLens-100k into a CSR matrix",
            ["data", "ingest", "movielens-100k", "--out", str(work / "ml100k-csr"), "--quiet", *data],
        ),
        (
            "train ALS and evaluate it against popularity (time split, last 10 per user)",
            [
                "train",
                "recommend",
                "--data",
                "movielens-100k",
                "--name",
                "movielens",
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
    for n, (title, argv) in enumerate(steps, 1):
        print(f"\n== {n}/{len(steps)} {title}\n$ mlscale {' '.join(argv)}", flush=True)
        status = main(argv)
        if status != 0:
            return status
    print(f"\ndemo done; outputs in {work}")
    return 0
