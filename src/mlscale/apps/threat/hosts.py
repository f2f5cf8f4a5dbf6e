"""Per-host ranking: which machines look compromised, and why.

A host (an IP that *originates* traffic: the ``src_ip`` of flows, the
``client_ip`` of DNS queries) collects three kinds of evidence, each in [0, 1]:

- ``flow``: how high its most suspicious flow ranks in the scored list
  (``1 - (rank - 1) / flows``: 1 for the first flow of the list);
- ``beacon``: the strongest beacon score of its series (:mod:`~mlscale.apps.threat.beacon`);
- ``dns``: how high its most generated-looking query ranks among the
  queries (:mod:`~mlscale.apps.threat.dga`), same scale as ``flow``.

``score`` is their sum (0..3, higher = more suspicious) and ``reasons`` says,
in words, which evidence counted (each above 0.9 for the rank-based ones,
above 0.3 for beacons). Analyst feedback reuses the event feedback's
mechanism: a low-risk *pattern* verdict (``mlscale threat feedback
--src-ip HOST --severity 3``) matches hosts as it matches flows
(:func:`~mlscale.apps.threat.feedback.pattern_weights`), and a matching
host's score is divided by its weight (``1 + dup_factor``), so it leaves the
top of the next ranking, as its flows leave the top of the next training.

>>> import pyarrow as pa
>>> flows = pa.table({"src_ip": ["10.0.0.1", "10.0.0.2", "10.0.0.1"], "rank": [1, 2, 3],
...                   "dst_ip": ["a", "b", "c"], "dst_port": [1, 2, 3], "proto": ["tcp"] * 3})
>>> rank_hosts(flows).column("host").to_pylist()
['10.0.0.1', '10.0.0.2']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.apps.threat.beacon import BeaconConfig, beacon_table
from mlscale.apps.threat.evidence import DEFAULT_BEACON_WEIGHT
from mlscale.apps.threat.feedback import DEFAULT_DUP_FACTOR, PATTERN_FIELDS, Verdict, pattern_weights
from mlscale.apps.threat.model import ThreatDetector
from mlscale.apps.threat.rank import rank_records

__all__ = ["HOST_COLUMNS", "LogReport", "analyse_log", "host_precision_at", "rank_hosts"]

F64 = npt.NDArray[np.float64]
HOST_COLUMNS = ("rank", "host", "score", "flow", "beacon", "dns", "flows", "queries", "reasons")
_STRONG_RANK = 0.9
_STRONG_BEACON = 0.3


def _best_per_host(
    hosts: pa.Array | pa.ChunkedArray, values: F64, extra: list[Any]
) -> dict[str, tuple[float, Any, int]]:
    """Per host: the highest value, the ``extra`` item at that row, and the host's row count."""
    out: dict[str, tuple[float, Any, int]] = {}
    if len(values) == 0:
        return out
    table = pa.table({"h": hosts, "v": pa.array(values), "i": pa.array(np.arange(len(values)))})
    table = table.take(pc.sort_indices(table, sort_keys=[("v", "descending"), ("i", "ascending")]))
    grouped = table.group_by("h", use_threads=False).aggregate([("v", "first"), ("i", "first"), ("v", "count")])
    for h, v, i, n in zip(
        *(grouped.column(c).to_pylist() for c in ("h", "v_first", "i_first", "v_count")), strict=True
    ):
        if h is not None:
            out[h] = (float(v), extra[i], int(n))
    return out


def rank_hosts(
    flows: pa.Table | None = None,
    *,
    beacons: pa.Table | None = None,
    dns: pa.Table | None = None,
    verdicts: Sequence[Verdict] = (),
    dup_factor: int = DEFAULT_DUP_FACTOR,
    total_flows: int | None = None,
) -> pa.Table:
    """One row per host, most suspicious first (:data:`HOST_COLUMNS`).

    ``flows``: a ranked flow list (``mlscale threat score`` output: ``rank``,
    ``src_ip``, ``dst_ip``, ``dst_port``, ``proto``), either every flow or
    only a top, then with ``total_flows`` the number of flows ranked (hosts
    outside the top get no flow evidence); ``beacons``: :func:`~mlscale.apps.threat.beacon.beacon_table`;
    ``dns``: DNS queries with ``client_ip``, ``query`` and a ``dga`` column
    (:func:`~mlscale.apps.threat.dga.dga_evidence`); ``verdicts``: the
    model's feedback log.
    """
    evidence: dict[str, dict[str, Any]] = {}

    def slot(host: str) -> dict[str, Any]:
        return evidence.setdefault(host, {"flow": 0.0, "beacon": 0.0, "dns": 0.0, "flows": 0, "queries": 0, "why": []})

    if flows is not None and flows.num_rows:
        rank = np.asarray(flows.column("rank").to_numpy(), np.float64)
        n = max(float(total_flows or rank.max()), 1.0)
        pct = 1.0 - (rank - 1.0) / n
        what = [
            f"flow to {d}:{p}/{pr} ranks {int(r)} of {int(n)}"
            for d, p, pr, r in zip(
                *(flows.column(c).to_pylist() for c in ("dst_ip", "dst_port", "proto")), rank.tolist(), strict=True
            )
        ]
        for host, (v, why, count) in _best_per_host(flows.column("src_ip"), pct, what).items():
            s = slot(host)
            s["flow"], s["flows"] = v, count
            if v >= _STRONG_RANK:
                s["why"].append(why)
    if beacons is not None and beacons.num_rows:
        values = np.asarray(beacons.column("beacon").to_numpy(), np.float64)
        reasons = beacons.column("reason").to_pylist()
        for host, (v, why, _) in _best_per_host(beacons.column("src_ip"), values, reasons).items():
            s = slot(host)
            s["beacon"] = v
            if v >= _STRONG_BEACON:
                s["why"].append(f"beacons {why}")
    if dns is not None and dns.num_rows:
        dga = np.asarray(dns.column("dga").to_numpy(), np.float64)
        by_dga = np.argsort(-dga, kind="stable")
        pct = np.empty(dga.size)
        pct[by_dga] = 1.0 - np.arange(dga.size) / max(dga.size, 1)
        queries = dns.column("query").to_pylist()
        for host, (v, q, count) in _best_per_host(dns.column("client_ip"), pct, queries).items():
            s = slot(host)
            s["dns"], s["queries"] = v, count
            if v >= _STRONG_RANK:
                s["why"].append(f"queries generated-looking names such as {q}")
    hosts = sorted(evidence)
    score = np.array([evidence[h]["flow"] + evidence[h]["beacon"] + evidence[h]["dns"] for h in hosts], np.float64)
    if hosts:
        table = pa.table({f: pa.nulls(len(hosts), pa.string()) for f in PATTERN_FIELDS if f != "src_ip"})
        table = table.append_column("src_ip", pa.array(hosts, pa.string()))
        table = _typed_pattern_table(table)
        w = pattern_weights(verdicts, dup_factor)(table)
        if w is not None:
            score = score / w
            for h, wi in zip(hosts, w.tolist(), strict=True):
                if wi > 1:
                    evidence[h]["why"].append("rated low risk by an analyst")
    order: list[int] = sorted(range(len(hosts)), key=lambda i: (-score[i], hosts[i]))
    return pa.table(
        {
            "rank": pa.array(np.arange(1, len(hosts) + 1), pa.int64()),
            "host": pa.array([hosts[i] for i in order], pa.string()),
            "score": pa.array(score[order] if hosts else np.zeros(0), pa.float64()),
            **{
                k: pa.array([float(evidence[hosts[i]][k]) for i in order], pa.float64())
                for k in ("flow", "beacon", "dns")
            },
            "flows": pa.array([evidence[hosts[i]]["flows"] for i in order], pa.int64()),
            "queries": pa.array([evidence[hosts[i]]["queries"] for i in order], pa.int64()),
            "reasons": pa.array(["; ".join(evidence[hosts[i]]["why"]) for i in order], pa.string()),
        }
    )


def _typed_pattern_table(table: pa.Table) -> pa.Table:
    """Pattern columns with the flow schema's types, so a verdict's values compare."""
    from mlscale.apps.threat.schema import FLOW_SCHEMA

    return pa.table({f: table.column(f).cast(FLOW_SCHEMA.field(f).type) for f in PATTERN_FIELDS})


def host_precision_at(ranked: pa.Table, malicious: set[str], k: int = 10) -> float:
    """Share of malicious hosts among the first ``k`` of a host ranking, out of ``min(k, len(malicious))``.

    >>> t = pa.table({"host": ["a", "b", "c"]})
    >>> host_precision_at(t, {"a", "c"}, k=2)
    0.5
    """
    if not malicious:
        return float("nan")
    top = ranked.column("host").to_pylist()[:k]
    return sum(h in malicious for h in top) / min(k, len(malicious))


@dataclass(frozen=True)
class LogReport:
    """What :func:`analyse_log` gives: the ranked flows, the beacon table, the host ranking and
    the number of flows scored."""

    flows: pa.Table
    beacons: pa.Table
    hosts: pa.Table
    total_flows: int = 0


def analyse_log(
    model: ThreatDetector,
    batches: Callable[[], Iterable[pa.RecordBatch]],
    *,
    top: int | None = None,
    beacon_weight: float = DEFAULT_BEACON_WEIGHT,
    beacon_config: BeaconConfig | None = None,
    verdicts: Sequence[Verdict] = (),
    dup_factor: int = DEFAULT_DUP_FACTOR,
) -> LogReport:
    """Two passes over a flow log: beacon evidence, then every flow scored with it and ranked
    (``top`` kept, memory bounded by it and by the series), then the hosts.

    ``batches`` opens the log afresh for each pass (``lambda: iter_flows(path)``).
    A low-risk pattern verdict leaves its flows out of the beacon evidence and lowers its hosts.
    """
    weights = pattern_weights(verdicts, dup_factor) if verdicts else None
    beacons = beacon_table(batches(), beacon_config, weights=weights)
    total = 0

    def counted() -> Iterable[pa.RecordBatch]:
        nonlocal total
        for batch in batches():
            total += batch.num_rows
            yield batch

    ranked = rank_records(model, counted(), top=top, beacons=beacons, beacon_weight=beacon_weight)
    hosts = rank_hosts(ranked, beacons=beacons, verdicts=verdicts, dup_factor=dup_factor, total_flows=total)
    return LogReport(ranked, beacons, hosts, total)
