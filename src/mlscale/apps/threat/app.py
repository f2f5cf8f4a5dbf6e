"""Threat detection as an mlscale application: what it declares, its local trainer, ``mlscale threat ...``.

The generic verbs (``train``, ``evaluate``) are the command line's; this
module says what the threat app brings to them (params, a trainer per engine,
the codec, predictor and scenario) and adds ``mlscale threat
ingest|score|hosts|feedback|synth``. Spark's trainer is in
:mod:`~mlscale.apps.threat.train_spark`, the evaluator in
:mod:`~mlscale.apps.threat.evaluator`, the work of ``score`` and ``hosts`` in
:mod:`~mlscale.apps.threat.scoring`.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from mlscale.apps.args import add_data_dir_arg, add_registry_arg, data_dir, registry_root
from mlscale.apps.base import Application, Codec, Job, TrainResult, params_to_dict
from mlscale.apps.threat._artifact import APP, CODEC, from_artifact
from mlscale.apps.threat.evaluator import EVALUATE_FIELDS, add_evaluate_arguments
from mlscale.apps.threat.feedback import (
    DEFAULT_DUP_FACTOR,
    PATTERN_FIELDS,
    SEVERITIES,
    FeedbackLog,
    Verdict,
    events_table,
    pattern_weights,
)
from mlscale.apps.threat.ingest import (
    DEFAULT_BATCH_ROWS,
    SourceFile,
    ingest,
    iter_records,
    list_sources,
    resolve_data,
)
from mlscale.apps.threat.model import ThreatDetector
from mlscale.apps.threat.params import EvidenceParams, LdaParams
from mlscale.apps.threat.rank import ip_summary, write_table
from mlscale.apps.threat.scoring import (
    add_params_flags,
    host_verdicts,
    hosts_from_lists,
    params_of,
    read_list,
    score_log,
)
from mlscale.engines import Engine
from mlscale.errors import ConfigError, DataError, ValidationError
from mlscale.registry import LoadedModel, Store, open_store

if TYPE_CHECKING:
    from mlscale.loadtest.scenario import Scenario
    from mlscale.serve.predictor import Predictor

__all__ = [
    "FEEDBACK",
    "LOCAL_TRAINER",
    "ThreatApp",
    "TrainingData",
    "feedback_log",
    "prepare",
    "resolve_data",
]

_HERE = "mlscale.apps.threat"
#: The attachment of ``threat/NAME`` that holds its analyst verdicts.
FEEDBACK = "feedback"


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


def _print_hosts(hosts: pa.Table, n: int) -> None:
    """The ``n`` first hosts of a ranking with their reasons, one a line."""
    if n <= 0 or hosts.num_rows == 0:
        return
    print(f"most suspicious hosts (of {hosts.num_rows:,}):")
    for row in hosts.slice(0, n).to_pylist():
        print(f"  {row['rank']:>3}. {row['host']:<39} score {row['score']:.2f}  {row['reasons'] or '-'}")


def _domains(job: Job) -> tuple[tuple[str, ...], tuple[str, ...]]:
    top: tuple[str, ...] = ()
    if job.option("top_domains"):
        path = Path(job.option("top_domains"))
        if not path.is_file():
            raise DataError(f"{path}: no such file", hint="--top-domains takes a file with one domain a line")
        top = tuple(t.split(",")[-1].strip() for t in path.read_text().splitlines() if t.strip())
    return top, tuple(job.option("user_domain", ()) or ())


def feedback_log(store: Store, name: str) -> FeedbackLog:
    """The verdict log of ``threat/NAME``: an attachment of the model in its store.

    Synced with the store after each record and before each read, so with an
    object store a verdict is durable there before it is acknowledged and every
    host sees the verdicts the others recorded.
    """
    return FeedbackLog(
        store.attachment(APP, name, FEEDBACK), sync=functools.partial(store.sync_attachment, APP, name, FEEDBACK)
    )


@dataclass(frozen=True)
class TrainingData:
    """What both engines' trainers need: the files, an unfitted detector, the feedback to re-inject."""

    kind: str
    sources: list[SourceFile]
    detector: ThreatDetector
    verdicts: list[Verdict]
    events: pa.Table
    reweight: Any
    dup_factor: int
    fingerprint: str

    def result(self, detector: ThreatDetector, job: Job, took: float) -> TrainResult:
        """The training result of ``detector`` fitted on this data in ``took`` seconds."""
        return TrainResult(
            detector,
            {"train_seconds": round(took, 3)},
            self.fingerprint,
            extra={"data": job.data, "files": len(self.sources), "feedback_verdicts": len(self.verdicts)},
            summary=f"trained on {len(self.sources)} {self.kind} file(s): {detector.n_ips:,} IPs, "
            f"{detector.n_words:,} words, {detector.topics} topics in {took:.1f}s",
        )


def prepare(job: Job, params: LdaParams) -> TrainingData:
    """Find the log files, build the detector, read the recorded verdicts (printing what is re-injected)."""
    dup_factor = int(job.option("dup_factor", DEFAULT_DUP_FACTOR))
    if dup_factor < 1:
        raise ValidationError(f"expected >= 1, got {dup_factor}", field="--dup-factor")
    data = resolve_data(job.data, job.data_dir)
    kind = job.option("kind", "auto")
    if kind == "auto":
        kinds = {s.kind for s in list_sources(data)}
        kind = "flows" if "flows" in kinds else "dns"
    sources = list_sources(data, kind)
    top, user = _domains(job)
    detector = ThreatDetector(kind=kind, top_domains=top, user_domains=user, **params_to_dict(params))
    verdicts: list[Verdict] = []
    given: Path | None = job.option("feedback")
    if job.store is None:  # pragma: no cover - the train verb always gives one
        raise ConfigError("training a threat model needs a registry")
    log = FeedbackLog(given) if given is not None else feedback_log(job.store, job.name)
    if not job.option("no_feedback"):
        verdicts = log.read()
        if verdicts and kind == "dns":
            raise ValidationError("analyst feedback applies to flow models only", field="--feedback")
    events = events_table(verdicts)
    reweight = pattern_weights(verdicts, dup_factor)
    n_patterns = sum(1 for v in verdicts if v.kind == "pattern" and v.severity == 3)
    if events.num_rows or n_patterns:
        print(
            f"feedback: re-injecting {events.num_rows} low-risk event(s) and the flows of {n_patterns} "
            f"low-risk pattern(s) x{dup_factor} ({log.path})"
        )
    fingerprint = hashlib.sha256()
    for src in sources:
        stat = src.path.stat()
        fingerprint.update(f"{src.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    fingerprint.update(f"feedback:{len(verdicts)}".encode())
    return TrainingData(
        kind, sources, detector, verdicts, events, reweight, dup_factor, "sha256:" + fingerprint.hexdigest()
    )


class LocalTrainer:
    """Words and online LDA in this process, streaming the logs."""

    param_defaults: Mapping[str, Any] = {}

    def fit(self, engine: Engine, job: Job, params: LdaParams) -> TrainResult:
        prep = prepare(job, params)
        nfdump = job.option("nfdump", "nfdump")

        def batches() -> Iterator[pa.RecordBatch]:
            for src in prep.sources:
                yield from iter_records(src, nfdump=nfdump)

        start = time.perf_counter()
        detector = prep.detector
        detector.fit(batches(), extra=[(prep.events, float(prep.dup_factor))], reweight=prep.reweight)
        return prep.result(detector, job, time.perf_counter() - start)


LOCAL_TRAINER = LocalTrainer()


class ThreatApp(Application):
    """Apache Spot-style suspicious connects on flows and DNS."""

    name: ClassVar[str] = APP
    summary: ClassVar[str] = "suspicious connects in network flows and DNS (Apache Spot-style LDA)"
    params: ClassVar[Mapping[str, type[Any]]] = {"lda": LdaParams}
    trainers: ClassVar[Mapping[str, str]] = {
        "local": f"{_HERE}.app:LOCAL_TRAINER",
        "spark": f"{_HERE}.train_spark:TRAINER",
    }
    evaluators: ClassVar[Mapping[str, str]] = {"local": f"{_HERE}.evaluator:EVALUATOR"}
    evaluate_param_fields: ClassVar[tuple[str, ...] | None] = EVALUATE_FIELDS
    requires: ClassVar[tuple[str, ...]] = ("sklearn",)
    data_help: ClassVar[str] = "log file or folder (Zeek, nfdump, nfcapd, Argus, tshark, Parquet)"

    @property
    def codec(self) -> Codec:
        return CODEC

    # -- the app's own flags of the generic verbs ----------------------------------------------------

    def add_arguments(self, verb: str, parser: argparse.ArgumentParser) -> None:
        if verb == "train":
            parser.add_argument(
                "--kind",
                choices=("auto", "flows", "dns"),
                default="auto",
                help="model flows or DNS (default: flows when the data has any)",
            )
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
            parser.add_argument("--nfdump", default="nfdump", help="the nfdump tool, for nfcapd files")
        elif verb == "evaluate":
            add_evaluate_arguments(parser)

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
        sc.add_argument(
            "--hosts",
            type=Path,
            default=None,
            metavar="FILE",
            help="also write the per-host ranking (host, score, evidence, reasons)",
        )
        sc.add_argument(
            "--show-hosts", type=int, default=5, metavar="N", help="print the N first hosts (default: %(default)s)"
        )
        sc.add_argument("--nfdump", default="nfdump", help="the nfdump tool, for nfcapd files")
        sc.add_argument(
            "--no-beacons",
            dest="beacons",
            action="store_false",
            help="flow models: score with the topic model alone (one pass; no beacon/beacon_reason columns)",
        )
        sc.add_argument("--feedback", type=Path, metavar="FILE", help="verdict log (default: the model's)")
        sc.add_argument("--no-feedback", action="store_true", help="ignore recorded verdicts")
        add_params_flags(sc, EvidenceParams, "beacon evidence and verdicts")
        add_data_dir_arg(sc)
        add_registry_arg(sc)
        sc.set_defaults(handler=self._score_cmd)

        ho = group.add_parser(
            "hosts",
            help="rank hosts from score files (flows, DNS or both)",
            description="One row per originating host, most suspicious first: its best flow rank, its strongest "
            "beacon series, its most generated-looking query, their sum and the reasons in words. Reads the files "
            "`mlscale threat score` wrote; host verdicts of --model lower their hosts.",
        )
        ho.add_argument("--scores", type=Path, default=None, help="a flow list written by `mlscale threat score`")
        ho.add_argument("--dns", type=Path, default=None, help="a DNS list written by `mlscale threat score`")
        ho.add_argument("--out", type=Path, required=True, help="FILE.parquet, .csv or .json (JSON lines)")
        ho.add_argument(
            "--total-flows",
            type=_positive_int,
            default=None,
            help="flows ranked when --scores holds only a top (default: its last rank)",
        )
        ho.add_argument("--model", default=None, help="NAME or threat/NAME: apply its host verdicts")
        ho.add_argument("--feedback", type=Path, metavar="FILE", help="verdict log (instead of --model's)")
        ho.add_argument(
            "--show-hosts", type=int, default=5, metavar="N", help="print the N first hosts (default: %(default)s)"
        )
        add_params_flags(ho, EvidenceParams, "verdicts", only=("dup_factor",))
        add_registry_arg(ho)
        ho.set_defaults(handler=self._hosts_cmd)

        fb = group.add_parser(
            "feedback",
            help="record analyst verdicts (1 high, 2 medium, 3 low risk)",
            description="Rate events from a scored list (--scores FILE --rank 1,3-5), hosts (--host IP, or "
            "--scores HOSTS.csv --rank N with a host list) or a pattern of flows (--src-ip/--dst-ip/--src-port/"
            "--dst-port/--proto). The next `mlscale train threat --name NAME` re-injects low-risk verdicts so those "
            "flows leave the top of the list; the next `threat score` leaves a low-risk pattern's flows out of the "
            "beacon evidence and divides a low-risk host's score by 1 + dup-factor.",
        )
        fb.add_argument("--model", required=True, help="NAME or threat/NAME: whose verdict log")
        fb.add_argument("--severity", type=int, choices=sorted(SEVERITIES), help="1 high, 2 medium, 3 low risk")
        fb.add_argument("--scores", type=Path, help="a flow or host list written by `mlscale threat score`")
        fb.add_argument("--host", help="a host: the pattern of flows from it (same as --src-ip)")
        fb.add_argument("--rank", help="ranks of that list to rate: 1,3,5-7")
        for flag in ("--src-ip", "--dst-ip", "--proto"):
            fb.add_argument(flag, help="pattern: flows with this value")
        for flag in ("--src-port", "--dst-port"):
            fb.add_argument(flag, type=int, help="pattern: flows with this port")
        fb.add_argument("--note", default="", help="free text kept with the verdict")
        fb.add_argument("--log", type=Path, default=None, help="verdict log file (default: in the registry)")
        fb.add_argument("--list", action="store_true", help="show the recorded verdicts instead")
        add_registry_arg(fb)
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

        if model.store is None:
            raise ConfigError(f"{model.ref}: serving a threat model needs the store it came from (its verdict log)")
        return ThreatPredictor(
            from_artifact(model),
            model_ref=str(model.ref.model),
            version=model.manifest.version,
            feedback_log=feedback_log(model.store, model.manifest.name),
        )

    def scenario(self, mix: dict[str, Any], *, data: str | None, data_dir: Path, model: str) -> Scenario:
        """Load-test ``score``: batches of real flows sampled from ``data``."""
        from mlscale.apps.threat.scenario import ThreatScenario

        if data is None:
            raise ValidationError("the threat scenario samples flows from data: pass --data", field="--data")
        return ThreatScenario(resolve_data(data, data_dir), model, mix)

    def example_data(self, folder: Path) -> tuple[str, dict[str, Any]]:
        """A few thousand synthetic flows with injected attacks, as flow-schema Parquet."""
        import pyarrow.parquet as pq

        from mlscale.apps.threat.synthetic import generate_flows

        path = folder / "flows.parquet"
        pq.write_table(generate_flows(3000, hosts=20, days=1, seed=0), path)
        return str(path), {"topics": "4", "passes": "2"}

    # -- own commands ------------------------------------------------------------------------------

    def _ingest_cmd(self, args: argparse.Namespace) -> int:
        start = time.perf_counter()
        report = ingest(Path(args.path), args.out, batch_rows=args.batch_rows, nfdump=args.nfdump)
        print(report.summary() + f" in {time.perf_counter() - start:.1f}s")
        return 0

    def _verdicts(self, args: argparse.Namespace, store: Store | None, name: str | None) -> list[Verdict]:
        """The verdicts ``--feedback FILE`` or the model's log holds (none with ``--no-feedback``)."""
        if getattr(args, "no_feedback", False):
            return []
        if args.feedback is not None:
            if not args.feedback.is_file():
                raise DataError(f"{args.feedback}: no such file", hint="--feedback takes a verdict log")
            return FeedbackLog(args.feedback).read()
        if store is None or name is None:
            return []
        return feedback_log(store, name).read()

    def _score_cmd(self, args: argparse.Namespace) -> int:
        store = open_store(registry_root(args))
        loaded = store.load(self.model_ref(args.model))
        model = from_artifact(loaded)
        data = resolve_data(args.data, data_dir(args))
        sources = list_sources(data, model.kind)
        evidence = params_of(EvidenceParams, vars(args))
        verdicts = self._verdicts(args, store, loaded.manifest.name)

        def batches() -> Iterator[pa.RecordBatch]:
            for src in sources:
                yield from iter_records(src, nfdump=args.nfdump)

        start = time.perf_counter()
        scored = score_log(model, batches, top=args.top, evidence=evidence, beacons=args.beacons, verdicts=verdicts)
        took = time.perf_counter() - start
        ranked = scored.records
        write_table(ranked, args.out)
        what = "queries" if model.kind == "dns" else "flows"
        how = (
            "DGA evidence"
            if model.kind == "dns"
            else (f"beacon evidence (weight {evidence.beacon_weight:g})" if args.beacons else "the topic model alone")
        )
        print(
            f"scored {scored.total:,} {what} with {loaded.ref} and {how} in {took:.1f}s; "
            f"{ranked.num_rows:,} rows -> {args.out}"
        )
        if verdicts:
            print(f"feedback: {len(verdicts)} verdict(s) applied")
        if args.summary:
            summary = ip_summary(ranked)
            write_table(summary, args.summary)
            print(f"per-IP summary: {summary.num_rows:,} IPs -> {args.summary}")
        if args.hosts:
            write_table(scored.hosts, args.hosts)
            print(f"hosts: {scored.hosts.num_rows:,} -> {args.hosts}")
        _print_hosts(scored.hosts, args.show_hosts)
        return 0

    def _hosts_cmd(self, args: argparse.Namespace) -> int:
        if args.scores is None and args.dns is None:
            raise ValidationError("expected --scores (a flow list), --dns (a DNS list) or both", field="--scores")
        store = open_store(registry_root(args)) if args.model is not None and args.feedback is None else None
        name = self.model_ref(args.model).name if args.model is not None else None
        verdicts = self._verdicts(args, store, name)
        hosts = hosts_from_lists(
            read_list(args.scores, "--scores") if args.scores is not None else None,
            read_list(args.dns, "--dns") if args.dns is not None else None,
            verdicts=verdicts,
            dup_factor=params_of(EvidenceParams, vars(args)).dup_factor,
            total_flows=args.total_flows,
        )
        write_table(hosts, args.out)
        print(
            f"hosts: {hosts.num_rows:,} -> {args.out}" + (f" ({len(verdicts)} verdict(s) applied)" if verdicts else "")
        )
        _print_hosts(hosts, args.show_hosts)
        return 0

    def _feedback_cmd(self, args: argparse.Namespace) -> int:
        ref = self.model_ref(args.model)
        log = FeedbackLog(args.log) if args.log else feedback_log(open_store(registry_root(args)), ref.name)
        if args.list:
            for v in log.read():
                print(f"{v.recorded}  {v.severity} ({SEVERITIES[v.severity]})  {v.kind:7}  {dict(v.match)}  {v.note}")
            return 0
        if args.severity is None:
            raise ValidationError("expected 1 (high), 2 (medium) or 3 (low risk)", field="--severity")
        pattern = {key: getattr(args, key) for key in PATTERN_FIELDS if getattr(args, key) is not None}
        if args.host is not None:
            if pattern.get("src_ip", args.host) != args.host:
                raise ValidationError("--host and --src-ip name the same field: give one", field="--host")
            pattern["src_ip"] = args.host
        if args.scores is not None:
            if pattern:
                raise ValidationError("give either --scores with --rank, or pattern fields, not both", field="--scores")
            if not args.rank:
                raise ValidationError("expected --rank with --scores", field="--rank")
            from mlscale.apps.threat.predictor import events_from_scores

            listed = read_list(args.scores, "--scores")
            if "host" in listed.column_names:  # a host list: rate the hosts
                verdicts = host_verdicts(listed, _ranks(args.rank), args.severity, args.note, str(ref.model))
            else:
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
        from mlscale.apps.threat.schema import FLOW_SCHEMA
        from mlscale.apps.threat.synthetic import iter_flows
        from mlscale.data.writers import PartWriter

        start = time.perf_counter()
        rows = 0
        with PartWriter(Path(args.out) / "flows", rows_per_file=1 << 23, schema=FLOW_SCHEMA, field="--out") as writer:
            for batch in iter_flows(
                args.rows, hosts=args.hosts, days=args.days, attack_rate=args.attack_rate, seed=args.seed
            ):
                writer.write(batch)
                rows += batch.num_rows
        took = time.perf_counter() - start
        print(f"{rows:,} flows in {took:.1f}s ({rows / max(took, 1e-9):,.0f} flows/s) -> {args.out}/flows")
        return 0
