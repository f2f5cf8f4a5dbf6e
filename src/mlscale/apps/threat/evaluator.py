"""``mlscale evaluate threat``: the labelled captures, beside Spot and an IsolationForest, in two suites.

- ``--suite standard`` (the default): :func:`~mlscale.apps.threat.evaluate.evaluate_threat`,
  the captures as labelled and seeded mixtures (ROC-AUC, precision@N);
- ``--suite evidence``: the tables of issue 18 (:mod:`~mlscale.apps.threat.study`):
  every capture's mixtures at 1% and 3% malicious over seeds 0-4 with
  ``mlscale+beacon`` and host precision@10, and a DNS log with generated
  domains (the DGA data set, evaluation only) mixed in at 1% and 2%.
  ``--quick`` runs one seed and one fraction of each, for a check in seconds;
  ``python -m benchmarks.threat_evidence quality`` stays the way to regenerate
  the published tables (it also chooses the beacon weight on validation seeds).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlscale.apps.base import Job, params_to_dict
from mlscale.apps.threat.evaluate import DEFAULT_FRACTIONS, METHODS, evaluate_threat
from mlscale.apps.threat.ingest import iter_records, list_sources, resolve_data
from mlscale.apps.threat.params import EvidenceParams, LdaParams
from mlscale.apps.threat.scoring import add_params_flags, params_of
from mlscale.engines import Engine
from mlscale.errors import DataError

__all__ = [
    "DEFAULT_DGA_NAMES",
    "DEFAULT_EVAL_DATA",
    "EVALUATE_FIELDS",
    "EVALUATOR",
    "SUITES",
    "ThreatEvaluator",
    "add_evaluate_arguments",
]

DEFAULT_EVAL_DATA = "stratosphere-zeek-labeled"
#: The DGA data set's names file under the data dir (generated and legitimate names; evaluation only).
DEFAULT_DGA_NAMES = ("dga-domains-wang2021", "domains_features.csv.gz")
#: The params ``evaluate threat`` takes (a method's own settings, such as Spot's words, win over others).
EVALUATE_FIELDS = ("topics", "passes", "prior_strength")
SUITES = ("standard", "evidence")
_STANDARD_METHODS = "spot,iforest,mlscale"


def _progress() -> Callable[[str], None] | None:
    return (lambda line: print(line, file=sys.stderr)) if sys.stderr.isatty() else None


def _labelled(specs: list[str], data_dir: Path, kind: str) -> dict[str, pa.Table]:
    """Each labelled log of ``kind`` under the specs, by its path relative to its spec."""
    out: dict[str, pa.Table] = {}
    for spec in specs:
        root = resolve_data(spec, data_dir)
        for src in list_sources(root, kind):  # type: ignore[arg-type]
            table = pa.Table.from_batches(list(iter_records(src)))
            if table.column("label").null_count == table.num_rows:
                print(f"skipped {src.path}: no labels")
                continue
            out[str(src.path.relative_to(root)) if root.is_dir() else src.path.name] = table
    return out


def _write(job: Job, report: Mapping[str, Any], markdown: str) -> None:
    out_json: Path | None = job.option("json")
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report: {out_json}")
    out_md: Path | None = job.option("markdown")
    if out_md is not None:
        out_md.parent.mkdir(parents=True, exist_ok=True)
        out_md.write_text(markdown + "\n")
        print(f"tables: {out_md}")


class ThreatEvaluator:
    """ROC-AUC and precision@N on labelled captures and seeded mixtures, beside Spot and IsolationForest."""

    param_defaults: Mapping[str, Any] = {}

    def evaluate(self, engine: Engine, job: Job, params: LdaParams) -> int:
        detector = {k: v for k, v in params_to_dict(params).items() if k in EVALUATE_FIELDS}
        if job.option("suite", "standard") == "evidence":
            return self._evidence(job, detector)
        captures = _labelled(job.option("data") or [DEFAULT_EVAL_DATA], job.data_dir, "flows")
        if not captures:
            raise DataError("no labelled flow logs to evaluate on", hint="pass --data with labelled Zeek logs")
        methods = [m.strip() for m in job.option("methods", _STANDARD_METHODS).split(",") if m.strip()]
        per_capture = bool(job.option("per_capture"))
        report = evaluate_threat(
            captures,
            fractions=tuple(job.option("fraction") or DEFAULT_FRACTIONS),
            seeds=job.option("seeds", 3),
            full=not job.option("no_capture"),
            methods=methods,
            params=detector,
            progress=_progress(),
        )
        print(report.markdown(per_capture=per_capture))
        if per_capture:
            print()
            print(report.markdown())
        _write(job, report.as_dict(), report.markdown() + "\n\n" + report.markdown(per_capture=True))
        return 0

    def _evidence(self, job: Job, detector: Mapping[str, Any]) -> int:
        """Flows with beacons and hosts, then DNS with generated domains (:mod:`~mlscale.apps.threat.study`)."""
        from mlscale.apps.threat.study import (
            DNS_METHODS,
            FLOW_METHODS,
            dns_study,
            flow_study,
            load_dga_names,
            study_markdown,
        )

        quick = bool(job.option("quick"))
        seeds = range(int(job.option("seeds", 1 if quick else 5)))
        weight = params_of(EvidenceParams, job.options).beacon_weight
        specs = job.option("data") or [DEFAULT_EVAL_DATA]
        captures = _labelled(specs, job.data_dir, "flows")
        if not captures:
            raise DataError("no labelled flow logs to evaluate on", hint="pass --data with labelled Zeek logs")
        methods = [m.strip() for m in job.option("methods", ",".join(FLOW_METHODS)).split(",") if m.strip()]
        flows = flow_study(
            captures,
            fractions=tuple(job.option("fraction") or ((0.03,) if quick else (0.01, 0.03))),
            seeds=seeds,
            methods=methods,
            params={"detector": detector, "beacon_weight": weight},
            progress=_progress(),
        )
        tables = [study_markdown(flows)]
        report: dict[str, Any] = {"suite": "evidence", "beacon_weight": weight, "seeds": list(seeds), "flows": flows}
        if not job.option("no_dns"):
            dns_logs = _labelled(job.option("dns_data") or specs, job.data_dir, "dns")
            if not dns_logs:
                print("no labelled DNS log among the data: no DNS table (pass --dns-data, or --no-dns)")
            names_file: Path = job.option("dga_names") or job.data_dir.joinpath(*DEFAULT_DGA_NAMES)
            if dns_logs and not Path(names_file).is_file():
                raise DataError(
                    f"{names_file}: no such file (the generated and legitimate names mixed into the DNS log)",
                    hint=f"fetch it with `mlscale data fetch {DEFAULT_DGA_NAMES[0]}`, pass --dga-names, or --no-dns",
                )
            dns_methods = [m.strip() for m in job.option("dns_methods", ",".join(DNS_METHODS)).split(",") if m.strip()]
            if dns_logs:
                generated, legit = load_dga_names(Path(names_file))
                report["dns"] = {}
                for name, dns in dns_logs.items():
                    rows = dns_study(
                        dns,
                        generated,
                        legit,
                        fractions=tuple(job.option("dns_fraction") or ((0.02,) if quick else (0.01, 0.02))),
                        seeds=seeds,
                        methods=dns_methods,
                        progress=_progress(),
                    )
                    report["dns"][name] = rows
                    tables.append(f"DNS: {name}\n\n" + study_markdown(rows, kind="dns"))
        text = "\n\n".join(tables)
        print(text)
        _write(job, report, text)
        return 0


EVALUATOR = ThreatEvaluator()


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """The threat app's own flags of ``mlscale evaluate threat`` (both suites)."""
    parser.add_argument(
        "--suite",
        choices=SUITES,
        default="standard",
        help="standard: captures and mixtures; evidence: beacons, hosts and generated domains by seed "
        "(issue 18's tables; default: %(default)s)",
    )
    parser.add_argument(
        "--data",
        action="append",
        default=None,
        help=f"labelled flow logs: a file or folder, each file one capture (repeatable; default: "
        f"the {DEFAULT_EVAL_DATA} data set)",
    )
    parser.add_argument(
        "--fraction",
        action="append",
        type=float,
        default=None,
        help="malicious share of a seeded mixture (repeatable; default: 0.01 0.02 0.05; evidence: 0.01 0.03)",
    )
    parser.add_argument(
        "--seeds", type=int, default=None, help="mixtures per fraction (default: 3; evidence: 5, seeds 0..N-1)"
    )
    parser.add_argument("--no-capture", action="store_true", help="skip the captures as labelled")
    parser.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated, from {', '.join(METHODS)} (default: spot,iforest,mlscale; evidence: "
        "spot,iforest,mlscale,mlscale+beacon)",
    )
    ev = parser.add_argument_group("evidence suite")
    ev.add_argument("--quick", action="store_true", help="one seed, one fraction of each (a check in seconds)")
    ev.add_argument(
        "--dns-data",
        action="append",
        default=None,
        help="labelled DNS logs to mix generated names into (repeatable; default: those among --data)",
    )
    ev.add_argument(
        "--dga-names",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"generated and legitimate names (default: DATA_DIR/{'/'.join(DEFAULT_DGA_NAMES)})",
    )
    ev.add_argument(
        "--dns-fraction",
        action="append",
        type=float,
        default=None,
        help="share of generated queries (repeatable; default: 0.01 0.02)",
    )
    ev.add_argument("--dns-methods", default=None, help="comma-separated (default: all DNS methods)")
    ev.add_argument("--no-dns", action="store_true", help="skip the DNS table")
    add_params_flags(parser, EvidenceParams, "beacon evidence", only=("beacon_weight",))
    parser.add_argument("--per-capture", action="store_true", help="print every capture's rows")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the tables as Markdown")
