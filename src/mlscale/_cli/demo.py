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
        help="run the main job end to end on MovieLens-100k (ingest, train, evaluate)",
        description="Ingest MovieLens-100k from the data directory, train the recommender on the local "
        "engine, evaluate it against popularity and publish it to the registry.",
    )
    p.add_argument("--work-dir", type=Path, default=None, help="where to write outputs (default: a temp folder)")
    _common.add_data_dir_arg(p)
    _common.add_registry_arg(p)
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from mlscale.cli import main

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="mlscale-demo-"))
    data = ["--data-dir", str(_common.data_dir(args))]
    print(f"== 1/1 ingest movielens-100k -> {work / 'ml100k-csr'}")
    status = main(["data", "ingest", "movielens-100k", "--out", str(work / "ml100k-csr"), *data])
    return status
