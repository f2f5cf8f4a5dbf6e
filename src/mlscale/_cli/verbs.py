"""The generic verbs ``mlscale train|evaluate|update|precompute APP ...``, answered by applications."""

from __future__ import annotations

import argparse
from typing import Any

from mlscale.apps import VERBS, application_names, get_application

__all__ = ["add_parser"]

_HELP = {
    "train": "train a model and publish it to the registry",
    "evaluate": "measure a model offline against a baseline",
    "update": "fold new data into a model without a full retrain (new registry version)",
    "precompute": "score every user/entity in batch to Parquet",
}


def add_parser(sub: Any) -> None:
    for verb in VERBS:
        p = sub.add_parser(verb, help=_HELP[verb], description=_HELP[verb].capitalize() + ".")
        apps = p.add_subparsers(dest="app", metavar="APP", required=True)
        for name in application_names():
            app = get_application(name)
            if verb not in app.verbs:
                continue
            ap = apps.add_parser(name, help=app.summary, description=f"{_HELP[verb].capitalize()}: {app.summary}")
            app.add_arguments(verb, ap)
            ap.set_defaults(handler=_handler(verb))
    for name in application_names():
        get_application(name).add_commands(sub)


def _handler(verb: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        return get_application(args.app).run(verb, args)

    return run
