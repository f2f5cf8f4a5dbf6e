"""The ``mlscale`` command.

Each group of subcommands lives in a private module under :mod:`mlscale._cli`
that exposes ``add_parser(subparsers)``; this module only wires them together
and turns every :class:`~mlscale.errors.MlscaleError` into one clear line on
stderr and a non-zero exit status (never a traceback for a user mistake).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlscale._version import __version__
from mlscale.errors import MlscaleError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from mlscale._cli import data, demo, loadtest, models, serve, verbs

    parser = argparse.ArgumentParser(
        prog="mlscale",
        description="Scale ML applications: data, train, registry, serve, loadtest.",
    )
    parser.add_argument("--version", action="version", version=f"mlscale {__version__}")
    parser.set_defaults(cli_main=main)  # for commands that run other commands (demo) without importing this module
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (data, models, verbs, serve, loadtest, demo):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except MlscaleError as err:
        print(f"mlscale: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("mlscale: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours. Silence the flush at exit too.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
