"""``mlscale models``: list, show, promote and remove published models."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mlscale._cli._common import add_registry_arg, registry_root
from mlscale.errors import ModelNotFoundError
from mlscale.registry import LATEST, FileStore, Manifest, ModelRef, Store, open_store

__all__ = ["add_parser"]

_KEY_METRICS = 3


def add_parser(sub: Any) -> None:
    """Add the ``models`` group and its subcommands to the top-level subparsers."""
    parser = sub.add_parser(
        "models",
        help="list, inspect, promote and remove published models",
        description="Inspect and manage the model registry. "
        "A model reference is APP/NAME (latest version), APP/NAME@ALIAS or APP/NAME@VERSION.",
    )
    group = parser.add_subparsers(dest="models_command", metavar="SUBCOMMAND", required=True)

    p = group.add_parser("list", help="list every model version", description="List every model version.")
    p.add_argument("app", nargs="?", metavar="APP", help="only this application's models")
    p.add_argument("--json", action="store_true", help="print JSON (one object per version) instead of a table")
    add_registry_arg(p)
    p.set_defaults(handler=_list)

    p = group.add_parser(
        "show",
        help="print a version's manifest and the model's aliases",
        description="Print the manifest of the version REF names, with the model's aliases, as JSON.",
    )
    p.add_argument("ref", metavar="REF", help="APP/NAME, APP/NAME@ALIAS or APP/NAME@VERSION")
    p.add_argument("--verify", action="store_true", help="also check every file's SHA-256 (reads every artifact)")
    add_registry_arg(p)
    p.set_defaults(handler=_show)

    p = group.add_parser(
        "promote",
        help="point an alias (default: production) at a version",
        description="Point ALIAS at the version REF resolves to.",
    )
    p.add_argument("ref", metavar="REF", help="APP/NAME (latest), APP/NAME@VERSION or APP/NAME@ALIAS")
    p.add_argument("--alias", default="production", help="alias to move (default: production)")
    add_registry_arg(p)
    p.set_defaults(handler=_promote)

    p = group.add_parser(
        "rm",
        help="remove a version, or a whole model with --all",
        description="Remove the version REF names (APP/NAME@VERSION), or every version with --all.",
    )
    p.add_argument("ref", metavar="REF", help="APP/NAME@VERSION, or APP/NAME with --all")
    p.add_argument("--all", action="store_true", dest="all_versions", help="remove the model with every version")
    p.add_argument(
        "--force",
        action="store_true",
        help="remove even if an alias points to it (the alias is dropped) or its manifest is damaged",
    )
    add_registry_arg(p)
    p.set_defaults(handler=_rm)


def _store(args: argparse.Namespace) -> Store:
    return open_store(registry_root(args))


def _aliases_by_version(store: Store, manifests: list[Manifest]) -> dict[tuple[str, str, int], list[str]]:
    out: dict[tuple[str, str, int], list[str]] = {}
    for app, name in dict.fromkeys((m.app, m.name) for m in manifests):
        for alias, version in store.aliases(app, name).items():
            out.setdefault((app, name, version), []).append(alias)
    return out


def _format_metric(value: float) -> str:
    return f"{value:.4g}"


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    manifests = store.list(args.app)
    aliases = _aliases_by_version(store, manifests)
    if args.json:
        rows = [{**m.to_dict(), "aliases": aliases.get((m.app, m.name, m.version), [])} for m in manifests]
        print(json.dumps(rows, indent=2))
        return 0
    if not manifests:
        where = store.location
        print(f"no models in {where}" if args.app is None else f"no models of app {args.app!r} in {where}")
        return 0
    header = ("APP/NAME", "VERSION", "ALIASES", "ENGINE", "CREATED", "METRICS")
    rows_text = [
        (
            f"{m.app}/{m.name}",
            str(m.version),
            ",".join(aliases.get((m.app, m.name, m.version), [])) or "-",
            m.engine,
            m.created,
            " ".join(f"{k}={_format_metric(v)}" for k, v in list(m.metrics.items())[:_KEY_METRICS]) or "-",
        )
        for m in manifests
    ]
    widths = [max(len(row[i]) for row in (header, *rows_text)) for i in range(len(header) - 1)]
    for row in (header, *rows_text):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
    return 0


def _show(args: argparse.Namespace) -> int:
    store = _store(args)
    ref = ModelRef.parse(args.ref)
    if args.verify:
        loaded = store.load(ref, mmap=True, verify=True)
        manifest = loaded.manifest
        del loaded
    else:
        manifest = store.resolve(ref)
    document = {
        "ref": str(manifest.ref),
        **manifest.to_dict(),
        "aliases": store.aliases(manifest.app, manifest.name),
    }
    if isinstance(store, FileStore):
        document["path"] = str(store.version_dir(manifest.app, manifest.name, manifest.version))
    print(json.dumps(document, indent=2))
    if args.verify:
        print(f"verified: {len(manifest.files)} file(s) match their SHA-256", file=sys.stderr)
    return 0


def _promote(args: argparse.Namespace) -> int:
    store = _store(args)
    ref = ModelRef.parse(args.ref)
    before = store.aliases(ref.app, ref.name).get(args.alias)
    manifest = store.promote(ref, args.alias)
    was = "" if before is None else f" (was version {before})"
    if before == manifest.version:
        was = " (unchanged)"
    print(f"{manifest.app}/{manifest.name}@{args.alias} -> version {manifest.version}{was}")
    return 0


def _rm(args: argparse.Namespace) -> int:
    store = _store(args)
    ref = ModelRef.parse(args.ref)
    removed = store.remove(ref, force=args.force, all_versions=args.all_versions)
    if args.all_versions:
        versions = ", ".join(str(m.version) for m in removed) or "none readable"
        print(f"removed {ref.model} (versions: {versions})")
    else:
        target = str(removed[0].ref) if removed else f"{ref} (damaged manifest)"
        print(f"removed {target}")
    if not args.all_versions:
        try:
            latest = store.current_version(ModelRef(ref.app, ref.name, LATEST))
        except ModelNotFoundError:
            print(f"{ref.model} has no versions left")
        else:
            print(f"{ref.model}@{LATEST} is now version {latest}")
    return 0
