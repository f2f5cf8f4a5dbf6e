"""``mlscale data``: the dataset catalogue (list, info, fetch, verify), plus ingest and synth."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from mlscale._cli import _common
from mlscale.data.catalogue import (
    DATASETS,
    DEFAULT_TIMEOUT,
    MIRROR_ENV,
    Dataset,
    FileStatus,
    VerifyReport,
    fetch_dataset,
    get_dataset,
)

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "data",
        help="data sets: list, info, fetch, verify the catalogue; ingest; synth",
        description="The catalogue of public data sets (files in --data-dir/<name>/), "
        "and tools to ingest interaction logs and make synthetic ones.",
    )
    group = p.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    lst = group.add_parser("list", help="list the catalogue and what is on disk")
    _common.add_data_dir_arg(lst)
    lst.set_defaults(handler=_list)

    info = group.add_parser("info", help="source, licence, citation and files of one data set")
    info.add_argument("name", metavar="NAME", help="catalogue name (see `mlscale data list`)")
    _common.add_data_dir_arg(info)
    info.set_defaults(handler=_info)

    fetch = group.add_parser(
        "fetch",
        help="download a data set from its official source",
        description="Download the official archive(s), rebuild the catalogue files, check every checksum and "
        f"install them in --data-dir/NAME/. ${MIRROR_ENV} (or --mirror) replaces the scheme and host of each "
        "official URL by a base URL, keeping host and path (the layout `wget -x` makes).",
    )
    fetch.add_argument("name", metavar="NAME", help="catalogue name")
    fetch.add_argument("--force", action="store_true", help="download even if the files already verify")
    fetch.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up on a server silent this long (default {DEFAULT_TIMEOUT:g})",
    )
    fetch.add_argument("--mirror", metavar="URL", default=None, help=f"mirror base URL (default: ${MIRROR_ENV})")
    _common.add_data_dir_arg(fetch)
    fetch.set_defaults(handler=_fetch)

    verify = group.add_parser("verify", help="check every file's size and sha256; exit 1 if any fails")
    verify.add_argument("name", metavar="NAME", help="catalogue name")
    _common.add_data_dir_arg(verify)
    verify.set_defaults(handler=_verify)

    # The lead's modules add their subcommands to this same group.
    from mlscale._cli import ingest, synth, synth_model

    ingest.add_commands(group)
    synth.add_commands(group)
    synth_model.add_command(group)  # a recommender with synthetic factors: large catalogues, no training


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - loop always returns


def _list(args: argparse.Namespace) -> int:
    data_dir = _common.data_dir(args)
    rows = [("NAME", "KIND", "FILES", "SIZE", "LICENCE")]
    for ds in DATASETS.values():
        rows.append((ds.name, ds.kind, f"{ds.present(data_dir)}/{len(ds.files)}", _size(ds.size), ds.licence))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                cell.rjust(w) if i in (2, 3) else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    print(f"\ndata dir: {data_dir}  (FILES = present/expected; `mlscale data verify NAME` checks them)")
    return 0


def _wrap(label: str, text: str) -> str:
    return textwrap.fill(text, width=100, initial_indent=f"{label:<11}", subsequent_indent=" " * 11)


def _info(args: argparse.Namespace) -> int:
    ds = get_dataset(args.name)
    data_dir = _common.data_dir(args)
    print(f"{ds.name}: {ds.title}")
    print(_wrap("kind", ds.kind))
    print(_wrap("source", ds.url))
    print(_wrap("homepage", ds.homepage))
    print(_wrap("licence", f"{ds.licence}. {ds.licence_note}"))
    print(_wrap("cite", ds.citation))
    print(_wrap("about", ds.summary))
    for note in ds.notes:
        print(_wrap("note", note))
    if ds.interactions is not None:
        src = ds.interactions
        print(
            _wrap(
                "interact.",
                f"{src.file}: user={src.user} item={src.item} rating={src.rating} timestamp={src.timestamp}",
            )
        )
    print(_wrap("folder", f"{ds.path(data_dir)}/ ({ds.present(data_dir)}/{len(ds.files)} files present)"))
    print("files:")
    for f in ds.files:
        extra = f", {f.rows:,} rows" if f.rows is not None else ""
        optional = "" if f.required else ", optional"
        print(f"  {f.path}  ({f.size:,} bytes{extra}{optional})")
        print(f"      sha256 {f.sha256}")
        if f.content_sha256:
            print(f"      content sha256 {f.content_sha256} ({f.content_size or 0:,} bytes decompressed)")
        if f.origin is not None:
            print(textwrap.fill(f"from {f.origin.describe()}", 100, initial_indent=" " * 6, subsequent_indent=" " * 8))
        else:
            print("      no official download reproduces this file: `mlscale data fetch` cannot make it")
        if f.note:
            print(textwrap.fill(f"note: {f.note}", 100, initial_indent=" " * 6, subsequent_indent=" " * 8))
    if ds.manual:
        print(_wrap("by hand", ds.manual))
    return 0


def _print_report(report: VerifyReport) -> None:
    print(report)


def _fetch(args: argparse.Namespace) -> int:
    ds: Dataset = get_dataset(args.name)
    report = fetch_dataset(ds, _common.data_dir(args), force=args.force, timeout=args.timeout, mirror=args.mirror)
    _print_report(report)
    if not report.ok:
        print(f"{ds.name}: {len(report.failed)} file(s) still missing or wrong; see the notes above")
        return 1
    return 0


def _verify(args: argparse.Namespace) -> int:
    ds = get_dataset(args.name)
    report = ds.verify(_common.data_dir(args))
    _print_report(report)
    if report.ok:
        return 0
    failed = report.failed
    missing = [c.file.path for c in failed if c.status is FileStatus.MISSING]
    print(f"{ds.name}: {len(failed)} of {len(report.checks)} files failed: " + ", ".join(c.file.path for c in failed))
    if missing:
        how = f"run `mlscale data fetch {ds.name}`, or " if ds.fetchable else ""
        print(f"  to fix: {how}{ds.manual_instructions(_common.data_dir(args))}")
    return 1
