"""Threat models to and from the registry: the numbers only (arrays and Parquet), never the estimator.

A version of ``threat/NAME`` holds:

- ``vocab.npy`` (int64 word codes, sorted), ``topic_word.npy`` (K x V, P(word | topic)),
  ``word_counts.npy`` (training count of each word);
- ``ip_topic.npy`` (D x K, P(topic | IP)), ``ip_words.npy`` (each IP's training word count);
- ``ips.parquet`` (the D addresses, in ``ip_topic`` row order), ``words.parquet`` (each word
  code with its readable form and count, for analysts);
- for DNS models with domain lists, ``top_domains.parquet`` / ``user_domains.parquet``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mlscale.apps.base import Artifact
from mlscale.apps.base import publish_model as publish
from mlscale.apps.threat.model import ThreatDetector
from mlscale.errors import ArtifactError, ValidationError
from mlscale.registry import LoadedModel, Manifest, Store

__all__ = ["APP", "CODEC", "ThreatCodec", "from_artifact", "publish_model"]

APP = "threat"
_ARRAYS = ("vocab", "topic_word", "word_counts", "ip_topic", "ip_words")


class ThreatCodec:
    """The threat model's :class:`~mlscale.apps.base.Codec`: topic-word and IP-topic arrays, IPs and words."""

    def to_artifact(self, model: ThreatDetector) -> Artifact:
        model._check_fitted()
        arrays: dict[str, npt.NDArray[Any]] = {
            "vocab": model.vocab_,
            "topic_word": np.ascontiguousarray(model.word_topic_.T),
            "word_counts": model.word_counts_,
            "ip_topic": model.ip_topic_,
            "ip_words": model.ip_words_,
        }
        tables = {
            "ips": pa.table({"ip": model.ips_}),
            "words": pa.table(
                {
                    "code": pa.array(model.vocab_),
                    "word": pa.array(model.describe(model.vocab_), pa.string()),
                    "count": pa.array(model.word_counts_),
                }
            ),
        }
        for key in ("top_domains", "user_domains"):
            values = getattr(model, key)
            if values:
                tables[key] = pa.table({"domain": pa.array(sorted(values), pa.string())})
        info = {"ips": model.n_ips, "words": model.n_words, "topics": int(model.ip_topic_.shape[1])}
        return Artifact(arrays=arrays, tables=tables, params=model.get_params(), extra=info)

    def from_artifact(self, loaded: LoadedModel) -> ThreatDetector:
        return from_artifact(loaded)


CODEC = ThreatCodec()


def publish_model(
    store: Store,
    name: str,
    model: ThreatDetector,
    *,
    metrics: Mapping[str, float],
    engine: str,
    data_fingerprint: str,
    extra: Mapping[str, Any] | None = None,
) -> Manifest:
    """Publish a fitted detector as a new version of ``threat/NAME`` (:func:`mlscale.apps.base.publish_model`)."""
    return publish(
        store, APP, CODEC, name, model, metrics=metrics, engine=engine, data_fingerprint=data_fingerprint, extra=extra
    )


def from_artifact(loaded: LoadedModel) -> ThreatDetector:
    """Rebuild a detector from a loaded registry version."""
    manifest = loaded.manifest
    if manifest.app != APP:
        raise ArtifactError(f"{manifest.ref} is a {manifest.app!r} model, not a threat model")
    missing = [a for a in _ARRAYS if a not in loaded.arrays] + [t for t in ("ips",) if t not in loaded.tables]
    if missing:
        raise ArtifactError(f"{manifest.ref}: the artifact lacks {missing}")
    a = loaded.arrays
    domains = {
        key: tuple(loaded.tables[key].column("domain").to_pylist()) if key in loaded.tables else ()
        for key in ("top_domains", "user_domains")
    }
    try:
        # A re-signed artifact can hold any dtype: check them here, not as a traceback later.
        for key in _ARRAYS:
            if a[key].dtype.kind not in "fiub":
                raise ValueError(f"{key} has dtype {a[key].dtype}, expected numbers")
        kwargs: dict[str, Any] = {**manifest.params, **domains}
        model = ThreatDetector(**kwargs)
        ips = loaded.tables["ips"].column("ip").combine_chunks()
        topic_word = np.asarray(a["topic_word"], np.float32)
        k, v = topic_word.shape
        if a["vocab"].shape != (v,) or a["ip_topic"].shape != (len(ips), k) or a["ip_words"].shape != (len(ips),):
            raise ValueError(
                f"shapes disagree: topic_word {topic_word.shape}, vocab {a['vocab'].shape}, "
                f"ip_topic {a['ip_topic'].shape}, {len(ips)} ips"
            )
        model._check()
    except (TypeError, ValueError, ValidationError) as exc:
        raise ArtifactError(f"{manifest.ref}: inconsistent threat artifact ({exc})") from None
    model._set_state(
        ips=ips,
        vocab=np.asarray(a["vocab"], np.int64),
        topic_word=topic_word,
        ip_topic=np.asarray(a["ip_topic"], np.float32),
        ip_words=np.asarray(a["ip_words"], np.float64),
        word_counts=np.asarray(a["word_counts"], np.float64),
    )
    return model
