"""The recommender as an mlscale application: train, evaluate, update, precompute, recommend."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa

from mlscale._cli import _common
from mlscale._cli.ingest import add_reader_args, reader_options
from mlscale.apps.base import Application
from mlscale.apps.recommend import ann
from mlscale.apps.recommend._artifact import APP, from_artifact, publish_model
from mlscale.apps.recommend.evaluate import SplitMethod, evaluate_recommender
from mlscale.apps.recommend.model import DEFAULT_REGULARIZATION, ImplicitRecommender, Recommendations
from mlscale.apps.recommend.precompute import precompute
from mlscale.apps.recommend.update import update_model
from mlscale.data.ingest import DEFAULT_MEMORY_BUDGET, ingest_matrix, parse_size
from mlscale.data.matrix import InteractionMatrix
from mlscale.data.sources import InteractionStream, open_interactions
from mlscale.engines import ENGINES, get_engine
from mlscale.engines.spark import SparkEngine
from mlscale.errors import ValidationError
from mlscale.loadtest.scenario import Scenario
from mlscale.registry import LoadedModel, ModelRef, Store, open_store

if TYPE_CHECKING:
    from mlscale.serve.predictor import Predictor

__all__ = ["RecommendApp"]

_DEFAULTS = ImplicitRecommender()


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", dest="model_kind", choices=("als", "bpr"), default="als", help="default: als")
    g.add_argument("--factors", type=int, default=_DEFAULTS.factors, help="latent factors (default: %(default)s)")
    g.add_argument(
        "--regularization",
        type=float,
        default=None,
        help="L2 regularisation (default: ALS 1.0, BPR 0.01; 0.05 on Spark, which scales "
        "it by "
        "each row's interaction count)",
    )
    g.add_argument(
        "--alpha",
        type=float,
        default=_DEFAULTS.alpha,
        help="ALS confidence: C = 1 + alpha * weight (default: %(default)s)",
    )
    g.add_argument(
        "--iterations",
        type=int,
        default=None,
        help=f"training iterations (default: {_DEFAULTS.iterations} for ALS, 100 for BPR)",
    )
    g.add_argument("--learning-rate", type=float, default=_DEFAULTS.learning_rate, help="BPR learning rate")
    g.add_argument(
        "--weighting",
        choices=("bm25", "tfidf", "none"),
        default=_DEFAULTS.weighting,
        help="weighting of the interaction matrix (default: %(default)s)",
    )
    g.add_argument("--bm25-k1", type=float, default=_DEFAULTS.bm25_k1, help=argparse.SUPPRESS)
    g.add_argument("--bm25-b", type=float, default=_DEFAULTS.bm25_b, help=argparse.SUPPRESS)
    g.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=ENGINES, default="local", help="where training runs (default: local)")
    g.add_argument(
        "--threads", type=int, default=0, help="local engine threads (default: $MLSCALE_THREADS, else all cores)"
    )
    g.add_argument("--spark-master", default=None, help="Spark master URL (default: local[*])")
    g.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE", help="Spark setting (repeatable)")


def _regularization(args: argparse.Namespace) -> float:
    if args.regularization is not None:
        return float(args.regularization)
    if getattr(args, "engine", "local") == "spark":
        from mlscale.apps.recommend.train_spark import SPARK_DEFAULT_REGULARIZATION

        return SPARK_DEFAULT_REGULARIZATION
    return DEFAULT_REGULARIZATION[args.model_kind]


def _params(args: argparse.Namespace, threads: int) -> ImplicitRecommender:
    iterations = args.iterations if args.iterations is not None else (100 if args.model_kind == "bpr" else None)
    model = ImplicitRecommender(
        model=args.model_kind,
        factors=args.factors,
        regularization=_regularization(args),
        alpha=args.alpha,
        learning_rate=args.learning_rate,
        weighting=args.weighting,
        bm25_k1=args.bm25_k1,
        bm25_b=args.bm25_b,
        threads=threads,
        seed=args.seed,
    )
    if iterations is not None:
        model.iterations = iterations
    return model


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {"threads": args.threads}
    if args.engine == "spark":
        conf = {}
        for item in args.spark_conf:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValidationError(f"expected KEY=VALUE, got {item!r}", field="--spark-conf")
            conf[key] = value
        opts = {"master": args.spark_master, "conf": conf}
    return opts


def _model_ref(text: str) -> ModelRef:
    """Accept ``NAME``, ``NAME@alias`` or ``recommend/NAME[@sel]``."""
    ref = ModelRef.parse(text if "/" in text else f"{APP}/{text}")
    if ref.app != APP:
        raise ValidationError(f"{text!r} is not a recommender model (expected {APP}/NAME)", field="--model")
    return ref


def _ids(text: str) -> list[str]:
    return [t for t in (s.strip() for s in text.replace(",", " ").split()) if t]


class RecommendApp(Application):
    """Implicit-feedback recommendations (ALS / BPR)."""

    name: ClassVar[str] = APP
    summary: ClassVar[str] = "implicit-feedback recommendations (ALS, BPR)"
    verbs: ClassVar[frozenset[str]] = frozenset({"train", "evaluate", "update", "precompute"})

    # -- arguments -------------------------------------------------------------------

    def add_arguments(self, verb: str, parser: argparse.ArgumentParser) -> None:
        if verb == "train":
            parser.add_argument("--data", required=True, help="catalogue name, file or folder of interactions")
            parser.add_argument("--name", required=True, help="model name in the registry")
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
            _add_model_args(parser)
            _add_engine_args(parser)
            add_reader_args(parser)
            _common.add_registry_arg(parser)
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
            _add_model_args(parser)
            _add_engine_args(parser)
            add_reader_args(parser)
        elif verb == "update":
            parser.add_argument("model_name", metavar="NAME", help="model to update: NAME or recommend/NAME@alias")
            parser.add_argument("--data", required=True, help="file or folder of new interactions")
            parser.add_argument(
                "--promote",
                metavar="ALIAS",
                default=None,
                help="point ALIAS (e.g. production) at the new version",
            )
            add_reader_args(parser)
            _common.add_registry_arg(parser)
        elif verb == "precompute":
            parser.add_argument("--model", required=True, help="NAME or recommend/NAME[@alias|version]")
            parser.add_argument("--out", type=Path, required=True, help="Parquet file to write")
            parser.add_argument("--k", type=int, default=100, help="items per user (default: 100)")
            parser.add_argument("--chunk-users", type=int, default=10_000, help="users scored per chunk")
            parser.add_argument("--include-seen", action="store_true", help="do not drop seen items")
            _add_engine_args(parser)
            _common.add_registry_arg(parser)

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
        _common.add_registry_arg(p)
        p.set_defaults(handler=self._recommend_cmd)

    def predictor(self, model: LoadedModel) -> Predictor:
        """Serve a recommender version (``mlscale serve``): micro-batched, arrays memory-mapped."""
        from mlscale.apps.recommend.predictor import RecommendPredictor

        recommender = from_artifact(model)
        recommender.threads = 1  # a server worker is one thread; the workers are the parallelism
        return RecommendPredictor(recommender, model_ref=model.ref.model, version=model.manifest.version)

    # -- verbs ------------------------------------------------------------------------

    def run(self, verb: str, args: argparse.Namespace) -> int:
        handler = {
            "train": self._train,
            "evaluate": self._evaluate,
            "update": self._update,
            "precompute": self._precompute,
        }[verb]
        return handler(args)

    def _store(self, args: argparse.Namespace) -> Store:
        return open_store(_common.registry_root(args))

    def _train(self, args: argparse.Namespace) -> int:
        ModelRef.parse(f"{APP}/{args.name}")  # a bad name fails now, not after training
        budget = parse_size(args.memory_budget)
        store = self._store(args)
        with get_engine(args.engine, **_engine_options(args)) as engine:
            if isinstance(engine, SparkEngine):
                model, metrics, fingerprint, bad_rows = self._train_spark(engine, args)
            else:
                model, metrics, fingerprint, bad_rows = self._train_local(engine.threads, args, budget)
            ann.attach_index(model, ann.params_from_flags(args))
            manifest = publish_model(
                store,
                args.name,
                model,
                metrics=metrics,
                engine=engine.name,
                data_fingerprint=fingerprint,
                extra={"data": str(args.data), "bad_rows": bad_rows, "engine_info": engine.describe()},
            )
        print(
            f"trained {model.model} in {metrics['train_seconds']:.1f}s; published {manifest.ref} to {store_root(store)}"
        )
        return 0

    def _stream(self, args: argparse.Namespace) -> InteractionStream:
        return open_interactions(
            args.data,
            _common.data_dir(args),
            id_type=args.id_type,
            on_error=args.on_error,
            **reader_options(args),
        )

    def _train_local(
        self, threads: int, args: argparse.Namespace, budget: int
    ) -> tuple[ImplicitRecommender, dict[str, float], str, int]:
        stream = self._stream(args)
        start = time.perf_counter()
        # Evaluating needs the rows in memory anyway: read the file once and build the matrix from them
        # (reading it twice would also count its bad rows twice).
        table = stream.read_all() if args.evaluate else None
        matrix = ingest_matrix(stream if table is None else table.to_batches(), memory_budget=budget)
        ingest_s = time.perf_counter() - start
        print(
            f"data: {matrix.shape[0]:,} users x {matrix.shape[1]:,} items, {matrix.nnz:,} interactions "
            f"({ingest_s:.1f}s)" + (f"; {stream.bad_rows:,} bad rows skipped" if stream.bad_rows else "")
        )
        model = _params(args, threads)
        start = time.perf_counter()
        model.fit(matrix, progress=not args.quiet and sys.stderr.isatty())
        metrics = {
            "train_seconds": round(time.perf_counter() - start, 3),
            "ingest_seconds": round(ingest_s, 3),
        }
        if table is not None:
            report = evaluate_recommender(table, _params(args, threads), split=_default_split(table))
            print(report.table())
            metrics.update(report.metrics())
        return model, metrics, matrix.fingerprint(), stream.bad_rows

    def _train_spark(
        self, engine: SparkEngine, args: argparse.Namespace
    ) -> tuple[ImplicitRecommender, dict[str, float], str, int]:
        from mlscale.apps.recommend import train_spark

        staged = train_spark.stage_data(engine, args.data, _common.data_dir(args), **_stage_options(args))
        try:
            start = time.perf_counter()
            model = train_spark.fit_spark(engine, staged.data, _params(args, engine.threads))
            metrics: dict[str, float] = {"train_seconds": round(time.perf_counter() - start, 3)}
            print(
                f"data: {model.n_users:,} users x {model.n_items:,} items, {model.seen_.nnz:,} interactions "
                f"(Spark {engine.master})"
            )
            if args.evaluate:
                report = train_spark.evaluate_spark(
                    engine, staged.data, _params(args, engine.threads), split=staged.default_split()
                )
                print(report.table())
                metrics.update(report.metrics())
        finally:
            staged.close()
        matrix = InteractionMatrix(csr=model.seen_, user_ids=model.user_ids_, item_ids=model.item_ids_)
        return model, metrics, matrix.fingerprint(), 0

    def _evaluate(self, args: argparse.Namespace) -> int:
        with get_engine(args.engine, **_engine_options(args)) as engine:
            if isinstance(engine, SparkEngine):
                from mlscale.apps.recommend import train_spark

                staged = train_spark.stage_data(engine, args.data, _common.data_dir(args), **_stage_options(args))
                try:
                    report = train_spark.evaluate_spark(
                        engine,
                        staged.data,
                        _params(args, engine.threads),
                        split=args.split or staged.default_split(),
                        k=args.k,
                        n_test=args.n_test,
                        test_fraction=args.test_fraction,
                        seed=args.seed,
                    )
                finally:
                    staged.close()
            else:
                table = self._stream(args).read_all()
                report = evaluate_recommender(
                    table,
                    _params(args, engine.threads),
                    split=args.split or _default_split(table),
                    k=args.k,
                    n_test=args.n_test,
                    test_fraction=args.test_fraction,
                    seed=args.seed,
                )
        print(f"data: {args.data} (engine {args.engine})")
        print(report.table())
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"data": str(args.data), **report.as_dict()}, indent=2) + "\n")
            print(f"report: {args.json}")
        return 0

    def _update(self, args: argparse.Namespace) -> int:
        store = self._store(args)
        ref = _model_ref(args.model_name)
        loaded = store.load(ref)
        model = from_artifact(loaded)
        stream = open_interactions(
            args.data,
            _common.data_dir(args),
            id_type=args.id_type,
            on_error=args.on_error,
            **reader_options(args),
        )
        new = stream.read_all()
        start = time.perf_counter()
        updated = update_model(model, new)
        took = time.perf_counter() - start
        if model.ann_ is not None:  # new item factors: the old index no longer describes them
            ann.attach_index(updated, ann.AnnParams(**model.ann_.meta["params"]))
        old = loaded.manifest
        manifest = publish_model(
            store,
            old.name,
            updated,
            metrics={"update_seconds": round(took, 3)},
            engine="local",
            data_fingerprint=old.data_fingerprint + f"+update:{new.num_rows}",
            extra={"updated_from": old.version, "update_rows": new.num_rows, "data": str(args.data)},
        )
        print(
            f"folded {new.num_rows:,} interactions into {old.ref} in {took:.2f}s "
            f"(+{updated.n_users - model.n_users} users, +{updated.n_items - model.n_items} items)"
        )
        print(f"published {manifest.ref}")
        if args.promote:
            store.promote(manifest.ref, args.promote)
            print(f"{APP}/{old.name}@{args.promote} -> version {manifest.version}")
        return 0

    def _precompute(self, args: argparse.Namespace) -> int:
        store = self._store(args)
        model = from_artifact(store.load(_model_ref(args.model)))
        model._check_k(args.k, model.n_items)
        start = time.perf_counter()
        if args.engine == "spark":
            from mlscale.apps.recommend.train_spark import precompute_spark

            with get_engine("spark", **_engine_options(args)) as engine:
                if not isinstance(engine, SparkEngine):  # pragma: no cover - get_engine's contract
                    raise TypeError(engine)
                rows = precompute_spark(engine, model, args.out, k=args.k, exclude_seen=not args.include_seen)
        else:
            rows = precompute(
                model, args.out, k=args.k, chunk_users=args.chunk_users, exclude_seen=not args.include_seen
            )
        took = time.perf_counter() - start
        print(
            f"{model.n_users:,} users, {rows:,} rows in {took:.1f}s "
            f"({model.n_users / max(took, 1e-9):,.0f} users/s) -> {args.out}"
        )
        return 0

    def scenario(self, mix: dict[str, Any], *, data: str | None, data_dir: Path, model: str) -> Scenario:
        from mlscale.apps.recommend.scenario import RecommendScenario

        if data is None:
            raise ValidationError("the recommend scenario samples users from data: pass --data", field="--data")
        return RecommendScenario(data, data_dir, model, mix)

    def _recommend_cmd(self, args: argparse.Namespace) -> int:
        store = self._store(args)
        model = from_artifact(store.load(_model_ref(args.model_name)))
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


def _stage_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"id_type": args.id_type, "on_error": args.on_error, **reader_options(args)}


def _default_split(table: pa.Table) -> SplitMethod:
    has_time = table.column("timestamp").null_count < table.num_rows
    return "time" if has_time else "random"


def store_root(store: Store) -> str:
    return str(getattr(store, "root", ""))


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
