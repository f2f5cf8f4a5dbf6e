"""The threat model's parameters (one family, ``lda``): the only place their defaults are written.

>>> LdaParams().topics
20
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mlscale.apps.base import param
from mlscale.apps.threat.model import SCORERS
from mlscale.apps.threat.words import SCHEMES

__all__ = ["LdaParams"]


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
