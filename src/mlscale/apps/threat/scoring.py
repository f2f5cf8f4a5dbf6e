"""A log scored with all its evidence, and the host ranking: what ``mlscale threat score`` and ``threat hosts`` do.

- :func:`score_log`, flow models: :func:`~mlscale.apps.threat.hosts.analyse_log`
  (a beacon pass over the log, then every flow scored with the beacon
  evidence folded in, then the hosts), or the topic model alone with
  ``beacons=False``; DNS models: :func:`~mlscale.apps.threat.dga.score_dns`
  (the generated-domain evidence of the whole log joined with the DNS LDA),
  then the hosts of its clients. Both apply the model's analyst verdicts to
  the host ranking (and, for flows, to the beacon evidence);
- :func:`hosts_from_lists`: the host ranking of score files already written
  (a flow list, a DNS list or both), so a ranking can be rebuilt or joined
  without scoring again;
- :func:`host_verdicts`: low-risk (or any) verdicts on rows of a host list,
  recorded as the pattern ``src_ip = host`` that the next training and the
  next ranking apply;
- :func:`add_params_flags` / :func:`params_of`: flags generated from a params
  class (:class:`~mlscale.apps.threat.params.EvidenceParams`) for the app's own
  commands, whose defaults stay in that class.

>>> import pyarrow as pa
>>> flows = pa.table({"rank": [1, 2], "src_ip": ["10.0.0.9", "10.0.0.2"], "dst_ip": ["a", "b"],
...                   "dst_port": [1177, 443], "proto": ["tcp", "tcp"], "beacon": [0.8, 0.0],
...                   "beacon_reason": ["every 60.0 s +- 0.1 s to a:1177/tcp", None]})
>>> hosts = hosts_from_lists(flows)
>>> hosts.column("host").to_pylist(), hosts.column("beacon").to_pylist()
(['10.0.0.9', '10.0.0.2'], [0.8, 0.0])
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from mlscale.apps.base import params_from_dict
from mlscale.apps.threat.dga import score_dns
from mlscale.apps.threat.feedback import Verdict
from mlscale.apps.threat.hosts import analyse_log, rank_hosts
from mlscale.apps.threat.model import ThreatDetector
from mlscale.apps.threat.params import EvidenceParams
from mlscale.apps.threat.rank import rank_records
from mlscale.apps.threat.schema import DNS_SCHEMA
from mlscale.errors import DataError, ValidationError

__all__ = [
    "ScoredLog",
    "add_params_flags",
    "host_verdicts",
    "hosts_from_lists",
    "params_of",
    "read_list",
    "score_log",
]

P = TypeVar("P")
_FLOW_LIST = ("rank", "src_ip", "dst_ip", "dst_port", "proto")
_DNS_LIST = ("client_ip", "query", "dga")


# -- flags from a params class ----------------------------------------------------------------------


def add_params_flags(
    parser: argparse.ArgumentParser, cls: type[Any], title: str, *, only: Sequence[str] | None = None
) -> None:
    """One ``--field-name`` flag per field of ``cls`` (``only``: these fields; help and default from its
    :func:`~mlscale.apps.base.param`).

    The parser default is None, so :func:`params_of` knows what the user typed; the default shown is the class's.
    """
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if only is not None and f.name not in only:
            continue
        kind = hints[f.name]
        group.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f"evidence_{f.name}",
            type=kind if isinstance(kind, type) else str,
            metavar=f.name.upper(),
            default=None,
            help=f"{f.metadata.get('help', '')} (default: {f.default})",
        )


def params_of(cls: type[P], options: Mapping[str, Any]) -> P:
    """The ``cls`` instance of the flags :func:`add_params_flags` added, checked against its metadata."""
    given = {
        f.name: options[f"evidence_{f.name}"]
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if options.get(f"evidence_{f.name}") is not None
    }
    return params_from_dict(cls, given)


# -- scoring a log --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredLog:
    """The ranked records (flows or DNS queries, ``top`` kept), the host ranking, the records scored
    and the beacon table (None for DNS models or without beacon evidence)."""

    records: pa.Table
    hosts: pa.Table
    total: int
    beacons: pa.Table | None


def score_log(
    model: ThreatDetector,
    batches: Callable[[], Iterable[pa.RecordBatch]],
    *,
    top: int | None = None,
    evidence: EvidenceParams | None = None,
    beacons: bool = True,
    verdicts: Sequence[Verdict] = (),
) -> ScoredLog:
    """Score a log with its evidence and rank its hosts (see the module's docstring).

    ``batches`` opens the log afresh each time it is called (flows are read twice with beacon
    evidence: the series first, then the scores). A DNS log is read whole: its generated-domain
    evidence compares every name with the log's others.
    """
    ev = evidence or EvidenceParams()
    if model.kind == "dns":
        table = pa.Table.from_batches([b.cast(DNS_SCHEMA) for b in batches()], schema=DNS_SCHEMA)
        scored = score_dns(table, model)
        hosts = rank_hosts(dns=scored, verdicts=verdicts, dup_factor=ev.dup_factor)
        return ScoredLog(scored if top is None else scored.slice(0, top), hosts, table.num_rows, None)
    if beacons:
        report = analyse_log(
            model,
            batches,
            top=top,
            beacon_weight=ev.beacon_weight,
            beacon_config=ev.beacon_config(),
            verdicts=verdicts,
            dup_factor=ev.dup_factor,
        )
        return ScoredLog(report.flows, report.hosts, report.total_flows, report.beacons)
    total = 0

    def counted() -> Iterable[pa.RecordBatch]:
        nonlocal total
        for batch in batches():
            total += batch.num_rows
            yield batch

    ranked = rank_records(model, counted(), top=top)
    hosts = rank_hosts(ranked, verdicts=verdicts, dup_factor=ev.dup_factor, total_flows=total)
    return ScoredLog(ranked, hosts, total, None)


# -- host rankings from score files ---------------------------------------------------------------------


def read_list(path: Path, field: str) -> pa.Table:
    """A list written by ``mlscale threat score`` / ``threat hosts`` (Parquet, CSV or JSON lines, by suffix)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file", hint=f"{field} takes a list written by `mlscale threat score`")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            return pacsv.read_csv(path)
        if suffix in (".json", ".jsonl"):
            return pajson.read_json(path)
    except pa.ArrowInvalid as err:
        raise DataError(f"{path}: cannot read it ({err})") from None
    raise ValidationError(f"{path.name}: expected a .parquet, .csv or .json list", field=field)


def _require(table: pa.Table, columns: Sequence[str], what: str, field: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise DataError(
            f"{field}: not {what} (missing {', '.join(missing)})",
            hint="pass the file `mlscale threat score` wrote for a flow model to --scores, for a DNS model to --dns",
        )


def hosts_from_lists(
    flows: pa.Table | None = None,
    dns: pa.Table | None = None,
    *,
    verdicts: Sequence[Verdict] = (),
    dup_factor: int = EvidenceParams().dup_factor,
    total_flows: int | None = None,
) -> pa.Table:
    """The host ranking of a scored flow list (its ``beacon``/``beacon_reason`` columns give the beacon
    evidence, when it has them) and/or a scored DNS list (``client_ip``, ``query``, ``dga``).

    A top-only flow list needs ``total_flows`` (how many flows were ranked), else the last rank is taken.
    """
    if flows is None and dns is None:
        raise ValidationError("expected a flow list, a DNS list or both", field="--scores")
    beacons = None
    if flows is not None:
        _require(flows, _FLOW_LIST, "a flow list from `mlscale threat score`", "--scores")
        if "beacon" in flows.column_names and "beacon_reason" in flows.column_names:
            beacon = pc.fill_null(flows.column("beacon"), 0.0)
            keep = pc.greater(beacon, 0.0)
            beacons = pa.table(
                {
                    "src_ip": flows.column("src_ip").cast(pa.string()).filter(keep),
                    "beacon": beacon.cast(pa.float64()).filter(keep),
                    "reason": flows.column("beacon_reason").cast(pa.string()).filter(keep),
                }
            )
        flows = flows.set_column(
            flows.schema.get_field_index("src_ip"), "src_ip", flows.column("src_ip").cast(pa.string())
        )
    if dns is not None:
        _require(dns, _DNS_LIST, "a DNS list from `mlscale threat score` (a DNS model)", "--dns")
        dns = dns.set_column(
            dns.schema.get_field_index("client_ip"), "client_ip", dns.column("client_ip").cast(pa.string())
        )
    if total_flows is not None and total_flows < 1:
        raise ValidationError(f"expected >= 1, got {total_flows}", field="--total-flows")
    return rank_hosts(
        flows, beacons=beacons, dns=dns, verdicts=verdicts, dup_factor=dup_factor, total_flows=total_flows
    )


def host_verdicts(
    hosts: pa.Table, ranks: Sequence[int], severity: int, note: str = "", model: str = ""
) -> list[Verdict]:
    """One pattern verdict (``src_ip = host``) per row of a host list with these ranks."""
    _require(hosts, ("rank", "host"), "a host list from `mlscale threat score --hosts` or `threat hosts`", "--scores")
    rank = np.asarray(hosts.column("rank").to_numpy(zero_copy_only=False), np.int64)
    names = hosts.column("host").cast(pa.string()).to_pylist()
    by_rank = dict(zip(rank.tolist(), names, strict=True))
    absent = [r for r in ranks if r not in by_rank]
    if absent:
        raise ValidationError(f"no host with rank {absent[:5]} in the list", field="--rank")
    return [Verdict(severity, "pattern", {"src_ip": by_rank[r]}, note=note, model=model) for r in ranks]
