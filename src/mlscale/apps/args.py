"""Flags every command shares (``--registry``, ``--data-dir``), for the generic verbs and an app's own commands.

Part of the contract layer, so an application's commands (``mlscale threat
score``) take the same flags as the generic verbs without importing the CLI.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mlscale.config import load_settings

__all__ = ["add_data_dir_arg", "add_registry_arg", "data_dir", "registry_root"]


def add_registry_arg(parser: argparse.ArgumentParser) -> None:
    """``--registry DIR|URI`` (default: the ``registry`` setting); kept a string so ``s3://`` survives."""
    parser.add_argument(
        "--registry",
        metavar="DIR|URI",
        default=None,
        help="model registry: a folder or s3://BUCKET/PREFIX (default: $MLSCALE_REGISTRY, else a per-user data folder)",
    )


def add_data_dir_arg(parser: argparse.ArgumentParser) -> None:
    """``--data-dir DIR`` (default: the ``data_dir`` setting)."""
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        default=None,
        help="data folder (default: $MLSCALE_DATA_DIR, else ~/.cache/mlscale/data)",
    )


def registry_root(args: argparse.Namespace) -> str:
    """The registry the flags name: a folder or a URI, as :func:`~mlscale.registry.open_store` takes it."""
    given: str | None = getattr(args, "registry", None)
    return given if given is not None else load_settings().registry


def data_dir(args: argparse.Namespace) -> Path:
    """The data folder the flags name."""
    given: Path | None = getattr(args, "data_dir", None)
    return given if given is not None else load_settings().data_dir
