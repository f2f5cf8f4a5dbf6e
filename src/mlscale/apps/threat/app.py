"""Threat detection as an mlscale application: train, evaluate, and ``mlscale threat ingest|score|feedback|synth``."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from mlscale._cli import _common
from mlscale.apps.base import Application
from mlscale.apps.threat._artifact import APP, from_artifact, publish_model
from mlscale.apps.threat.evaluate import DEFAULT_FRACTIONS, METHODS, evaluate_threat
from mlscale.apps.threat.feedback import (
    DEFAULT_DUP_FACTOR,
    SEVERITIES,
    FeedbackLog,
    Verdict,
    default_log_path,
    events_table,
    pattern_weights,
)
from mlscale.apps.threat.ingest import DEFAULT_BATCH_ROWS, ingest, iter_records, list_sources
from mlscale.apps.threat.model import SCORERS, ThreatDetector
from mlscale.apps.threat.rank import ip_summary, rank_records, write_table
from mlscale.apps.threat.words import SCHEMES
from mlscale.engines import ENGINES, get_engine
from mlscale.errors import DataError, DatasetNotFoundError, ValidationError
from mlscale.registry import LoadedModel, ModelRef, Store, open_store

if TYPE_CHECKING:
    from mlscale.loadtest.scenario import Scenario
    from mlscale.serve.predictor import Predictor

__all__ = ["ThreatApp", "resolve_data"]

_DEFAULT_EVAL_DATA = "stratosphere-zeek-labeled"
_DEFAULTS = ThreatDetector()


def resolve_data(spec: str, data_dir: Path) -> Path:
    """A path as given, else a catalogue data set's folder under the data dir."""
    path = Path(spec)
    if path.exists():
        return path
    candidate = data_dir / spec
    if candidate.exists():
        return candidate
    raise DatasetNotFoundError(
        f"{spec}: no such file or folder, and no data set of that name in {data_dir}",
        hint="pass a log file or folder, or fetch the data set with `mlscale data fetch NAME`",
    )


def _model_ref(text: str) -> ModelRef:
    """Accept ``NAME``, ``NAME@alias`` or ``threat/NAME[@sel]``."""
    ref = ModelRef.parse(text if "/" in text else f"{APP}/{text}")
    if ref.app != APP:
        raise ValidationError(f"{text!r} is not a threat model (expected {APP}/NAME)", field="--model")
    return ref


def _positive_int(text: str) -> int:
    try:
        value = int(float(text.replace("_", "")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {text!r}")
    return value


def _rows(text: str) -> int:
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(text[-1:].lower(), 1)
    body = text[:-1] if scale > 1 else text
    try:
        value = int(float(body.replace("_", "")) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a row count such as 10M or 5000, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 row, got {text!r}")
    return value


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--words", choices=SCHEMES, default=_DEFAULTS.words, help="flow word scheme (default: mlscale)")
    g.add_argument("--hour-bins", type=int, default=None, help="hour-of-day bins in flow words (spot: 24, mlscale: 1)")
    g.add_argument("--topics", type=int, default=_DEFAULTS.topics, help="LDA topics (default: %(default)s)")
    g.add_argument(
        "--passes", type=int, default=_DEFAULTS.passes, help="passes over the documents (default: %(default)s)"
    )
    g.add_argument("--doc-topic-prior", type=float, default=None, help="LDA alpha (default: 1/topics)")
    g.add_argument("--topic-word-prior", type=float, default=None, help="LDA eta (default: 1/topics)")
    g.add_argument(
        "--batch-size", type=int, default=_DEFAULTS.batch_size, help="documents per minibatch (local engine)"
    )
    g.add_argument("--scorer", choices=SCORERS, default=_DEFAULTS.scorer, help="flow score (default: mlscale)")
    g.add_argument(
        "--prior-strength",
        type=float,
        default=_DEFAULTS.prior_strength,
        help="calibration pseudo-count of the mlscale scorer (default: %(default)s)",
    )
    g.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def _params(args: argparse.Namespace, kind: str) -> ThreatDetector:
    top: tuple[str, ...] = ()
    if getattr(args, "top_domains", None):
        path = Path(args.top_domains)
        if not path.is_file():
            raise DataError(f"{path}: no such file", hint="--top-domains takes a file with one domain a line")
        top = tuple(t.split(",")[-1].strip() for t in path.read_text().splitlines() if t.strip())
    return ThreatDetector(
        kind=kind,  # type: ignore[arg-type]
        words=args.words,
        hour_bins=args.hour_bins,
        topics=args.topics,
        passes=args.passes,
        doc_topic_prior=args.doc_topic_prior,
        topic_word_prior=args.topic_word_prior,
        batch_size=args.batch_size,
        scorer=args.scorer,
        prior_strength=args.prior_strength,
        seed=args.seed,
        top_domains=top,
        user_domains=tuple(getattr(args, "user_domain", None) or ()),
    )


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=ENGINES, default="local", help="where training runs (default: local)")
    g.add_argument("--spark-master", default=None, help="Spark master URL (default: local[*])")
    g.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE", help="Spark setting (repeatable)")


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.engine != "spark":
        return {}
    conf = {}
    for item in args.spark_conf:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValidationError(f"expected KEY=VALUE, got {item!r}", field="--spark-conf")
        conf[key] = value
    return {"master": args.spark_master, "conf": conf}


def _ranks(text: str) -> list[int]:
    """``1,3,5-7`` -> [1, 3, 5, 6, 7]."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValidationError(f"expected ranks such as 1,3,5-7, got {text!r}", field="--rank") from None
        if a < 1 or b < a:
            raise ValidationError(f"expected ranks >= 1 in increasing ranges, got {part!r}", field="--rank")
        out.extend(range(a, b + 1))
    if not out:
        raise ValidationError("expected at least one rank", field="--rank")
    return out


class ThreatApp(Application):
    """Apache Spot-style suspicious connects on flows and DNS."""

    name: ClassVar[str] = APP
    summary: ClassVar[str] = "suspicious connects in network flows and DNS (Apache Spot-style LDA)"
    verbs: ClassVar[frozenset[str]] = frozenset({"train", "evaluate"})

    # -- arguments ---------------------------------------------------------------------------

    def add_arguments(self, verb: str, parser: argparse.ArgumentParser) -> None:
        if verb == "train":
            parser.add_argument(
                "--data", required=True, help="log file or folder (Zeek, nfdump, nfcapd, Argus, tshark, Parquet)"
            )
            parser.add_argument("--name", required=True, help="model name in the registry")
            parser.add_argument(
                "--kind",
                choices=("auto", "flows", "dns"),
                default="auto",
                help="model flows or DNS (default: flows when the data has any)",
            )
            _add_model_args(parser)
            dns = parser.add_argument_group("DNS words")
            dns.add_argument("--top-domains", metavar="FILE", help="top domains, one a line (rank,domain ok)")
            dns.add_argument("--user-domain", action="append", metavar="DOMAIN", help="your own domain (repeatable)")
            fb = parser.add_argument_group("analyst feedback")
            fb.add_argument("--feedback", type=Path, metavar="FILE", help="verdict log (default: the model's)")
            fb.add_argument("--no-feedback", action="store_true", help="ignore recorded verdicts")
            fb.add_argument(
                "--dup-factor",
                type=int,
                default=DEFAULT_DUP_FACTOR,
                help="times a low-risk event is re-injected (default: %(default)s, as Spot)",
            )
            _add_engine_args(parser)
            parser.add_argument("--nfdump", default="nfdump", help="the nfdump tool, for nfcapd files")
            _common.add_data_dir_arg(parser)
            _common.add_registry_arg(parser)
        elif verb == "evaluate":
            parser.add_argument(
                "--data",
                action="append",
                default=None,
                help=f"labelled flow logs: a file or folder, each file one capture (repeatable; default: "
                f"the {_DEFAULT_EVAL_DATA} data set)",
            )
            parser.add_argument(
                "--fraction",
                action="append",
                type=float,
                default=None,
                help="malicious share of a seeded mixture (repeatable; default: 0.01 0.02 0.05)",
            )
            parser.add_argument("--seeds", type=int, default=3, help="mixtures per fraction (default: 3)")
            parser.add_argument("--no-capture", action="store_true", help="skip the captures as labelled")
            parser.add_argument(
                "--methods",
                default="spot,iforest,mlscale",
                help=f"comma-separated, from {', '.join(METHODS)} (default: %(default)s)",
            )
            parser.add_argument("--per-capture", action="store_true", help="print every capture's rows")
            parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
            parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the tables as Markdown")
            g = parser.add_argument_group("model")
            g.add_argument("--topics", type=int, default=_DEFAULTS.topics, help="LDA topics (default: 20)")
            g.add_argument("--passes", type=int, default=_DEFAULTS.passes, help="LDA passes (default: 10)")
            g.add_argument("--prior-strength", type=float, default=_DEFAULTS.prior_strength, help="mlscale scorer's m")
            _common.add_data_dir_arg(parser)

    def add_commands(self, sub: Any) -> None:
        p = sub.add_parser(
            "threat",
            help="threat detection: ingest logs, score flows, record analyst feedback",
            description="Apache Spot-style suspicious connects: ingest network logs to Parquet, rank flows "
            "by how unlikely the model finds them, record analyst verdicts.",
        )
        group = p.add_subparsers(dest="threat_command", metavar="COMMAND", required=True)

        ing = group.add_parser(
            "ingest",
            help="network logs to the flow/DNS Parquet schema",
            description="Convert Zeek conn/dns logs (TSV or JSON), nfdump CSV, nfcapd files (through nfdump), "
            "Argus binetflow and tshark DNS CSV to Parquet: OUT/flows/ and OUT/dns/.",
        )
        ing.add_argument("path", metavar="PATH", help="a log file or a folder of logs")
        ing.add_argument("--out", type=Path, required=True, help="output folder")
        ing.add_argument("--nfdump", default="nfdump", help="the nfdump tool, for nfcapd files")
        ing.add_argument("--batch-rows", type=_positive_int, default=DEFAULT_BATCH_ROWS, help=argparse.SUPPRESS)
        ing.set_defaults(handler=self._ingest_cmd)

        sc = group.add_parser(
            "score",
            help="rank flows (or DNS queries) by suspicion with a registry model",
            description="One row per record, most suspicious first: the log's own id (Zeek uid), rank, "
            "score and the words that made it suspicious.",
        )
        sc.add_argument("--model", required=True, help="NAME or threat/NAME[@alias|version]")
        sc.add_argument("--data", required=True, help="log file or folder to score")
        sc.add_argument("--out", type=Path, required=True, help="FILE.parquet, .csv or .json (JSON lines)")
        sc.add_argument("--top", type=_positive_int, default=None, help="keep only the N most suspicious")
        sc.add_argument("--summary", type=Path, default=None, metavar="FILE", help="also write a per-IP summary")
        sc.add_argument("--nfdump", default="nfdump", help="the nfdump tool, for nfcapd files")
        _common.add_data_dir_arg(sc)
        _common.add_registry_arg(sc)
        sc.set_defaults(handler=self._score_cmd)

        fb = group.add_parser(
            "feedback",
            help="record analyst verdicts (1 high, 2 medium, 3 low risk)",
            description="Rate events from a scored list (--scores FILE --rank 1,3-5) or a pattern of flows "
            "(--src-ip/--dst-ip/--src-port/--dst-port/--proto). The next `mlscale train threat --name NAME` "
            "re-injects low-risk verdicts so those flows leave the top of the list.",
        )
        fb.add_argument("--model", required=True, help="NAME or threat/NAME: whose verdict log")
        fb.add_argument("--severity", type=int, choices=sorted(SEVERITIES), help="1 high, 2 medium, 3 low risk")
        fb.add_argument("--scores", type=Path, help="a list written by `mlscale threat score`")
        fb.add_argument("--rank", help="ranks of that list to rate: 1,3,5-7")
        for flag in ("--src-ip", "--dst-ip", "--proto"):
            fb.add_argument(flag, help="pattern: flows with this value")
        for flag in ("--src-port", "--dst-port"):
            fb.add_argument(flag, type=int, help="pattern: flows with this port")
        fb.add_argument("--note", default="", help="free text kept with the verdict")
        fb.add_argument("--log", type=Path, default=None, help="verdict log file (default: in the registry)")
        fb.add_argument("--list", action="store_true", help="show the recorded verdicts instead")
        _common.add_registry_arg(fb)
        fb.set_defaults(handler=self._feedback_cmd)

        sy = group.add_parser(
            "synth",
            help="synthetic flows with daily rhythms and injected attacks, streamed to Parquet",
            description="Hosts with daily rhythms and services plus port scans, beaconing and exfiltration "
            "(labelled Malicious), written as flow-schema Parquet parts.",
        )
        sy.add_argument("--rows", type=_rows, required=True, help="flows to write (10M, 100M...)")
        sy.add_argument("--out", type=Path, required=True, help="output folder")
        sy.add_argument("--hosts", type=_positive_int, default=1000, help="internal hosts (default: 1000)")
        sy.add_argument("--days", type=_positive_int, default=7, help="days covered (default: 7)")
        sy.add_argument("--attack-rate", type=float, default=0.001, help="share of attack flows (default: 0.001)")
        sy.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
        sy.set_defaults(handler=self._synth_cmd)

    def predictor(self, model: LoadedModel) -> Predictor:
        """Serve a threat model (``mlscale serve``): score batches of flows, record feedback."""
        from mlscale.apps.threat.predictor import ThreatPredictor

        root = model.path.parents[2] if len(model.path.parents) > 2 else model.path
        return ThreatPredictor(
            from_artifact(model),
            model_ref=str(model.ref.model),
            version=model.manifest.version,
            feedback_log=default_log_path(root, model.manifest.name),
        )

    def scenario(self, mix: dict[str, Any], *, data: str | None, data_dir: Path, model: str) -> Scenario:
        """Load-test ``score``: batches of real flows sampled from ``data``."""
        from mlscale.apps.threat.scenario import ThreatScenario

        if data is None:
            raise ValidationError("the threat scenario samples flows from data: pass --data", field="--data")
        return ThreatScenario(resolve_data(data, data_dir), model, mix)

    # -- verbs -----------------------------------------------------------------------------------

    def run(self, verb: str, args: argparse.Namespace) -> int:
        return {"train": self._train, "evaluate": self._evaluate}[verb](args)

    def _store(self, args: argparse.Namespace) -> Store:
        return open_store(_common.registry_root(args))

    def _train(self, args: argparse.Namespace) -> int:
        ModelRef.parse(f"{APP}/{args.name}")  # a bad name fails now, not after training
        if args.dup_factor < 1:
            raise ValidationError(f"expected >= 1, got {args.dup_factor}", field="--dup-factor")
        data = resolve_data(args.data, _common.data_dir(args))
        kind = args.kind
        if kind == "auto":
            kinds = {s.kind for s in list_sources(data)}
            kind = "flows" if "flows" in kinds else "dns"
        sources = list_sources(data, kind)
        detector = _params(args, kind)
        store = self._store(args)
        verdicts: list[Verdict] = []
        log_path = args.feedback or default_log_path(_common.registry_root(args), args.name)
        if not args.no_feedback:
            verdicts = FeedbackLog(log_path).read()
            if verdicts and kind == "dns":
                raise ValidationError("analyst feedback applies to flow models only", field="--feedback")
        events = events_table(verdicts)
        reweight = pattern_weights(verdicts, args.dup_factor)
        n_patterns = sum(1 for v in verdicts if v.kind == "pattern" and v.severity == 3)
        if events.num_rows or n_patterns:
            print(
                f"feedback: re-injecting {events.num_rows} low-risk event(s) and the flows of {n_patterns} "
                f"low-risk pattern(s) x{args.dup_factor} ({log_path})"
            )
        fingerprint = hashlib.sha256()
        for src in sources:
            stat = src.path.stat()
            fingerprint.update(f"{src.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        fingerprint.update(f"feedback:{len(verdicts)}".encode())

        def batches() -> Iterator[pa.RecordBatch]:
            for src in sources:
                yield from iter_records(src, nfdump=args.nfdump)

        start = time.perf_counter()
        with get_engine(args.engine, **_engine_options(args)) as engine:
            if args.engine == "spark":
                from mlscale.apps.threat.train_spark import fit_spark
                from mlscale.engines.spark import SparkEngine

                if not isinstance(engine, SparkEngine):  # pragma: no cover - get_engine's contract
                    raise TypeError(engine)
                detector = fit_spark(
                    engine,
                    sources,
                    detector,
                    events=events,
                    dup_factor=args.dup_factor,
                    reweight=reweight,
                    nfdump=args.nfdump,
                )
            else:
                detector.fit(batches(), extra=[(events, float(args.dup_factor))], reweight=reweight)
            took = time.perf_counter() - start
            manifest = publish_model(
                store,
                args.name,
                detector,
                metrics={"train_seconds": round(took, 3)},
                engine=engine.name,
                data_fingerprint="sha256:" + fingerprint.hexdigest(),
                extra={
                    "data": str(args.data),
                    "files": len(sources),
                    "feedback_verdicts": len(verdicts),
                    "engine_info": engine.describe(),
                },
            )
        print(
            f"trained on {len(sources)} {kind} file(s): {detector.n_ips:,} IPs, {detector.n_words:,} words, "
            f"{detector.topics} topics in {took:.1f}s; published {manifest.ref}"
        )
        return 0

    def _evaluate(self, args: argparse.Namespace) -> int:
        specs = args.data or [_DEFAULT_EVAL_DATA]
        captures: dict[str, pa.Table] = {}
        for spec in specs:
            root = resolve_data(spec, _common.data_dir(args))
            for src in list_sources(root, "flows"):
                table = pa.Table.from_batches(list(iter_records(src)))
                if table.column("label").null_count == table.num_rows:
                    print(f"skipped {src.path}: no labels")
                    continue
                name = str(src.path.relative_to(root)) if root.is_dir() else src.path.name
                captures[name] = table
        if not captures:
            raise DataError("no labelled flow logs to evaluate on", hint="pass --data with labelled Zeek logs")
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        report = evaluate_threat(
            captures,
            fractions=tuple(args.fraction or DEFAULT_FRACTIONS),
            seeds=args.seeds,
            full=not args.no_capture,
            methods=methods,
            params={"topics": args.topics, "passes": args.passes, "prior_strength": args.prior_strength},
            progress=(lambda line: print(line, file=sys.stderr)) if sys.stderr.isatty() else None,
        )
        print(report.markdown(per_capture=args.per_capture))
        if args.per_capture:
            print()
            print(report.markdown())
        if args.json:
            import json

            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
            print(f"report: {args.json}")
        if args.markdown:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            args.markdown.write_text(report.markdown() + "\n\n" + report.markdown(per_capture=True) + "\n")
            print(f"tables: {args.markdown}")
        return 0

    # -- own commands ------------------------------------------------------------------------------

    def _ingest_cmd(self, args: argparse.Namespace) -> int:
        start = time.perf_counter()
        report = ingest(Path(args.path), args.out, batch_rows=args.batch_rows, nfdump=args.nfdump)
        print(report.summary() + f" in {time.perf_counter() - start:.1f}s")
        return 0

    def _score_cmd(self, args: argparse.Namespace) -> int:
        store = self._store(args)
        loaded = store.load(_model_ref(args.model))
        model = from_artifact(loaded)
        data = resolve_data(args.data, _common.data_dir(args))
        sources = list_sources(data, model.kind)
        start = time.perf_counter()
        ranked = rank_records(
            model,
            (b for src in sources for b in iter_records(src, nfdump=args.nfdump)),
            top=args.top,
        )
        took = time.perf_counter() - start
        write_table(ranked, args.out)
        print(f"scored with {loaded.ref} in {took:.1f}s; {ranked.num_rows:,} rows -> {args.out}")
        if args.summary:
            summary = ip_summary(ranked)
            write_table(summary, args.summary)
            print(f"per-IP summary: {summary.num_rows:,} IPs -> {args.summary}")
        return 0

    def _feedback_cmd(self, args: argparse.Namespace) -> int:
        ref = _model_ref(args.model)
        log = FeedbackLog(args.log or default_log_path(_common.registry_root(args), ref.name))
        if args.list:
            for v in log.read():
                print(f"{v.recorded}  {v.severity} ({SEVERITIES[v.severity]})  {v.kind:7}  {dict(v.match)}  {v.note}")
            return 0
        if args.severity is None:
            raise ValidationError("expected 1 (high), 2 (medium) or 3 (low risk)", field="--severity")
        pattern = {
            key: getattr(args, key)
            for key in ("src_ip", "dst_ip", "src_port", "dst_port", "proto")
            if getattr(args, key) is not None
        }
        if args.scores is not None:
            if pattern:
                raise ValidationError("give either --scores with --rank, or pattern fields, not both", field="--scores")
            if not args.rank:
                raise ValidationError("expected --rank with --scores", field="--rank")
            from mlscale.apps.threat.predictor import events_from_scores

            verdicts = events_from_scores(args.scores, _ranks(args.rank), args.severity, args.note, str(ref.model))
        elif pattern:
            if "proto" in pattern:
                pattern["proto"] = str(pattern["proto"]).lower()
            verdicts = [Verdict(args.severity, "pattern", pattern, note=args.note, model=str(ref.model))]
        else:
            raise ValidationError(
                "say what to rate: --scores FILE --rank N, or pattern fields such as --dst-ip/--dst-port",
                field="feedback",
            )
        n = log.record(verdicts)
        print(f"recorded {n} verdict(s), severity {args.severity} ({SEVERITIES[args.severity]}) -> {log.path}")
        return 0

    def _synth_cmd(self, args: argparse.Namespace) -> int:
        from mlscale.apps.threat.ingest import _PartWriter
        from mlscale.apps.threat.schema import FLOW_SCHEMA
        from mlscale.apps.threat.synthetic import iter_flows

        start = time.perf_counter()
        writer = _PartWriter(Path(args.out) / "flows", FLOW_SCHEMA, 1 << 23)
        rows = 0
        try:
            for batch in iter_flows(
                args.rows, hosts=args.hosts, days=args.days, attack_rate=args.attack_rate, seed=args.seed
            ):
                writer.write(batch)
                rows += batch.num_rows
        finally:
            writer.close()
        took = time.perf_counter() - start
        print(f"{rows:,} flows in {took:.1f}s ({rows / max(took, 1e-9):,.0f} flows/s) -> {args.out}/flows")
        return 0
