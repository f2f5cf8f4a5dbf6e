"""The recommender as an mlscale application: what it declares, its local trainer and evaluator, ``mlscale recommend``.

The generic verbs (``train``, ``evaluate``, ``update``, ``precompute``) are
the command line's; this module only says what the recommender brings to
each: params classes, a trainer and an evaluator per engine (Spark's in
:mod:`~mlscale.apps.recommend.spark`), the codec, the predictor and
the load-test scenario.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa

from mlscale.apps.args import add_registry_arg, registry_root
from mlscale.apps.base import Application, Codec, Job, TrainResult, params_to_dict
from mlscale.apps.recommend import ann
from mlscale.apps.recommend._artifact import APP, CODEC, from_artifact
from mlscale.apps.recommend.defaults import auto_model
from mlscale.apps.recommend.evaluate import EvaluationReport, SplitMethod, evaluate_fit
from mlscale.apps.recommend.ingest import ingest_matrix
from mlscale.apps.recommend.itemitem import DEFAULT_ITEM_ITEM_BUDGET, EaseRecommender, KnnRecommender
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.apps.recommend.model import ImplicitRecommender, Recommendations
from mlscale.apps.recommend.params import FAMILIES
from mlscale.apps.recommend.protocols import FitFn, ProtocolReport, evaluate_protocol
from mlscale.apps.recommend.reader_args import add_reader_args, stream_options
from mlscale.apps.recommend.tune import DEFAULT_FAMILIES, TuneResult, tune
from mlscale.apps.recommend.tune import FAMILIES as TUNE_FAMILIES
from mlscale.data.ingest import DEFAULT_MEMORY_BUDGET, parse_size
from mlscale.data.sources import InteractionStream, open_interactions
from mlscale.engines import Engine
from mlscale.errors import ValidationError
from mlscale.registry import LoadedModel, open_store

if TYPE_CHECKING:
    from mlscale.loadtest.scenario import Scenario
    from mlscale.serve.predictor import Predictor

__all__ = [
    "LOCAL_EVALUATOR",
    "LOCAL_TRAINER",
    "LOCAL_TUNER",
    "RecommendApp",
    "fitter",
    "print_report",
    "recommender",
    "search",
]

_HERE = "mlscale.apps.recommend"


def recommender(params: Any, threads: int) -> ImplicitRecommender:
    """An unfitted recommender of a named family (not ``auto``: it is chosen from the data, see :func:`fitter`)."""
    values = params_to_dict(params)
    if params.family == "ease":
        return EaseRecommender(threads=threads, **values)
    if params.family == "knn":
        return KnnRecommender(threads=threads, **values)
    if params.family not in ("als", "bpr"):
        raise ValidationError(f"{params.family!r} is chosen from the data; it has no model of its own", field="model")
    return ImplicitRecommender(model=params.family, threads=threads, **values)


def fitter(params: Any, threads: int) -> FitFn:
    """``fit(training table, its matrix) -> fitted model`` for these params; ``auto`` runs :func:`auto_model`."""
    if params.family == "auto":

        def fit_auto(table: pa.Table, matrix: InteractionMatrix) -> ImplicitRecommender:
            return auto_model(table, matrix, threads=threads, memory_budget=params.memory_budget, seed=params.seed)[0]

        return fit_auto
    return lambda _table, matrix: recommender(params, threads).fit(matrix)


def _families(job: Job, family: str | None = None) -> tuple[str, ...]:
    text = job.option("families")
    if text:
        return tuple(t for t in (s.strip() for s in str(text).split(",")) if t)
    # `train --tune --model als` (model_family: the --model flag's dest): search ALS only; else the default families.
    return (family,) if family and family != "auto" and job.option("model_family") else DEFAULT_FAMILIES


def search(
    table: pa.Table, job: Job, threads: int, *, seed: int, family: str | None = None, budget: int | None = None
) -> TuneResult:
    """The search ``mlscale tune`` and ``train --tune`` run, with the job's budget (trials, time, storage).

    ``budget``: bytes an item-item model may take (EASE / kNN trials are left out over it).
    """
    return tune(
        table,
        families=_families(job, family),
        trials=job.options.get("trials"),
        timeout=job.options.get("time"),
        seed=seed,
        storage=job.option("storage"),
        threads=threads,
        progress=not job.option("quiet") and sys.stderr.isatty(),
        memory_budget=DEFAULT_ITEM_ITEM_BUDGET if budget is None else int(budget),
    )


def default_split(table: pa.Table) -> SplitMethod:
    """``time`` when the data has timestamps, else ``random``."""
    has_time = table.column("timestamp").null_count < table.num_rows
    return "time" if has_time else "random"


def print_report(job: Job, engine: Engine, report: EvaluationReport) -> int:
    """What ``mlscale evaluate recommend`` prints and writes, whichever engine measured it."""
    print(f"data: {job.data} (engine {engine.name})")
    print(report.table())
    out: Path | None = job.option("json")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"data": job.data, **report.as_dict()}, indent=2) + "\n")
        print(f"report: {out}")
    return 0


def _stream(job: Job) -> InteractionStream:
    return open_interactions(job.data, job.data_dir, **stream_options(job.options))


class LocalTrainer:
    """Ingest to a CSR matrix with bounded memory, fit with ``implicit`` in this process."""

    param_defaults: Mapping[str, Any] = {}

    def fit(self, engine: Engine, job: Job, params: Any) -> TrainResult:
        ann.check_family(params.family, job.options)  # before the training it would waste
        budget = parse_size(job.option("memory_budget", f"{DEFAULT_MEMORY_BUDGET >> 20}M"))
        stream = _stream(job)
        tuning, auto = bool(job.option("tune")), params.family == "auto"
        start = time.perf_counter()
        # Evaluating, the default's choice and a search need the rows in memory anyway: read the file once
        # and build the matrix from them (reading it twice would also count its bad rows twice).
        table = stream.read_all() if job.option("evaluate") or tuning or auto else None
        matrix = ingest_matrix(stream if table is None else table.to_batches(), memory_budget=budget)
        ingest_s = time.perf_counter() - start
        print(
            f"data: {matrix.shape[0]:,} users x {matrix.shape[1]:,} items, {matrix.nnz:,} interactions "
            f"({ingest_s:.1f}s)" + (f"; {stream.bad_rows:,} bad rows skipped" if stream.bad_rows else "")
        )
        extra: dict[str, Any] = {"data": job.data, "bad_rows": stream.bad_rows}
        fit = fitter(params, engine.threads)
        start = time.perf_counter()
        if tuning:
            assert table is not None
            result = search(
                table,
                job,
                engine.threads,
                seed=params.seed,
                family=params.family,
                budget=getattr(params, "memory_budget", None),
            )
            print(result.table())
            extra["tuning"] = result.as_dict()

            def fit_tuned(_table: pa.Table, m: InteractionMatrix) -> ImplicitRecommender:
                return result.model(threads=engine.threads).fit(m)

            fit = fit_tuned
            model = fit_tuned(table, matrix)
        elif auto:
            assert table is not None
            model, info = auto_model(
                table, matrix, threads=engine.threads, memory_budget=params.memory_budget, seed=params.seed
            )
            print(f"default model: {info['rule']}")
            extra["default_choice"] = info
        else:
            model = recommender(params, engine.threads)
            model.fit(matrix, progress=not job.option("quiet") and sys.stderr.isatty())
        took = time.perf_counter() - start
        metrics = {"train_seconds": round(took, 3), "ingest_seconds": round(ingest_s, 3)}
        if table is not None and job.option("evaluate"):
            # The same choice again on the split's training part only: the test rows never steer it.
            report = evaluate_fit(table, fit, split=default_split(table))
            print(report.table())
            metrics.update(report.metrics())
        ann.index_model(model, job.options, quiet=bool(job.option("quiet")))  # factor models only
        return TrainResult(
            model,
            metrics,
            matrix.fingerprint(),
            extra=extra,
            summary=f"trained {model.model} in {took:.1f}s",
        )


class LocalEvaluator:
    """Split in memory, fit, and score the model and popularity with the same metrics."""

    param_defaults: Mapping[str, Any] = {}

    def evaluate(self, engine: Engine, job: Job, params: Any) -> int:
        fit = fitter(params, engine.threads)
        if job.option("protocol"):
            if job.option("split"):
                raise ValidationError("give --protocol or --split, not both", field="--protocol")
            proto = evaluate_protocol(
                job.data,
                job.option("protocol"),
                fit,
                data_dir=job.data_dir,
                k=job.option("k", 10),
                seed=params.seed,
                on_fold=lambda fold, r: print(
                    f"{fold}: NDCG@{r.k} {r.model['ndcg']:.4f} (popularity {r.popularity['ndcg']:.4f})", flush=True
                ),
            )
            return print_protocol_report(job, engine, params.family, proto)
        table = _stream(job).read_all()
        report = evaluate_fit(
            table,
            fit,
            split=job.option("split") or default_split(table),
            k=job.option("k", 10),
            n_test=job.option("n_test", 10),
            test_fraction=job.option("test_fraction", 0.2),
            seed=params.seed,
        )
        return print_report(job, engine, report)


class LocalTuner:
    """``mlscale tune recommend``: the search in this process; prints the trials and the choice."""

    def tune(self, engine: Engine, job: Job) -> int:
        table = _stream(job).read_all()
        result = search(table, job, engine.threads, seed=int(job.option("seed", 0)))
        print(f"data: {job.data} (engine {engine.name}); validation: {result.validation}")
        print(result.table())
        out: Path | None = job.option("json")
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"data": job.data, **result.as_dict()}, indent=2) + "\n")
            print(f"report: {out}")
        return 0


def print_protocol_report(job: Job, engine: Engine, family: str, report: ProtocolReport) -> int:
    """What ``mlscale evaluate recommend --protocol`` prints and writes."""
    print(f"data: {job.data} (engine {engine.name}, model {family})")
    print(report.table())
    out: Path | None = job.option("json")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"model": family, **report.as_dict()}, indent=2) + "\n")
        print(f"report: {out}")
    return 0


LOCAL_TRAINER = LocalTrainer()
LOCAL_EVALUATOR = LocalEvaluator()
LOCAL_TUNER = LocalTuner()


def _ids(text: str) -> list[str]:
    return [t for t in (s.strip() for s in text.replace(",", " ").split()) if t]


class RecommendApp(Application):
    """Implicit-feedback recommendations (auto: EASE or ALS; ALS, BPR, EASE, item-kNN)."""

    name: ClassVar[str] = APP
    summary: ClassVar[str] = "implicit-feedback recommendations (auto, ALS, BPR, EASE, item-kNN)"
    params: ClassVar[Mapping[str, type[Any]]] = FAMILIES
    trainers: ClassVar[Mapping[str, str]] = {
        "local": f"{_HERE}.app:LOCAL_TRAINER",
        "spark": f"{_HERE}.spark:TRAINER",
    }
    evaluators: ClassVar[Mapping[str, str]] = {
        "local": f"{_HERE}.app:LOCAL_EVALUATOR",
        "spark": f"{_HERE}.spark:EVALUATOR",
    }
    precomputers: ClassVar[Mapping[str, str]] = {
        "local": f"{_HERE}.precompute:PRECOMPUTER",
        "spark": f"{_HERE}.spark:PRECOMPUTER",
    }
    tuners: ClassVar[Mapping[str, str]] = {"local": f"{_HERE}.app:LOCAL_TUNER"}
    updater: ClassVar[str | None] = f"{_HERE}.update:UPDATER"
    requires: ClassVar[tuple[str, ...]] = ("implicit", "scipy", "threadpoolctl")
    data_help: ClassVar[str] = "catalogue name, file or folder of interactions"

    @property
    def codec(self) -> Codec:
        return CODEC

    def family_of(self, params: Mapping[str, Any]) -> str:
        return str(params.get("model", "als"))

    # -- the app's own flags of the generic verbs ---------------------------------------------------

    def add_arguments(self, verb: str, parser: argparse.ArgumentParser) -> None:
        if verb == "train":
            parser.add_argument(
                "--memory-budget",
                default=f"{DEFAULT_MEMORY_BUDGET >> 20}M",
                help="ingest working memory (default: 256M)",
            )
            parser.add_argument(
                "--evaluate",
                action="store_true",
                help="also measure quality on a held-out split and store the metrics",
            )
            parser.add_argument("--quiet", action="store_true", help="no progress bar")
            ann.add_flags(parser)
            add_reader_args(parser)
        elif verb == "evaluate":
            parser.add_argument("--data", required=True, help="catalogue name, file or folder of interactions")
            parser.add_argument(
                "--split",
                choices=("time", "random"),
                default=None,
                help="time: each user's last --n-test held out (default when the data has "
                "timestamps); random: --test-fraction held out",
            )
            parser.add_argument(
                "--protocol",
                default=None,
                help="a standard protocol instead of --split, mean and spread over its folds: u1..u5, ua, ub, "
                "u1-u5, ua-ub (MovieLens-100k's official folds), last-N, random-F[-xR]",
            )
            parser.add_argument("--n-test", type=int, default=10, help="held-out interactions per user (time)")
            parser.add_argument("--test-fraction", type=float, default=0.2, help="held-out share (random)")
            parser.add_argument("--k", type=int, default=10, help="metrics at k (default: 10)")
            parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the report as JSON")
            add_reader_args(parser)
        elif verb == "tune":
            parser.add_argument(
                "--families",
                default=None,
                help=f"comma-separated families to search among {', '.join(TUNE_FAMILIES)} "
                f"(default: {','.join(DEFAULT_FAMILIES)})",
            )
            parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the trials as JSON")
            parser.add_argument("--quiet", action="store_true", help="no progress bar")
            add_reader_args(parser)
        elif verb == "update":
            ann.add_flags(parser, inherit=True)
            add_reader_args(parser)
        elif verb == "precompute":
            parser.add_argument("--k", type=int, default=100, help="items per user (default: 100)")
            parser.add_argument("--chunk-users", type=int, default=10_000, help="users scored per chunk")
            parser.add_argument("--include-seen", action="store_true", help="do not drop seen items")

    def add_commands(self, sub: Any) -> None:
        p = sub.add_parser(
            "recommend",
            help="recommend items to users, or items similar to items",
            description="Top-k items for users from a registry model. Unknown users are "
            "folded in from --recent-items, else get the most popular items.",
        )
        p.add_argument("model_name", metavar="MODEL", help="NAME or recommend/NAME[@alias|version]")
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--users", help="user ids, comma or space separated")
        who.add_argument("--similar-to", metavar="ITEMS", help="item ids: show similar items instead")
        p.add_argument("--k", type=int, default=10, help="items per user (default: 10)")
        p.add_argument("--recent-items", metavar="ITEMS", help="items of an unknown user (cold start)")
        p.add_argument("--include", metavar="ITEMS", help="only these items are candidates")
        p.add_argument("--exclude", metavar="ITEMS", help="never recommend these items")
        p.add_argument("--include-seen", action="store_true", help="allow items the user already has")
        p.add_argument("--json", action="store_true", help="JSON output")
        add_registry_arg(p)
        p.set_defaults(handler=self._recommend_cmd)

    # -- serving and load tests ----------------------------------------------------------------------

    def predictor(self, model: LoadedModel) -> Predictor:
        """Serve a recommender version (``mlscale serve``): micro-batched, arrays memory-mapped."""
        from mlscale.apps.recommend.predictor import RecommendPredictor

        recommender = from_artifact(model)
        recommender.threads = 1  # a server worker is one thread; the workers are the parallelism
        return RecommendPredictor(recommender, model_ref=model.ref.model, version=model.manifest.version)

    def scenario(self, mix: dict[str, Any], *, data: str | None, data_dir: Path, model: str) -> Scenario:
        from mlscale.apps.recommend.scenario import RecommendScenario

        if data is None:
            raise ValidationError("the recommend scenario samples users from data: pass --data", field="--data")
        return RecommendScenario(data, data_dir, model, mix)

    def example_data(self, folder: Path) -> tuple[str, dict[str, Any]]:
        """200 users in 5 taste groups of 10 items each (a CSV with a header)."""
        rng = np.random.default_rng(0)
        users = rng.integers(0, 200, 4000)
        items = (users % 5) * 10 + rng.integers(0, 10, 4000)
        path = folder / "interactions.csv"
        path.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in zip(users, items, strict=True)))
        return str(path), {"factors": "8", "iterations": "3"}

    # -- mlscale recommend -----------------------------------------------------------------------------

    def _recommend_cmd(self, args: argparse.Namespace) -> int:
        store = open_store(registry_root(args))
        model = from_artifact(store.load(self.model_ref(args.model_name)))
        if args.similar_to:
            items = _ids(args.similar_to)
            recs = model.similar_items(items, k=args.k)
            return _print_recs(items, recs, args.json, "item")
        users = _ids(args.users)
        if not users:
            raise ValidationError("expected at least one user id", field="--users")
        recent = {u: _ids(args.recent_items) for u in users} if args.recent_items else None
        recs = model.recommend(
            users,
            k=args.k,
            exclude_seen=not args.include_seen,
            include=_ids(args.include) if args.include else None,
            exclude=_ids(args.exclude) if args.exclude else None,
            recent_items=recent,
        )
        return _print_recs(users, recs, args.json, "user")


def _print_recs(keys: list[str], recs: Recommendations, as_json: bool, label: str) -> int:
    rows = recs.to_lists()
    if as_json:
        out = [
            {label: k, "strategy": str(s), "items": [{"item": i, "score": round(sc, 6)} for i, sc in r]}
            for k, s, r in zip(keys, recs.strategy, rows, strict=True)
        ]
        print(json.dumps(out, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
        return 0
    for key, strategy, row in zip(keys, recs.strategy, rows, strict=True):
        items = ", ".join(f"{i} ({sc:.3f})" for i, sc in row) or "(nothing)"
        print(f"{label} {key} [{strategy}]: {items}")
    return 0
