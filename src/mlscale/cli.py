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
    from mlscale._cli import console, data, demo, deploy, loadtest, models, plan, serve, verbs

    parser = argparse.ArgumentParser(
        prog="mlscale",
        description="Scale ML applications: data, train, registry, serve, loadtest.",
    )
    parser.add_argument("--version", action="version", version=f"mlscale {__version__}")
    parser.set_defaults(cli_main=main)  # for commands that run other commands (demo) without importing this module
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (data, models, verbs, serve, console, loadtest, plan, deploy, demo):
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
    except OSError as err:
        # The system refused a read or write (disk full, read-only, permissions): say so, no traceback.
        print(f"mlscale: error: {describe_os_error(err)}", file=sys.stderr)
        return 74  # EX_IOERR
    return status


def describe_os_error(err: OSError) -> str:
    """One line for a failed read or write, with the fix for the usual causes."""
    import errno

    where = f" {err.filename}" if err.filename else ""
    what = err.strerror or str(err)
    hints = {
        errno.ENOSPC: "the disk is full: free some space or write elsewhere (--out)",
        errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere",
        errno.EROFS: "the file system is read-only: write elsewhere",
        errno.EACCES: "permission denied: check the owner and mode of the path",
    }
    hint = hints.get(err.errno or 0)
    if hint is None and "No space left" in what:  # Arrow's I/O errors carry the text, not the errno
        hint = hints[errno.ENOSPC]
    return f"cannot read or write{where}: {what}" + (f"\n  hint: {hint}" if hint else "")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
