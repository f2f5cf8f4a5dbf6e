"""The generic verbs ``mlscale train|evaluate|update|precompute|tune APP ...``, written once for every application.

Each verb adds the flags every application shares (data, registry, engine,
the params flags generated from the app's params classes), lets the app add
its own (:meth:`Application.add_arguments`), then runs the one pipeline: pick
the engine, call the app's trainer / evaluator / updater / precomputer through
the contract, publish, promote.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlscale._cli import _common
from mlscale._cli.params import add_params_arguments, params_from_args
from mlscale.apps import VERBS, Application, application_names, get_application
from mlscale.apps.base import Job, load_object, publish_model
from mlscale.engines import ENGINES, Engine, get_engine
from mlscale.errors import ConfigError, ValidationError
from mlscale.registry import ModelRef, Store, open_store

__all__ = ["DEFAULT_TRIALS", "add_engine_args", "add_parser", "open_engine", "parse_duration"]

_HELP = {
    "train": "train a model and publish it to the registry",
    "evaluate": "measure a model offline against a baseline",
    "update": "fold new data into a model without a full retrain (new registry version)",
    "precompute": "score every user/entity in batch to Parquet",
    "tune": "search model parameters on a validation split of the training data",
}

#: Trials of a search when neither --trials nor --time is given.
DEFAULT_TRIALS = 20

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | None) -> float | None:
    """``90``, ``90s``, ``10m``, ``1.5h`` -> seconds (None stays None); a ValidationError otherwise.

    >>> parse_duration("10m"), parse_duration("45"), parse_duration(None)
    (600.0, 45.0, None)
    """
    if text is None:
        return None
    raw = text.strip().lower()
    unit = _UNITS.get(raw[-1:])
    try:
        return float(raw[:-1] if unit else raw) * (unit or 1.0)
    except ValueError:
        raise ValidationError(f"expected a duration such as 90s, 10m or 1h, got {text!r}", field="--time") from None


def _add_budget_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search budget")
    g.add_argument(
        "--trials", type=int, default=None, help=f"trials to run (default: {DEFAULT_TRIALS} unless --time is given)"
    )
    g.add_argument("--time", default=None, metavar="DURATION", help="stop starting trials after this (90s, 10m, 1h)")
    g.add_argument(
        "--storage", type=Path, default=None, metavar="FILE", help="study file: a rerun resumes it (trials count)"
    )


def _budget(args: argparse.Namespace) -> None:
    """Parse ``--time`` to seconds and apply the default trial count, in place (what the tuner reads)."""
    args.time = parse_duration(args.time)
    if args.trials is None and args.time is None:
        args.trials = DEFAULT_TRIALS


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """``--engine``, ``--threads``, ``--spark-master``, ``--spark-conf`` (defined once, here)."""
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=ENGINES, default="local", help="where it runs (default: local)")
    g.add_argument(
        "--threads", type=int, default=0, help="local engine threads (default: $MLSCALE_THREADS, else all cores)"
    )
    g.add_argument("--spark-master", default=None, help="Spark master URL (default: local[*])")
    g.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE", help="Spark setting (repeatable)")


def open_engine(args: argparse.Namespace) -> Engine:
    """The engine the flags of :func:`add_engine_args` ask for."""
    conf = {}
    for item in args.spark_conf:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"expected KEY=VALUE, got {item!r}", field="--spark-conf")
        conf[key] = value
    return get_engine(args.engine, threads=args.threads, master=args.spark_master, conf=conf)


def _add_verb_arguments(verb: str, app: Application, p: argparse.ArgumentParser) -> None:
    if verb == "train":
        p.add_argument("--data", required=True, help=app.data_help)
        p.add_argument("--name", required=True, help="model name in the registry")
        add_params_arguments(p, app.params)
        add_engine_args(p)
        if "tune" in app.verbs:
            p.add_argument(
                "--tune", action="store_true", help="search the parameters first (as `mlscale tune`) and train the best"
            )
            _add_budget_args(p)
    elif verb == "tune":
        p.add_argument("--data", required=True, help=app.data_help)
        p.add_argument("--seed", type=int, default=0, help="seed of the sampler and the validation split")
        _add_budget_args(p)
        add_engine_args(p)
    elif verb == "evaluate":
        add_params_arguments(p, app.params, only=app.evaluate_param_fields)
        add_engine_args(p)
    elif verb == "update":
        p.add_argument("model_name", metavar="NAME", help=f"model to update: NAME or {app.name}/NAME@alias")
        p.add_argument("--data", required=True, help="file or folder of new data")
        p.add_argument(
            "--promote", metavar="ALIAS", default=None, help="point ALIAS (e.g. production) at the new version"
        )
    elif verb == "precompute":
        p.add_argument("--model", required=True, help=f"NAME or {app.name}/NAME[@alias|version]")
        p.add_argument("--out", type=Path, required=True, help="Parquet file to write")
        add_engine_args(p)
    _common.add_data_dir_arg(p)
    _common.add_registry_arg(p)
    app.add_arguments(verb, p)


def _installed() -> tuple[dict[str, Application], dict[str, ConfigError]]:
    """The applications that load, and why the others do not (a missing extra: its pip line)."""
    apps: dict[str, Application] = {}
    missing: dict[str, ConfigError] = {}
    for name in application_names():
        try:
            apps[name] = get_application(name)
        except ConfigError as err:
            missing[name] = err
    return apps, missing


def _unavailable(err: ConfigError) -> Any:
    def run(args: argparse.Namespace) -> int:
        raise err

    return run


def add_parser(sub: Any) -> None:
    # An application whose extra is not installed still appears, and using it says the pip line;
    # the rest of the command line keeps working without it.
    apps, missing = _installed()
    for verb in VERBS:
        p = sub.add_parser(verb, help=_HELP[verb], description=_HELP[verb].capitalize() + ".")
        group = p.add_subparsers(dest="app", metavar="APP", required=True)
        for name, app in apps.items():
            if verb not in app.verbs:
                continue
            ap = group.add_parser(name, help=app.summary, description=f"{_HELP[verb].capitalize()}: {app.summary}")
            _add_verb_arguments(verb, app, ap)
            ap.set_defaults(handler=_RUN[verb])
        for name, err in missing.items():
            # No prefix characters: every flag the user gave is taken as a plain word, so any command line
            # reaches the handler, which says what to install.
            ap = group.add_parser(name, help=f"(not installed: {err.hint})", add_help=False, prefix_chars="\x00")
            ap.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            ap.set_defaults(handler=_unavailable(err))
    for app in apps.values():
        app.add_commands(sub)


def _store(args: argparse.Namespace) -> Store:
    return open_store(_common.registry_root(args))


def _job(args: argparse.Namespace, store: Store | None, name: str = "") -> Job:
    return Job(
        data=str(getattr(args, "data", "") or ""),
        data_dir=_common.data_dir(args),
        store=store,
        name=name,
        options=vars(args),
    )


def _train(args: argparse.Namespace) -> int:
    app = get_application(args.app)
    ModelRef.parse(f"{app.name}/{args.name}")  # a bad name fails now, not after training
    trainer = app.implementation("train", args.engine)
    _, params = params_from_args(app.params, args, trainer.param_defaults)
    if getattr(args, "tune", False):
        _budget(args)
    store = _store(args)
    with open_engine(args) as engine:
        result = trainer.fit(engine, _job(args, store, args.name), params)
        manifest = publish_model(
            store,
            app.name,
            app.codec,
            args.name,
            result.model,
            metrics=result.metrics,
            engine=engine.name,
            data_fingerprint=result.data_fingerprint,
            extra={**result.extra, "engine_info": engine.describe()},
        )
    print(f"{result.summary}; published {manifest.ref} to {store.location}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    app = get_application(args.app)
    evaluator = app.implementation("evaluate", args.engine)
    _, params = params_from_args(app.params, args, evaluator.param_defaults)
    with open_engine(args) as engine:
        status: int = evaluator.evaluate(engine, _job(args, None), params)
    return status


def _update(args: argparse.Namespace) -> int:
    app = get_application(args.app)
    assert app.updater is not None  # the verb is only offered to apps with an updater
    store = _store(args)
    loaded = store.load(app.model_ref(args.model_name))
    model = app.codec.from_artifact(loaded)
    old = loaded.manifest
    result = load_object(app.updater).update(model, old, _job(args, store, old.name))
    manifest = publish_model(
        store,
        app.name,
        app.codec,
        old.name,
        result.model,
        metrics=result.metrics,
        engine="local",
        data_fingerprint=result.data_fingerprint,
        extra=result.extra,
    )
    print(result.summary)
    print(f"published {manifest.ref}")
    if args.promote:
        store.promote(manifest.ref, args.promote)
        print(f"{app.name}/{old.name}@{args.promote} -> version {manifest.version}")
    return 0


def _precompute(args: argparse.Namespace) -> int:
    app = get_application(args.app)
    store = _store(args)
    model = app.codec.from_artifact(store.load(app.model_ref(args.model)))
    precomputer = app.implementation("precompute", args.engine)
    with open_engine(args) as engine:
        print(precomputer.precompute(engine, model, _job(args, store)))
    return 0


def _tune(args: argparse.Namespace) -> int:
    app = get_application(args.app)
    tuner = app.implementation("tune", args.engine)
    _budget(args)
    with open_engine(args) as engine:
        status: int = tuner.tune(engine, _job(args, None))
    return status


_RUN = {"train": _train, "evaluate": _evaluate, "update": _update, "precompute": _precompute, "tune": _tune}
