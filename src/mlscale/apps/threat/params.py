"""The threat model's parameters (one family, ``lda``) and the scoring evidence's: the only place their
defaults are written.

:class:`LdaParams` is the model (``mlscale train threat`` flags, stored in the
manifest); :class:`EvidenceParams` is how a log is scored with its beacon
evidence (``mlscale threat score`` and ``mlscale evaluate threat --suite
evidence`` flags), not part of the model: the same model can be scored with
another weight or window.

>>> LdaParams().topics
20
>>> EvidenceParams().beacon_weight, EvidenceParams().beacon_window
(4.0, 3600.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlscale.apps.base import param
from mlscale.apps.threat.beacon import BeaconConfig
from mlscale.apps.threat.evidence import DEFAULT_BEACON_WEIGHT
from mlscale.apps.threat.feedback import DEFAULT_DUP_FACTOR
from mlscale.apps.threat.model import SCORERS
from mlscale.apps.threat.words import SCHEMES

__all__ = ["EvidenceParams", "LdaParams"]


@dataclass(frozen=True)
class LdaParams:
    """Flow (or DNS) words per IP document, online LDA over the documents, a flow scorer."""

    family: ClassVar[str] = "lda"

    words: str = param("mlscale", "flow word scheme", choices=SCHEMES)
    hour_bins: int | None = param(
        None, "hour-of-day bins in flow words (None: the scheme's, spot 24, mlscale 1)", minimum=1
    )
    topics: int = param(20, "LDA topics", minimum=1)
    passes: int = param(10, "passes over the documents", minimum=1)
    doc_topic_prior: float | None = param(None, "LDA alpha (None: 1/topics)", minimum=0)
    topic_word_prior: float | None = param(None, "LDA eta (None: 1/topics)", minimum=0)
    batch_size: int = param(1024, "documents per minibatch (local engine)", minimum=1)
    scorer: str = param("mlscale", "flow score", choices=SCORERS)
    prior_strength: float = param(20.0, "calibration pseudo-count of the mlscale scorer", minimum=0)
    seed: int = param(0, "random seed")


@dataclass(frozen=True)
class EvidenceParams:
    """How a flow log is scored with its beacon evidence (scoring settings, not the model's).

    The defaults are the library's own (:data:`~mlscale.apps.threat.evidence.DEFAULT_BEACON_WEIGHT`,
    :class:`~mlscale.apps.threat.beacon.BeaconConfig`), referenced here, not copied.
    """

    beacon_weight: float = param(
        DEFAULT_BEACON_WEIGHT, "how far a beaconing flow's score moves towards its words' network rarity", minimum=0
    )
    beacon_window: float = param(BeaconConfig.window_s, "seconds per beacon time window", minimum=1)
    beacon_min_flows: int = param(BeaconConfig.min_flows, "fewest flows of a series with beacon evidence", minimum=3)
    dup_factor: int = param(
        DEFAULT_DUP_FACTOR, "weight of a low-risk verdict (divides a host's score by 1 + it)", minimum=1
    )

    def beacon_config(self) -> BeaconConfig:
        """The :class:`~mlscale.apps.threat.beacon.BeaconConfig` of these settings."""
        return BeaconConfig(window_s=float(self.beacon_window), min_flows=int(self.beacon_min_flows))
