"""``mlscale data ingest``: any interaction log to partitioned Parquet or a CSR matrix."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from mlscale._cli import _common
from mlscale._cli._progress import byte_progress
from mlscale.apps.recommend.reader_args import add_reader_args, reader_options
from mlscale.data.ingest import DEFAULT_MEMORY_BUDGET, IngestSummary, ingest_parquet, parse_size
from mlscale.data.sources import open_interactions

__all__ = ["add_commands"]


def add_commands(group: Any) -> None:
    p = group.add_parser(
        "ingest",
        help="read an interaction log (CSV/TSV/'::'/gzip/Parquet) into Parquet parts or a CSR matrix",
        description="Stream an interaction log into partitioned Parquet or a sparse user x item matrix "
        "with bounded memory. SOURCE is a catalogue name (see `mlscale data list`), a file or a folder.",
    )
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--to", choices=("csr", "parquet"), default="csr", help="output kind (default: csr)")
    p.add_argument(
        "--memory-budget",
        default=str(DEFAULT_MEMORY_BUDGET >> 20) + "M",
        help="working memory besides the final matrix (default: 256M)",
    )
    p.add_argument("--rows-per-file", type=int, default=10_000_000, help="Parquet rows per part file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_reader_args(p)
    _common.add_data_dir_arg(p)
    p.set_defaults(handler=_ingest)


def _ingest(args: argparse.Namespace) -> int:
    budget = parse_size(args.memory_budget)
    stream = open_interactions(
        args.source,
        _common.data_dir(args),
        id_type=args.id_type,
        on_error=args.on_error,
        **reader_options(args),
    )
    summary = IngestSummary()
    start = time.perf_counter()
    with byte_progress(stream, disable=args.quiet) as on_batch:

        def count(batch: Any) -> None:
            summary.rows += batch.num_rows
            on_batch(batch)

        if args.to == "parquet":
            summary.files = ingest_parquet(stream, args.out, rows_per_file=args.rows_per_file, on_batch=count)
        else:
            # The CSR matrix is the recommender's input: imported only when asked for.
            from mlscale.apps.recommend.ingest import ingest_matrix

            matrix = ingest_matrix(stream, memory_budget=budget, spill_dir=args.out.parent, on_batch=count)
            matrix.save(args.out)
            summary.users, summary.items = matrix.shape
            summary.nnz = matrix.nnz
    summary.seconds = time.perf_counter() - start
    summary.bad_rows, summary.bad_examples = stream.bad_rows, stream.bad_examples
    for line in summary.lines():
        print(line)
    print(f"output: {args.out}")
    sys.stdout.flush()
    return 0
