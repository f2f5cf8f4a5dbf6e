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
from mlscale.apps.recommend._artifact import APP, CODEC, from_artifact
from mlscale.apps.recommend.evaluate import EvaluationReport, SplitMethod, evaluate_recommender
from mlscale.apps.recommend.ingest import ingest_matrix
from mlscale.apps.recommend.model import ImplicitRecommender, Recommendations
from mlscale.apps.recommend.params import AlsParams, BprParams
from mlscale.apps.recommend.reader_args import add_reader_args, stream_options
from mlscale.data.ingest import DEFAULT_MEMORY_BUDGET, parse_size
from mlscale.data.sources import InteractionStream, open_interactions
from mlscale.engines import Engine
from mlscale.errors import ValidationError
from mlscale.registry import LoadedModel, open_store

if TYPE_CHECKING:
    from mlscale.loadtest.scenario import Scenario
    from mlscale.serve.predictor import Predictor

__all__ = ["LOCAL_EVALUATOR", "LOCAL_TRAINER", "RecommendApp", "print_report", "recommender"]

_HERE = "mlscale.apps.recommend"


def recommender(params: AlsParams | BprParams, threads: int) -> ImplicitRecommender:
    """An unfitted recommender with these params, training on ``threads`` cores."""
    return ImplicitRecommender(model=params.family, threads=threads, **params_to_dict(params))  # type: ignore[arg-type]


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

    def fit(self, engine: Engine, job: Job, params: AlsParams | BprParams) -> TrainResult:
        budget = parse_size(job.option("memory_budget", f"{DEFAULT_MEMORY_BUDGET >> 20}M"))
        stream = _stream(job)
        start = time.perf_counter()
        # Evaluating needs the rows in memory anyway: read the file once and build the matrix from them
        # (reading it twice would also count its bad rows twice).
        table = stream.read_all() if job.option("evaluate") else None
        matrix = ingest_matrix(stream if table is None else table.to_batches(), memory_budget=budget)
        ingest_s = time.perf_counter() - start
        print(
            f"data: {matrix.shape[0]:,} users x {matrix.shape[1]:,} items, {matrix.nnz:,} interactions "
            f"({ingest_s:.1f}s)" + (f"; {stream.bad_rows:,} bad rows skipped" if stream.bad_rows else "")
        )
        model = recommender(params, engine.threads)
        start = time.perf_counter()
        model.fit(matrix, progress=not job.option("quiet") and sys.stderr.isatty())
        took = time.perf_counter() - start
        metrics = {"train_seconds": round(took, 3), "ingest_seconds": round(ingest_s, 3)}
        if table is not None:
            report = evaluate_recommender(table, recommender(params, engine.threads), split=default_split(table))
            print(report.table())
            metrics.update(report.metrics())
        return TrainResult(
            model,
            metrics,
            matrix.fingerprint(),
            extra={"data": job.data, "bad_rows": stream.bad_rows},
            summary=f"trained {model.model} in {took:.1f}s",
        )


class LocalEvaluator:
    """Split in memory, fit, and score the model and popularity with the same metrics."""

    param_defaults: Mapping[str, Any] = {}

    def evaluate(self, engine: Engine, job: Job, params: AlsParams | BprParams) -> int:
        table = _stream(job).read_all()
        report = evaluate_recommender(
            table,
            recommender(params, engine.threads),
            split=job.option("split") or default_split(table),
            k=job.option("k", 10),
            n_test=job.option("n_test", 10),
            test_fraction=job.option("test_fraction", 0.2),
            seed=params.seed,
        )
        return print_report(job, engine, report)


LOCAL_TRAINER = LocalTrainer()
LOCAL_EVALUATOR = LocalEvaluator()


def _ids(text: str) -> list[str]:
    return [t for t in (s.strip() for s in text.replace(",", " ").split()) if t]


class RecommendApp(Application):
    """Implicit-feedback recommendations (ALS / BPR)."""

    name: ClassVar[str] = APP
    summary: ClassVar[str] = "implicit-feedback recommendations (ALS, BPR)"
    params: ClassVar[Mapping[str, type[Any]]] = {"als": AlsParams, "bpr": BprParams}
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
            parser.add_argument("--n-test", type=int, default=10, help="held-out interactions per user (time)")
            parser.add_argument("--test-fraction", type=float, default=0.2, help="held-out share (random)")
            parser.add_argument("--k", type=int, default=10, help="metrics at k (default: 10)")
            parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the report as JSON")
            add_reader_args(parser)
        elif verb == "update":
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
