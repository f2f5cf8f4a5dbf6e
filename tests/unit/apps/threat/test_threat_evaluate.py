"""Evaluation against the Malicious labels: metrics, seeded mixtures, and mlscale beside Spot and IsolationForest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlscale.apps.threat import evaluate_threat, ranking_metrics, read_flows, seeded_mixture
from mlscale.apps.threat.evaluate import isolation_forest_scores, labels_of
from mlscale.errors import DataError, ValidationError


def test_ranking_metrics() -> None:
    y = np.array([True, False, True, False, False])
    perfect = ranking_metrics(y, np.array([-5.0, 0.0, -4.0, -1.0, -2.0]))
    assert perfect == {"roc_auc": 1.0, "precision_at_n": 1.0}
    worst = ranking_metrics(y, np.array([5.0, 0.0, 4.0, -1.0, -2.0]))
    assert worst == {"roc_auc": 0.0, "precision_at_n": 0.0}
    half = ranking_metrics(y, np.array([-5.0, -6.0, 4.0, -1.0, -2.0]))
    assert half["precision_at_n"] == 0.5
    with pytest.raises(DataError, match="both"):
        ranking_metrics(np.array([True, True]), np.array([0.0, 1.0]))


def test_seeded_mixture_keeps_every_benign_flow(strato: Path) -> None:
    table = read_flows(strato / "012-zeek-mixed" / "data" / "conn.log.labeled")
    y = labels_of(table)
    mix = seeded_mixture(table, 0.02, seed=1)
    ym = labels_of(mix)
    assert (~ym).sum() == (~y).sum() == 1712
    assert ym.sum() == round(0.02 * 1712 / 0.98) == 35
    assert labels_of(seeded_mixture(table, 0.02, seed=1)).tolist() == ym.tolist()  # seeded
    assert not seeded_mixture(table, 0.02, seed=2).column("line").equals(mix.column("line"))
    with pytest.raises(ValidationError, match="fraction"):
        seeded_mixture(table, 1.5, seed=0)


def test_mlscale_beats_spot_and_isolation_forest_on_a_realistic_mixture(strato: Path) -> None:
    table = read_flows(strato / "008-zeek-mixed" / "data" / "conn.log.labeled")
    report = evaluate_threat({"008": table}, fractions=(0.02,), seeds=1, full=False, params={"topics": 20, "passes": 5})
    got = {r["method"]: r for r in report.rows}
    assert set(got) == {"spot", "iforest", "mlscale"}
    assert got["mlscale"]["malicious"] == 30
    assert got["mlscale"]["flows"] == 1492
    for metric in ("roc_auc", "precision_at_n"):
        assert got["mlscale"][metric] > got["iforest"][metric], metric
        assert got["mlscale"][metric] > got["spot"][metric], metric
    # A faithful Spot ranks below a plain IsolationForest when attacks are rare.
    assert got["spot"]["roc_auc"] < got["iforest"]["roc_auc"]
    table_md = report.markdown()
    assert "| seeded 2% | mlscale | 1 |" in table_md
    assert set(report.metrics()) >= {"mlscale/seeded_2%/roc_auc", "iforest/seeded_2%/precision_at_n"}


def test_isolation_forest_baseline_is_deterministic(capture001) -> None:  # type: ignore[no-untyped-def]
    a = isolation_forest_scores(capture001, seed=0)
    assert a.shape == (capture001.num_rows,)
    assert np.array_equal(a, isolation_forest_scores(capture001, seed=0))


def test_unknown_method_and_unlabelled_data(capture001) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="unknown method"):
        evaluate_threat({"x": capture001}, methods=("magic",))
    benign = capture001.filter(~labels_of(capture001))
    with pytest.raises(DataError, match="no malicious labels"):
        evaluate_threat({"x": benign}, seeds=1)
