"""Evaluation of the threat evidence (flows with beacons, DNS with generated domains, hosts), by seeds.

Extends :mod:`mlscale.apps.threat.evaluate` (whose metrics and mixtures it
reuses) with what issue 18 asks for:

- :func:`flow_study`: every labelled capture, mixtures at each malicious
  fraction over several seeds, reported as mean and standard deviation of
  ROC-AUC and precision@N (N = malicious flows) per method, plus host-level
  precision@10 (:func:`~mlscale.apps.threat.hosts.host_precision_at`; a host
  is malicious when it originates a malicious flow);
- :func:`choose_beacon_weight`: the beacon weight that maximises the mean
  ROC-AUC over *validation* mixtures (seeds disjoint from the study's);
- :func:`dns_mixture` and :func:`dns_study`: generated domains (the DGA data
  set's ``dga`` names, evaluation only) mixed into a real DNS log at a given
  fraction of the queries, from a few of its clients, together with as many
  one-off legitimate names (the data set's ``legit`` names, from any client)
  so that "a name asked once" alone cannot tell them apart. Both get a top
  level domain drawn from the same list and ``rcode``/``frame_len`` drawn from
  the log's own, so no field but the name and the asking pattern differs.

Flow methods: ``spot``, ``iforest``, ``mlscale`` (as in ``evaluate``) and
``mlscale+beacon`` (:mod:`~mlscale.apps.threat.evidence`). DNS methods:
``spot`` (Spot's DNS LDA and scorer), ``iforest`` (IsolationForest on the
numbers Spot's DNS words are made of), ``lda`` (mlscale's calibrated DNS
LDA), ``dga`` (the DGA evidence alone), ``char`` (its character features
alone: no rarity, no per-client features) and ``mlscale`` (LDA + DGA,
:func:`~mlscale.apps.threat.dga.dns_scores`).

>>> import numpy as np
>>> mean_sd([0.9, 1.0])
'0.950 +- 0.071'
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.apps.threat.beacon import beacon_table
from mlscale.apps.threat.dga import dga_evidence, dns_scores
from mlscale.apps.threat.evaluate import isolation_forest_scores, labels_of, ranking_metrics, seeded_mixture
from mlscale.apps.threat.evidence import DEFAULT_BEACON_WEIGHT, flow_scores
from mlscale.apps.threat.hosts import host_precision_at, rank_hosts
from mlscale.apps.threat.model import ThreatDetector
from mlscale.apps.threat.words import char_entropy
from mlscale.errors import DataError, ValidationError

__all__ = [
    "DNS_METHODS",
    "FLOW_METHODS",
    "TLDS",
    "choose_beacon_weight",
    "dns_iforest_scores",
    "dns_mixture",
    "dns_study",
    "flow_study",
    "load_dga_names",
    "mean_sd",
    "study_markdown",
]

F64 = npt.NDArray[np.float64]
FLOW_METHODS = ("spot", "iforest", "mlscale", "mlscale+beacon")
DNS_METHODS = ("spot", "iforest", "lda", "char", "dga", "mlscale")
#: Top-level domains given to mixed-in names, generated and legitimate alike.
TLDS = ("com", "net", "org", "info", "ru", "biz", "de", "io")


def mean_sd(values: Sequence[float]) -> str:
    """``mean +- standard deviation`` (sample, ddof=1; 0 for one value) with three decimals."""
    arr = np.asarray(values, np.float64)
    sd = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return f"{float(arr.mean()):.3f} +- {sd:.3f}"


def _flow_method(name: str, table: pa.Table, seed: int, params: Mapping[str, Any]) -> tuple[F64, pa.Table | None]:
    """A method's scores (lower = more suspicious) and, for mlscale+beacon, the beacon table."""
    det_params = dict(params.get("detector", {}))
    if name == "iforest":
        return isolation_forest_scores(table, seed), None
    if name == "spot":
        det = ThreatDetector(**{**det_params, "words": "spot", "hour_bins": 24, "scorer": "spot", "seed": seed})
        return det.fit(table).score(table).score, None
    if name == "mlscale":
        return ThreatDetector(**{**det_params, "seed": seed}).fit(table).score(table).score, None
    if name == "mlscale+beacon":
        det = ThreatDetector(**{**det_params, "seed": seed}).fit(table)
        beacons = beacon_table(table)
        weight = float(params.get("beacon_weight", DEFAULT_BEACON_WEIGHT))
        return flow_scores(det, table, beacons, weight=weight).score, beacons
    raise ValidationError(f"unknown method {name!r}; expected {', '.join(FLOW_METHODS)}", field="methods")


def _host_p10(table: pa.Table, score: F64, beacons: pa.Table | None, y: npt.NDArray[np.bool_]) -> float:
    order = np.argsort(score, kind="stable")
    rank = np.empty(score.size, np.int64)
    rank[order] = np.arange(1, score.size + 1)
    flows = table.select(["src_ip", "dst_ip", "dst_port", "proto"]).append_column("rank", pa.array(rank))
    malicious = set(table.column("src_ip").filter(pa.array(y)).to_pylist())
    return host_precision_at(rank_hosts(flows, beacons=beacons), malicious, 10)


def flow_study(
    captures: Mapping[str, pa.Table],
    *,
    fractions: Sequence[float] = (0.01, 0.03),
    seeds: Sequence[int] = range(5),
    methods: Sequence[str] = FLOW_METHODS,
    params: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (capture, fraction, method): per-seed metrics and their mean and spread."""
    bad = [m for m in methods if m not in FLOW_METHODS]
    if bad:
        raise ValidationError(f"unknown method(s) {bad}; expected {', '.join(FLOW_METHODS)}", field="methods")
    if not seeds:
        raise ValidationError("expected at least one seed", field="seeds")
    given = dict(params or {})
    rows = []
    for name, table in captures.items():
        if not labels_of(table).any():
            raise DataError(f"{name}: no malicious labels, so nothing to evaluate against")
        for fraction in fractions:
            mixes = [seeded_mixture(table, fraction, s) for s in seeds]
            for method in methods:
                aucs, pns, hosts = [], [], []
                for seed, mix in zip(seeds, mixes, strict=True):
                    y = labels_of(mix)
                    score, beacons = _flow_method(method, mix, seed, given)
                    m = ranking_metrics(y, score)
                    aucs.append(m["roc_auc"])
                    pns.append(m["precision_at_n"])
                    hosts.append(_host_p10(mix, score, beacons, y))
                row = {
                    "capture": name,
                    "fraction": fraction,
                    "method": method,
                    "flows": int(np.mean([t.num_rows for t in mixes])),
                    "malicious": int(np.mean([labels_of(t).sum() for t in mixes])),
                    "roc_auc": aucs,
                    "precision_at_n": pns,
                    "host_p10": hosts,
                }
                rows.append(row)
                if progress is not None:
                    progress(
                        f"{name:10} {fraction:.0%} {method:15} ROC-AUC {mean_sd(aucs)}  host p@10 {mean_sd(hosts)}"
                    )
    return rows


def choose_beacon_weight(
    captures: Mapping[str, pa.Table],
    *,
    grid: Sequence[float] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
    fractions: Sequence[float] = (0.01, 0.03),
    seeds: Sequence[int] = range(100, 105),
    params: Mapping[str, Any] | None = None,
) -> tuple[float, dict[float, float]]:
    """The beacon weight with the best mean ROC-AUC over validation mixtures, and each weight's mean.

    The LDA and the beacon table are fitted once per mixture; only the fold-in changes.
    """
    from mlscale.apps.threat.evidence import with_beacons

    det_params = dict((params or {}).get("detector", {}))
    per: dict[float, list[float]] = {w: [] for w in grid}
    for table in captures.values():
        for fraction in fractions:
            for seed in seeds:
                mix = seeded_mixture(table, fraction, seed)
                y = labels_of(mix)
                det = ThreatDetector(**{**det_params, "seed": seed}).fit(mix)
                ev = flow_scores(det, mix, beacon_table(mix), weight=0.0)
                for w in grid:
                    per[w].append(ranking_metrics(y, with_beacons(det, ev.model, ev.beacon, w))["roc_auc"])
    means = {w: float(np.mean(v)) for w, v in per.items()}
    best = max(grid, key=lambda w: (means[w], -w))
    return best, means


# -- DNS ------------------------------------------------------------------------------------


def load_dga_names(path: Path) -> tuple[list[str], list[str]]:
    """(generated, legitimate) names of the DGA data set (``domain,class,...`` CSV, gzip or not)."""
    path = Path(path)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    generated: list[str] = []
    legit: list[str] = []
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or header[:2] != ["domain", "class"]:
            raise DataError(f"{path.name}: expected a 'domain,class,...' header, got {header!r}")
        for row in reader:
            if len(row) >= 2 and row[0]:
                (generated if row[1] == "dga" else legit).append(row[0].lower())
    if not generated or not legit:
        raise DataError(f"{path.name}: needs both 'dga' and 'legit' rows")
    return generated, legit


def dns_mixture(
    dns: pa.Table,
    generated: Sequence[str],
    legit: Sequence[str],
    fraction: float,
    seed: int,
    *,
    clients: int = 3,
) -> tuple[pa.Table, npt.NDArray[np.bool_]]:
    """A real DNS log plus generated names making ``fraction`` of the queries (from ``clients`` of its
    clients) and as many one-off legitimate names (from any client); returns the table and the truth.

    The log's own malicious-labelled queries are dropped, so that the truth is exactly "mixed in
    as generated".
    """
    if not 0 < fraction < 0.5:
        raise ValidationError(f"expected 0 < fraction < 0.5, got {fraction}", field="fraction")
    rng = np.random.default_rng(seed)
    base = dns.filter(
        pc.invert(pc.fill_null(pc.match_substring(pc.utf8_lower(dns.column("label")), "malicious"), False))
    )
    if base.num_rows == 0:
        raise DataError("the DNS log has no queries to mix into")
    n = int(fraction * base.num_rows / (1 - 2 * fraction))  # floor: never above the fraction
    if n < 1 or n > min(len(generated), len(legit)):
        raise DataError(f"cannot mix {n} names from {len(generated)} generated and {len(legit)} legitimate ones")
    known = pc.unique(base.column("client_ip")).drop_null().to_pylist()
    bots = rng.choice(known, size=min(clients, len(known)), replace=False)
    ts = np.asarray(base.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False), np.int64)
    rcode = np.asarray(base.column("rcode").to_numpy(zero_copy_only=False), np.int32)
    frame = np.asarray(base.column("frame_len").to_numpy(zero_copy_only=False), np.int32)
    server = base.column("server_ip").combine_chunks()

    def make(names: Sequence[str], who: Any, label: str, detail: str) -> pa.Table:
        k = len(names)
        pick = rng.integers(0, base.num_rows, k)
        return pa.table(
            {
                "line": pa.array(np.zeros(k, np.int64)),
                "flow_id": pa.nulls(k, pa.string()),
                "ts": pa.array(rng.integers(ts.min(), ts.max() + 1, k)).cast(dns.schema.field("ts").type),
                "client_ip": pa.array(rng.choice(who, k), pa.string()),
                "server_ip": server.take(pa.array(pick)),
                "query": pa.array(
                    [f"{x}.{TLDS[i]}" for x, i in zip(names, rng.integers(0, len(TLDS), k), strict=True)]
                ),
                "qtype": pa.array(np.ones(k, np.int32)),
                "rcode": pa.array(rcode[pick]),
                "frame_len": pa.array(frame[pick]),
                "label": pa.array([label] * k, pa.string()),
                "detailed_label": pa.array([detail] * k, pa.string()),
            },
            schema=dns.schema,
        )

    gen = make(list(rng.choice(np.asarray(generated), n, replace=False)), bots, "Malicious", "mixed-generated")
    ok = make(list(rng.choice(np.asarray(legit), n, replace=False)), known, "Benign", "mixed-legitimate")
    table = pa.concat_tables([base.cast(dns.schema), ok, gen])
    table = table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending")]))
    truth = np.asarray(pc.fill_null(pc.equal(table.column("detailed_label"), "mixed-generated"), False), bool)
    return table, truth


def dns_iforest_scores(table: pa.Table, seed: int = 0, trees: int = 200) -> F64:
    """IsolationForest (lower = more anomalous) on the numbers Spot's DNS words are made of."""
    from sklearn.ensemble import IsolationForest

    query = pc.fill_null(table.column("query"), "")
    sub = pc.replace_substring_regex(query, r"\.?[^.]+\.[^.]+$", "")

    def num(values: Any) -> F64:
        return np.asarray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False), np.float64)

    features = np.column_stack(
        [
            num(table.column("frame_len")),
            num(pc.utf8_length(query)),
            num(pc.utf8_length(sub)),
            char_entropy(sub),
            num(pc.count_substring(query, ".")),
            num(table.column("qtype")),
            num(table.column("rcode")),
        ]
    )
    forest = IsolationForest(n_estimators=trees, random_state=seed).fit(features)
    return np.asarray(forest.score_samples(features), np.float64)


def _dns_method(name: str, table: pa.Table, seed: int) -> F64:
    if name == "iforest":
        return dns_iforest_scores(table, seed)
    if name == "spot":
        return ThreatDetector(kind="dns", scorer="spot", seed=seed).fit(table).score(table).score
    lda = ThreatDetector(kind="dns", seed=seed).fit(table).score(table).score if name in ("lda", "mlscale") else None
    if name == "lda" and lda is not None:
        return lda
    if name == "char":
        weights = {"rarity": 0.0, "client_oneoff": 0.0, "client_nx": 0.0}
        return -np.asarray(dga_evidence(table, weights=weights).column("dga").to_numpy(), np.float64)
    evidence = np.asarray(dga_evidence(table).column("dga").to_numpy(), np.float64)
    if name == "dga":
        return -evidence
    if name == "mlscale" and lda is not None:
        return dns_scores(lda, evidence)
    raise ValidationError(f"unknown method {name!r}; expected {', '.join(DNS_METHODS)}", field="methods")


def dns_study(
    dns: pa.Table,
    generated: Sequence[str],
    legit: Sequence[str],
    *,
    fractions: Sequence[float] = (0.01, 0.02),
    seeds: Sequence[int] = range(5),
    methods: Sequence[str] = DNS_METHODS,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per (fraction, method): ROC-AUC and precision@N over the seeds' mixtures."""
    bad = [m for m in methods if m not in DNS_METHODS]
    if bad:
        raise ValidationError(f"unknown method(s) {bad}; expected {', '.join(DNS_METHODS)}", field="methods")
    rows = []
    for fraction in fractions:
        mixes = [dns_mixture(dns, generated, legit, fraction, s) for s in seeds]
        for method in methods:
            aucs, pns = [], []
            for seed, (mix, y) in zip(seeds, mixes, strict=True):
                m = ranking_metrics(y, _dns_method(method, mix, seed))
                aucs.append(m["roc_auc"])
                pns.append(m["precision_at_n"])
            rows.append(
                {
                    "fraction": fraction,
                    "method": method,
                    "queries": int(mixes[0][0].num_rows),
                    "generated": int(mixes[0][1].sum()),
                    "roc_auc": aucs,
                    "precision_at_n": pns,
                }
            )
            if progress is not None:
                progress(f"DNS {fraction:.0%} {method:8} ROC-AUC {mean_sd(aucs)}  precision@N {mean_sd(pns)}")
    return rows


def study_markdown(rows: Sequence[Mapping[str, Any]], *, kind: str = "flows") -> str:
    """A Markdown table of :func:`flow_study` (``kind="flows"``) or :func:`dns_study` rows."""
    if kind == "dns":
        head = "| generated | method | queries | ROC-AUC | precision@N |\n|---|---|---:|---:|---:|"
        body = [
            f"| {r['fraction']:.0%} | {r['method']} | {r['queries']:,} | {mean_sd(r['roc_auc'])} | "
            f"{mean_sd(r['precision_at_n'])} |"
            for r in rows
        ]
        return "\n".join([head, *body])
    head = (
        "| capture | malicious | method | flows | ROC-AUC | precision@N | host precision@10 |\n"
        "|---|---|---|---:|---:|---:|---:|"
    )
    body = [
        f"| {r['capture']} | {r['fraction']:.0%} | {r['method']} | {r['flows']:,} | {mean_sd(r['roc_auc'])} | "
        f"{mean_sd(r['precision_at_n'])} | {mean_sd(r['host_p10'])} |"
        for r in rows
    ]
    return "\n".join([head, *body])
