"""``mlscale data synth-model``: publish a recommender of any catalogue size with synthetic factors (no training)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from mlscale._cli import _common
from mlscale._cli.synth import parse_count

__all__ = ["add_command"]


def add_command(group: Any) -> None:
    """Add ``synth-model`` to the ``mlscale data`` subcommands."""
    from mlscale.apps.recommend import ann

    p = group.add_parser(
        "synth-model",
        help="publish a recommender with synthetic factors (1M, 10M items...) for serving and index tests",
        description="Draw a recommender's factors directly (clustered, a power-law spectrum, a Zipf popularity "
        "tail; see mlscale.apps.recommend.synthetic_catalogue), build its approximate index, and publish it: a "
        "servable model of millions of items in seconds to minutes, without training on 100M rows.",
    )
    p.add_argument("--items", required=True, help="catalogue size: 1M, 10M, 50k")
    p.add_argument("--users", default="100k", help="users (default: 100k)")
    p.add_argument("--factors", type=int, default=64, help="factors (default: 64)")
    p.add_argument("--clusters", default=None, help="item topics (default: sqrt(items); 0: one Gaussian)")
    p.add_argument("--seen-per-user", type=float, default=20.0, help="mean seen items per user (default: 20)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--name", required=True, help="model name in the registry (recommend/NAME)")
    p.add_argument("--quiet", action="store_true", help="no index summary")
    ann.add_flags(p)
    _common.add_registry_arg(p)
    p.set_defaults(handler=_synth_model)


def _synth_model(args: argparse.Namespace) -> int:
    from mlscale.apps.recommend import ann, publish_model
    from mlscale.apps.recommend.synthetic_catalogue import SyntheticCatalogue, synthetic_model
    from mlscale.registry import ModelRef, open_store

    ModelRef.parse(f"recommend/{args.name}")  # a bad name fails now, not after the build
    spec = SyntheticCatalogue(
        items=parse_count(args.items, field="--items"),
        users=parse_count(args.users, field="--users"),
        factors=args.factors,
        seen_per_user=args.seen_per_user,
        clusters=None if args.clusters is None else parse_count(args.clusters, field="--clusters", minimum=0),
        seed=args.seed,
    )
    start = time.perf_counter()
    model = synthetic_model(spec)
    drawn = time.perf_counter() - start
    print(f"drew {spec.items:,} items x {spec.users:,} users x {spec.factors} factors in {drawn:.1f}s")
    ann.attach_index(model, ann.params_from_flags(args), quiet=args.quiet)
    store = open_store(_common.registry_root(args))
    manifest = publish_model(
        store,
        args.name,
        model,
        metrics={"synth_seconds": round(drawn, 3)},
        engine="synthetic",
        data_fingerprint=f"synthetic:{spec.items}x{spec.users}x{spec.factors}:seed{spec.seed}",
        extra={"synthetic": {"items": spec.items, "users": spec.users, "factors": spec.factors, "seed": spec.seed}},
    )
    print(f"published {manifest.ref}")
    return 0
