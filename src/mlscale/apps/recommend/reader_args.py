"""The flags that say how to read an interaction file (``train``, ``evaluate``, ``update``, ``data ingest``)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

__all__ = ["add_reader_args", "reader_options", "stream_options"]


def add_reader_args(p: argparse.ArgumentParser) -> None:
    """``--sep``, ``--header``, the column names, ``--id-type`` and ``--on-error``."""
    p.add_argument("--sep", help="field separator (default: detected; e.g. ',' '\\t' '::')")
    hdr = p.add_mutually_exclusive_group()
    hdr.add_argument("--header", dest="header", action="store_true", default=None, help="first line is a header")
    hdr.add_argument("--no-header", dest="header", action="store_false", help="first line is data")
    p.add_argument("--user-col", help="name of the user column (default: detected)")
    p.add_argument("--item-col", help="name of the item column (default: detected)")
    p.add_argument("--rating-col", help="name of the rating / count column (default: detected; else 1.0)")
    p.add_argument("--time-col", help="name of the timestamp column (default: detected)")
    p.add_argument("--id-type", choices=("auto", "int", "str"), default="auto", help="type of user/item ids")
    p.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="bad rows: stop with file, line and reason (raise, default) or skip and count them",
    )


def reader_options(options: argparse.Namespace | Mapping[str, Any]) -> dict[str, Any]:
    """The reader keywords the flags of :func:`add_reader_args` set (those given only)."""
    o = vars(options) if isinstance(options, argparse.Namespace) else options
    sep = o.get("sep")
    opts = {
        "sep": sep.encode().decode("unicode_escape") if sep else None,
        "header": o.get("header"),
        "user_col": o.get("user_col"),
        "item_col": o.get("item_col"),
        "rating_col": o.get("rating_col"),
        "time_col": o.get("time_col"),
    }
    return {k: v for k, v in opts.items() if v is not None}


def stream_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`reader_options` plus ``id_type`` and ``on_error``: what ``open_interactions`` takes."""
    return {
        "id_type": options.get("id_type", "auto"),
        "on_error": options.get("on_error", "raise"),
        **reader_options(options),
    }
