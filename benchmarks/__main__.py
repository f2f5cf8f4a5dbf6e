"""``python -m benchmarks NAME [options]``: run one benchmark (``ingest``, ``train``, ``serve``, ``soak``...)."""

from __future__ import annotations

import argparse
import sys

from benchmarks import ann, fleet, ingest, loadtest, overload, serve, soak, spark, threat, train, vision

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per benchmark."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="mlscale benchmarks, each side by side with a baseline in one run.",
    )
    sub = parser.add_subparsers(dest="benchmark", metavar="NAME", required=True)
    ingest.add_parser(sub)
    train.add_parser(sub)
    serve.add_parser(sub)
    ann.add_parser(sub)
    loadtest.add_parser(sub)
    spark.add_parser(sub)
    threat.add_parser(sub)
    soak.add_parser(sub)
    overload.add_parser(sub)
    fleet.add_parser(sub)
    vision.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen benchmark; returns the exit status."""
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
