"""Beaconing evidence joined into each flow's score.

A topic model scores a flow by how well its IPs' own documents explain its
words; a series that repeats is, by construction, well explained, which is
how steady command-and-control beaconing hides from it. Repetition at a
clock's regularity is evidence of automation, not of normality, so for a flow
of a beaconing series (beacon score ``b`` in [0, 1], :mod:`~mlscale.apps.threat.beacon`)
each side's calibrated probability is moved towards the word's network-wide
frequency:

    ``q' = (1 - c) * q + c * P(w)``, with ``c = min(1, weight * b)``.

A beacon on a service the whole network uses (``P(w)`` high: telemetry to
443) barely moves; a beacon on a service nobody else uses (``P(w)`` low: a
RAT on port 1177) is scored as if its IPs had no history. ``weight``
(:data:`DEFAULT_BEACON_WEIGHT`) was chosen on validation mixtures (seeds
100-104, disjoint from the evaluation seeds) of every labelled capture: see
docs/threat.md. The Spot scorer keeps ``min(q'_src, q'_dst)``.

>>> from mlscale.apps.threat.beacon import beacon_table
>>> from mlscale.apps.threat.model import ThreatDetector
>>> from mlscale.apps.threat.synthetic import generate_flows
>>> flows = generate_flows(3000, hosts=40, seed=0)
>>> det = ThreatDetector(topics=4, passes=2).fit(flows)
>>> s = flow_scores(det, flows, beacon_table(flows))
>>> s.score.shape == s.beacon.shape == (3000,)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mlscale.apps.threat.beacon import BeaconIndex, beacon_evidence
from mlscale.apps.threat.model import Scores, ThreatDetector
from mlscale.errors import ValidationError

__all__ = ["DEFAULT_BEACON_WEIGHT", "FlowEvidence", "flow_scores", "with_beacons"]

F64 = npt.NDArray[np.float64]
DEFAULT_BEACON_WEIGHT = 4.0


@dataclass(frozen=True)
class FlowEvidence:
    """Per flow: the combined ``score`` (lower = more suspicious), the model's own scores,
    the series' ``beacon`` score (0: none) and its row in the beacon table (-1: none)."""

    score: F64
    model: Scores
    beacon: F64
    beacon_row: npt.NDArray[np.int64]


def _network_prob(det: ThreatDetector, codes: npt.NDArray[np.int64]) -> F64:
    wi = det.word_index(codes)
    return np.where(wi >= 0, det.word_prob_[np.maximum(wi, 0)], det.unseen_word_prob_)


def with_beacons(det: ThreatDetector, scores: Scores, beacon: F64, weight: float = DEFAULT_BEACON_WEIGHT) -> F64:
    """The flow score with beacon evidence folded in (see the module's formula)."""
    if weight < 0:
        raise ValidationError(f"expected a weight >= 0, got {weight!r}", field="beacon_weight")
    if det.kind != "flows":
        raise ValidationError("beacon evidence applies to flow models, not DNS ones", field="model")
    c = np.minimum(weight * np.asarray(beacon, np.float64), 1.0)
    hit = c > 0
    if not hit.any():
        return scores.score
    out = scores.score.copy()
    src = (1 - c[hit]) * scores.src_prob[hit] + c[hit] * _network_prob(det, scores.src_word[hit])
    dst = (1 - c[hit]) * scores.dst_prob[hit] + c[hit] * _network_prob(det, scores.dst_word[hit])
    out[hit] = np.minimum(src, dst) if det.scorer == "spot" else np.log(src) + np.log(dst)
    return out


def flow_scores(
    det: ThreatDetector,
    batch: pa.RecordBatch | pa.Table,
    beacons: pa.Table | BeaconIndex | None,
    *,
    weight: float = DEFAULT_BEACON_WEIGHT,
) -> FlowEvidence:
    """Score a batch of flows and fold in the beacon evidence of ``beacons`` (None: none;
    a :class:`~mlscale.apps.threat.beacon.BeaconIndex` when scoring many batches)."""
    scores = det.score(batch)
    table = beacons.table if isinstance(beacons, BeaconIndex) else beacons
    if beacons is None or table is None or table.num_rows == 0:
        n = batch.num_rows
        return FlowEvidence(scores.score, scores, np.zeros(n), np.full(n, -1, np.int64))
    beacon, row = beacon_evidence(batch, beacons)
    return FlowEvidence(with_beacons(det, scores, beacon, weight), scores, beacon, row)
