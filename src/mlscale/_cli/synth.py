"""``mlscale data synth``: a synthetic interaction log of any size, shaped like a real one."""

from __future__ import annotations

import argparse
import re
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from mlscale._cli import _common
from mlscale.errors import ValidationError

__all__ = ["add_commands", "parse_count"]

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}
_FORMATS = ("parquet", "csv", "csv.gz")
_LARGEST = Decimal(10) ** 15


def parse_count(text: str, *, field: str = "--rows", minimum: int = 1) -> int:
    """Parse a whole count: ``1e7``, ``10_000_000``, ``10,000,000``, ``10M``, ``2.5k``, ``1B``.

    Suffixes are decimal (k = 1e3, M = 1e6, G or B = 1e9, T = 1e12).

    >>> parse_count("1e7"), parse_count("10_000_000"), parse_count("10M"), parse_count("2.5k")
    (10000000, 10000000, 10000000, 2500)
    """
    raw = text.strip().replace("_", "").replace(",", "")
    m = re.fullmatch(r"(\d+(?:\.\d*)?(?:[eE]\+?\d+)?)\s*([kKmMgGbBtT]?)", raw)
    if m is None:
        raise ValidationError(f"expected a whole number such as 1e7, 10_000_000 or 10M, got {text!r}", field=field)
    mantissa = Decimal(m.group(1))
    if mantissa.adjusted() > 15 or (number := mantissa * _SUFFIX[m.group(2).lower()]) > _LARGEST:
        raise ValidationError(f"expected at most {_LARGEST:.0e}, got {text!r}", field=field)
    if number != number.to_integral_value():
        raise ValidationError(f"expected a whole number, got {text!r} (= {number:f})", field=field)
    value = int(number)
    if value < minimum:
        raise ValidationError(f"expected a number >= {minimum}, got {text!r}", field=field)
    return value


def add_commands(group: Any) -> None:
    """Add ``synth`` to the ``mlscale data`` subcommands."""
    p = group.add_parser(
        "synth",
        help="write a synthetic interaction log of any size (1e3..1e9 rows), shaped like a real one",
        description="Generate a seeded, deterministic interaction log (user, item, rating, timestamp) "
        "whose user activity, item popularity, ratings and times follow a profile fitted from real data "
        "(default: MovieLens-100k), with latent genres a recommender can learn. Rows stream to disk in "
        "chunks with constant memory. Users and items default to growing with --rows "
        "(users ~ rows^0.9, items ~ rows^0.6 from the profile's data set).",
    )
    p.add_argument("--rows", required=True, help="number of rows: 1e7, 10_000_000 or 10M")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="PATH",
        help="output: a folder of part-NNNNN.parquet files, or a .csv / .csv.gz file",
    )
    p.add_argument(
        "--format",
        choices=_FORMATS,
        default=None,
        help="output format (default: from --out: .csv -> csv, .csv.gz/.gz -> csv.gz, else parquet)",
    )
    p.add_argument("--seed", default="0", help="random seed, a whole number >= 0 (default 0)")
    p.add_argument("--users", default=None, help="number of users (default: scaled from the profile)")
    p.add_argument("--items", default=None, help="number of items (default: scaled from the profile)")
    p.add_argument(
        "--like",
        default=None,
        metavar="DATASET|PROFILE.json",
        help="shape the log like this catalogue data set (fitted now) or saved profile "
        "(default: the built-in MovieLens-100k profile)",
    )
    p.add_argument(
        "--save-profile", type=Path, default=None, metavar="FILE", help="also write the profile used as JSON"
    )
    p.add_argument("--chunk-rows", default="1M", help="rows per batch written (default 1M)")
    p.add_argument("--rows-per-file", default="10M", help="Parquet rows per part file (default 10M)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common.add_data_dir_arg(p)
    p.set_defaults(handler=_synth)


def _output_format(args: argparse.Namespace) -> str:
    if args.format is not None:
        return str(args.format)
    name = args.out.name.lower()
    if name.endswith((".csv.gz", ".gz")):
        return "csv.gz"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    return "parquet"


def _profile_from(like: str | None, args: argparse.Namespace) -> Any:
    from mlscale.apps.recommend.profile import InteractionProfile, default_profile

    if like is None:
        return default_profile()
    path = Path(like)
    if like.lower().endswith(".json") or path.is_file():
        return InteractionProfile.load(path)
    # A catalogue name: imported here so this command works without the catalogue.
    from mlscale.data.catalogue import get_dataset

    table = get_dataset(like).read_interactions(_common.data_dir(args))
    return InteractionProfile.fit(table, name=like)


def _synth(args: argparse.Namespace) -> int:
    from mlscale.apps.recommend.synthetic import default_sizes, generate
    from mlscale.data.writers import write_csv, write_parquet

    rows = parse_count(args.rows, field="--rows")
    seed = parse_count(args.seed, field="--seed", minimum=0)
    users = parse_count(args.users, field="--users") if args.users is not None else None
    items = parse_count(args.items, field="--items") if args.items is not None else None
    chunk_rows = parse_count(args.chunk_rows, field="--chunk-rows")
    rows_per_file = parse_count(args.rows_per_file, field="--rows-per-file")
    fmt = _output_format(args)
    out: Path = args.out
    if out.exists() and not args.overwrite:
        raise ValidationError(f"{out} already exists", field="--out", hint="pass --overwrite or choose another path")
    if not out.parent.is_dir():
        raise ValidationError(f"folder {out.parent} does not exist", field="--out")

    if args.save_profile is not None and not args.save_profile.parent.is_dir():
        raise ValidationError(f"folder {args.save_profile.parent} does not exist", field="--save-profile")
    profile = _profile_from(args.like, args)
    if args.save_profile is not None:
        profile.save(args.save_profile)
    default_users, default_items = default_sizes(profile, rows)
    n_users = users if users is not None else default_users
    n_items = items if items is not None else default_items
    start = time.perf_counter()
    batches = generate(profile, rows, seed=seed, users=n_users, items=n_items, chunk_rows=chunk_rows)
    progress = not args.quiet and sys.stderr.isatty()
    if fmt == "parquet":
        files = write_parquet(
            batches, out, rows_per_file=rows_per_file, overwrite=args.overwrite, progress=progress, total=rows
        )
        where = f"{out} ({len(files)} file{'s' if len(files) != 1 else ''})"
    else:
        write_csv(batches, out, gzip=fmt == "csv.gz", overwrite=args.overwrite, progress=progress, total=rows)
        where = str(out)
    seconds = time.perf_counter() - start
    print(
        f"wrote {rows:,} rows ({n_users:,} users, {n_items:,} items, like {profile.name}, seed {seed}) "
        f"to {where} in {seconds:.1f}s ({rows / max(seconds, 1e-9):,.0f} rows/s)"
    )
    return 0
