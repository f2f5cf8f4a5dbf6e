"""Offline evaluation of suspicious-connects rankings against labelled captures.

Each method scores every flow of a capture, unsupervised (trained on the
same flows, as Spot scored each day with that day's model; labels are never
seen), and the ranking (lowest score first) is compared with the
``Malicious`` labels:

- ``roc_auc``: probability that a malicious flow ranks above a benign one;
- ``precision_at_n``: share of malicious flows among the first N, with N the
  number of malicious flows (R-precision: 1.0 is a perfect list).

Settings:

``capture``
    the capture as labelled. The Stratosphere captures are attack-heavy
    (malicious flows are often the majority), which no rarity-based
    detector is meant for; reported for completeness.
``seeded p%``
    a realistic mixture: every benign and background flow of the capture
    plus a seeded random sample of its malicious flows making ``p``% of the
    result, averaged over ``seeds`` samples.

Methods: ``spot`` (Spot's words and scorer, 20 topics, hour of day),
``iforest`` (scikit-learn's IsolationForest, 200 trees, on log bytes,
packets and duration, both ports and the protocol), ``mlscale`` (the
defaults of :class:`~mlscale.apps.threat.model.ThreatDetector`), and two
ablations: ``spot-words+calibrated`` and ``service-words+spot-scorer``.

>>> import numpy as np
>>> m = ranking_metrics(np.array([True, False, False, True]), np.array([-9.0, -1.0, -2.0, -8.0]))
>>> m["roc_auc"], m["precision_at_n"]
(1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mlscale.apps.threat.model import ThreatDetector
from mlscale.apps.threat.schema import FLOW_COUNTERS, is_malicious
from mlscale.apps.threat.words import protocol_codes
from mlscale.errors import DataError, ValidationError

__all__ = [
    "DEFAULT_FRACTIONS",
    "METHODS",
    "ThreatReport",
    "evaluate_threat",
    "isolation_forest_scores",
    "labels_of",
    "ranking_metrics",
    "seeded_mixture",
]

DEFAULT_FRACTIONS = (0.01, 0.02, 0.05)
F64 = npt.NDArray[np.float64]
Method = Callable[[pa.Table, int, Mapping[str, Any]], F64]


def labels_of(table: pa.Table) -> npt.NDArray[np.bool_]:
    """True for each malicious flow of a labelled table."""
    return np.asarray(is_malicious(table.column("label")).to_numpy(zero_copy_only=False), dtype=bool)


def ranking_metrics(y: npt.NDArray[np.bool_], score: F64) -> dict[str, float]:
    """ROC-AUC and R-precision of a ranking where a *lower* score is more suspicious."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=bool)
    if y.all() or not y.any():
        raise DataError("the flows need both malicious and other labels to measure a ranking")
    n = int(y.sum())
    order = np.argsort(score, kind="stable")
    return {"roc_auc": float(roc_auc_score(y, -np.asarray(score))), "precision_at_n": float(y[order[:n]].mean())}


def seeded_mixture(table: pa.Table, fraction: float, seed: int) -> pa.Table:
    """Every non-malicious flow plus a seeded sample of malicious ones making ``fraction`` of the result."""
    if not 0 < fraction < 1:
        raise ValidationError(f"expected 0 < fraction < 1, got {fraction}", field="fraction")
    y = labels_of(table)
    benign, malicious = np.flatnonzero(~y), np.flatnonzero(y)
    if not malicious.size or not benign.size:
        raise DataError("a mixture needs both malicious and other flows")
    want = max(1, round(fraction * benign.size / (1 - fraction)))
    rng = np.random.default_rng(seed)
    picked = rng.choice(malicious, size=min(want, malicious.size), replace=False)
    return table.take(pa.array(np.sort(np.concatenate([benign, picked]))))


def isolation_forest_scores(table: pa.Table, seed: int = 0, trees: int = 200) -> F64:
    """The IsolationForest baseline: ``score_samples`` (lower = more anomalous) on the same flows."""
    from sklearn.ensemble import IsolationForest

    def col(name: str) -> F64:
        return np.asarray(table.column(name).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)

    features = np.column_stack(
        [np.log1p(col(c)) for c in ("duration", *FLOW_COUNTERS)]
        + [col("src_port"), col("dst_port"), protocol_codes(table.column("proto")).astype(np.float64)]
    )
    forest = IsolationForest(n_estimators=trees, random_state=seed).fit(features)
    return np.asarray(forest.score_samples(features), dtype=np.float64)


def _detector(**fixed: Any) -> Method:
    def run(table: pa.Table, seed: int, params: Mapping[str, Any]) -> F64:
        det = ThreatDetector(**{**params, **fixed, "seed": seed}).fit(table)
        return det.score(table).score

    return run


METHODS: dict[str, Method] = {
    "spot": _detector(words="spot", hour_bins=24, scorer="spot"),
    "iforest": lambda table, seed, params: isolation_forest_scores(table, seed),
    "mlscale": _detector(),
    "spot-words+calibrated": _detector(words="spot", hour_bins=24, scorer="mlscale"),
    "service-words+spot-scorer": _detector(words="mlscale", scorer="spot"),
}


@dataclass
class ThreatReport:
    """One row per (capture, setting, method); :meth:`summary` averages over captures."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> list[dict[str, Any]]:
        """Mean ROC-AUC and precision@N per (setting, method), over captures."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in self.rows:
            groups.setdefault((row["setting"], row["method"]), []).append(row)
        out = []
        for (setting, method), rows in groups.items():
            out.append(
                {
                    "setting": setting,
                    "method": method,
                    "captures": len(rows),
                    "roc_auc": float(np.mean([r["roc_auc"] for r in rows])),
                    "precision_at_n": float(np.mean([r["precision_at_n"] for r in rows])),
                    "worst_roc_auc": float(np.min([r["roc_auc"] for r in rows])),
                }
            )
        return out

    def markdown(self, *, per_capture: bool = False) -> str:
        """The summary (or every row) as a Markdown table."""
        if per_capture:
            head = (
                "| capture | setting | flows | malicious | method | ROC-AUC | precision@N |\n"
                "|---|---|---:|---:|---|---:|---:|"
            )
            body = [
                f"| {r['capture']} | {r['setting']} | {r['flows']:,} | {r['malicious']:,} | {r['method']} | "
                f"{r['roc_auc']:.3f} | {r['precision_at_n']:.3f} |"
                for r in self.rows
            ]
        else:
            head = (
                "| setting | method | captures | mean ROC-AUC | worst ROC-AUC | mean precision@N |\n"
                "|---|---|---:|---:|---:|---:|"
            )
            body = [
                f"| {s['setting']} | {s['method']} | {s['captures']} | {s['roc_auc']:.3f} | "
                f"{s['worst_roc_auc']:.3f} | {s['precision_at_n']:.3f} |"
                for s in self.summary()
            ]
        return "\n".join([head, *body])

    def metrics(self) -> dict[str, float]:
        """Flat metrics for a manifest: ``<method>/<setting>/roc_auc``..."""
        out: dict[str, float] = {}
        for s in self.summary():
            key = f"{s['method']}/{s['setting'].replace(' ', '_')}"
            out[f"{key}/roc_auc"] = s["roc_auc"]
            out[f"{key}/precision_at_n"] = s["precision_at_n"]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"params": self.params, "summary": self.summary(), "rows": self.rows}


def evaluate_threat(
    captures: Mapping[str, pa.Table],
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seeds: int = 3,
    full: bool = True,
    methods: Sequence[str] = ("spot", "iforest", "mlscale"),
    params: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ThreatReport:
    """Score each labelled capture (and its seeded mixtures) with each method.

    ``params`` go to every :class:`ThreatDetector` (``topics``, ``passes``...;
    a method's own settings, such as Spot's words, win).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValidationError(f"unknown method(s) {unknown}; expected {', '.join(METHODS)}", field="methods")
    if seeds < 1:
        raise ValidationError(f"expected >= 1, got {seeds}", field="seeds")
    given = dict(params or {})
    report = ThreatReport(params={"fractions": list(fractions), "seeds": seeds, **given})
    for name, table in captures.items():
        y_full = labels_of(table)
        if not y_full.any():
            raise DataError(f"{name}: no malicious labels, so nothing to evaluate against")
        settings: list[tuple[str, list[pa.Table]]] = []
        if full:
            settings.append(("capture", [table]))
        for fraction in fractions:
            settings.append((f"seeded {fraction:.0%}", [seeded_mixture(table, fraction, s) for s in range(seeds)]))
        for setting, tables in settings:
            for method in methods:
                results = []
                for seed, t in enumerate(tables):
                    results.append(ranking_metrics(labels_of(t), METHODS[method](t, seed, given)))
                row = {
                    "capture": name,
                    "setting": setting,
                    "flows": int(np.mean([t.num_rows for t in tables])),
                    "malicious": int(np.mean([labels_of(t).sum() for t in tables])),
                    "method": method,
                    "roc_auc": float(np.mean([r["roc_auc"] for r in results])),
                    "precision_at_n": float(np.mean([r["precision_at_n"] for r in results])),
                }
                report.rows.append(row)
                if progress is not None:
                    progress(
                        f"{name:28} {setting:11} {method:26} ROC-AUC {row['roc_auc']:.3f}  "
                        f"precision@N {row['precision_at_n']:.3f}"
                    )
    return report
