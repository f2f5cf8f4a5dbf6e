"""Generated-domain (DGA) evidence for DNS queries, learnt from the DNS log itself.

Malware that finds its server through a domain generation algorithm asks for
many names nobody else asks for, made of characters no human would string
together (``xjq3kfz9pq.info``). For every query this module measures, on the
*registered label* (``example`` in ``www.example.co.uk``):

- **character likelihood**: the mean negative log-likelihood per character
  under a character trigram model (interpolated with bigrams and unigrams)
  fitted on the distinct names of the log being scored, so no labelled
  domains are needed; human names share the log's common character runs,
  generated ones do not;
- entropy, length and digit share of the label, and the number of labels of the
  whole name (reported; weight 0 by default: CDN and cloud names are deep too);
- **name rarity**: how few queries of the log ask for that exact name;
- per client, within time windows (``window_s``), the share of its queries
  that ask for names seen only once in the log (a burst of one-off names) and
  ``log(1 + its count of NXDOMAIN answers)`` (rcode 3).

Each feature becomes a robust z-score (median and interquartile range over
the log's distinct names, or its clients), and the DGA evidence is their
weighted sum (:data:`DEFAULT_WEIGHTS`, fixed a priori, not fitted on
labelled domains: see docs/threat.md); higher means more likely generated.
:func:`dns_scores` joins it with a DNS :class:`~mlscale.apps.threat.model.ThreatDetector`
score (Spot's DNS words) into one ranking, lower = more suspicious as for
every threat score.

Fitting the character model on the very log that is scored is what makes it
unsupervised; a few percent of generated names in that log spread their mass
over many rare trigrams and barely move the common ones.

>>> import pyarrow as pa
>>> words = ("google microsoft windowsupdate office live amazon apple icloud facebook twitter linkedin "
...          "netflix youtube wikipedia github ubuntu debian mozilla firefox cloudflare adobe dropbox").split()
>>> names = [f"www.{w}.com" for w in words] + ["xjq3kfz9pq.info", "qzvbnwpxkt.net"]
>>> model = DgaModel().fit(pa.array(names))
>>> nll = model.char_nll(pa.array(["mozilla", "xjq3kfz9pq"]), leave_out=True)
>>> bool(nll[1] > nll[0])
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from mlscale.apps.threat.words import char_entropy
from mlscale.errors import ValidationError

__all__ = [
    "DEFAULT_WEIGHTS",
    "DgaConfig",
    "DgaModel",
    "dga_evidence",
    "dns_scores",
    "encode_labels",
    "registered_label",
    "score_dns",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
#: The alphabet: a-z, 0-9, '-', '_' and one symbol for everything else; 0 pads, 39 starts, 40 ends a label.
_ALPHA = 41
_START, _END = 39, 40
_MAX_LEN = 63
#: Weight of each robust z-score in the evidence (fixed a priori; docs/threat.md says how they were checked).
DEFAULT_WEIGHTS: dict[str, float] = {
    "char_nll": 1.0,
    "entropy": 0.25,
    "length": 0.25,
    "digits": 0.25,
    "labels": 0.0,
    "rarity": 0.5,
    "client_oneoff": 0.5,
    "client_nx": 0.25,
}
_SLD = r"(?:co|com|net|org|gov|edu|ac|or|ne|go|gob|mil|nic)"


@dataclass(frozen=True)
class DgaConfig:
    """Smoothing of the character model and the window of the per-client burst features."""

    window_s: float = 3600.0
    lambdas: tuple[float, float, float] = (0.6, 0.3, 0.1)
    add_k: float = 0.5

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValidationError(f"expected seconds > 0, got {self.window_s!r}", field="dga_window")
        if abs(sum(self.lambdas) - 1.0) > 1e-9 or min(self.lambdas) < 0:
            raise ValidationError(f"expected 3 weights >= 0 summing to 1, got {self.lambdas!r}", field="lambdas")


def registered_label(query: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The label left of the public suffix guess (``example`` in ``a.example.co.uk``); single labels stay.

    >>> registered_label(pa.array(["www.example.co.uk", "mail.google.com", "wpad", ""])).to_pylist()
    ['example', 'google', 'wpad', '']
    """
    query = pc.fill_null(query, "")
    three = pc.extract_regex(query, rf"(?P<d>[^.]+)\.{_SLD}\.[a-z]{{2}}$")
    two = pc.extract_regex(query, r"(?P<d>[^.]+)\.[^.]+$")
    return pc.coalesce(pc.struct_field(three, [0]), pc.struct_field(two, [0]), query)


def encode_labels(labels: pa.Array | pa.ChunkedArray) -> tuple[npt.NDArray[np.int8], I64]:
    """Labels as a padded symbol matrix (one row per label, ``START`` first, ``END`` last) and lengths.

    Labels longer than 63 bytes (the DNS limit) are cut. Vectorised over Arrow's buffers.
    """
    arr = pc.fill_null(labels, "")
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    arr = pc.utf8_lower(arr).cast(pa.large_string())
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8) if arr.buffers()[2] is not None else np.zeros(0, np.uint8)
    lengths = np.minimum(np.diff(offsets), _MAX_LEN)
    table = np.full(256, 38, np.int8)
    table[ord("a") : ord("z") + 1] = np.arange(1, 27)
    table[ord("0") : ord("9") + 1] = np.arange(27, 37)
    table[ord("-")] = 37
    table[ord("_")] = 38
    out = np.zeros((n, _MAX_LEN + 2), np.int8)
    out[:, 0] = _START
    pos = np.arange(_MAX_LEN)[None, :]
    inside = pos < lengths[:, None]
    src = np.minimum(offsets[:-1, None] + pos, max(data.size - 1, 0))
    if data.size:
        out[:, 1 : _MAX_LEN + 1] = np.where(inside, table[data[src]], 0)
    out[np.arange(n), lengths + 1] = _END
    return out, lengths.astype(np.int64)


class DgaModel:
    """A character trigram model of a log's names, and the per-name features under it."""

    def __init__(self, config: DgaConfig | None = None) -> None:
        self.config = config or DgaConfig()

    def fit(self, queries: pa.Array | pa.ChunkedArray) -> Self:
        """Count the character n-grams of the distinct registered labels of ``queries``."""
        labels = pc.unique(registered_label(queries))
        mat, lengths = encode_labels(labels)
        a = _ALPHA
        tri = np.zeros(a**3)
        bi = np.zeros(a**2)
        uni = np.zeros(a)
        for i in range(1, _MAX_LEN + 2):
            live = lengths + 1 >= i
            c = mat[live, i].astype(np.int64)
            p1 = mat[live, i - 1].astype(np.int64)
            p2 = mat[live, i - 2].astype(np.int64) if i >= 2 else np.full(c.size, _START, np.int64)
            tri += np.bincount((p2 * a + p1) * a + c, minlength=a**3)
            bi += np.bincount(p1 * a + c, minlength=a**2)
            uni += np.bincount(c, minlength=a)
        self.tri_, self.bi_, self.uni_ = tri, bi, uni
        self.names_ = len(labels)
        return self

    def char_nll(self, labels: pa.Array | pa.ChunkedArray, *, leave_out: bool = False) -> F64:
        """Mean negative log-likelihood per symbol (the end symbol included) of each label.

        ``leave_out``: the labels were part of the fit, so each is scored
        under the counts of the *other* names (its own n-grams subtracted):
        otherwise a one-off name would explain itself through the rare
        contexts it alone created.
        """
        if not hasattr(self, "tri_"):
            raise ValidationError("the DGA model is not fitted: call fit() first", field="model")
        mat, lengths = encode_labels(labels)
        a = _ALPHA
        k = self.config.add_k
        l3, l2, l1 = self.config.lambdas
        ctx3 = self.tri_.reshape(a * a, a).sum(axis=1)
        ctx2 = self.bi_.reshape(a, a).sum(axis=1)
        n_uni = self.uni_.sum()
        own = 1.0 if leave_out else 0.0
        total = np.zeros(mat.shape[0])
        for i in range(1, _MAX_LEN + 2):
            live = lengths + 1 >= i
            c = mat[:, i].astype(np.int64)
            p1 = mat[:, i - 1].astype(np.int64)
            p2 = mat[:, i - 2].astype(np.int64) if i >= 2 else np.full(c.size, _START, np.int64)
            t = np.maximum(self.tri_[(p2 * a + p1) * a + c] - own, 0.0)
            t_ctx = np.maximum(ctx3[p2 * a + p1] - own, 0.0)
            b = np.maximum(self.bi_[p1 * a + c] - own, 0.0)
            b_ctx = np.maximum(ctx2[p1] - own, 0.0)
            u = np.maximum(self.uni_[c] - own, 0.0)
            p = l3 * (t + k) / (t_ctx + k * a) + l2 * (b + k) / (b_ctx + k * a) + l1 * (u + k) / (n_uni + k * a)
            total += np.where(live, -np.log(p), 0.0)
        return np.asarray(total / (lengths + 1), np.float64)

    def name_features(self, queries: pa.Array | pa.ChunkedArray, *, leave_out: bool = False) -> dict[str, F64]:
        """Per query: ``char_nll``, ``entropy``, ``length``, ``digits`` (share), ``labels`` (count).

        ``leave_out``: each query's name was in the fit (see :meth:`char_nll`)."""
        labels = registered_label(queries)
        length = np.asarray(pc.utf8_length(pc.fill_null(labels, "")).to_numpy(zero_copy_only=False), np.float64)
        digits = np.asarray(
            pc.count_substring_regex(pc.fill_null(labels, ""), r"[0-9]").to_numpy(zero_copy_only=False), np.float64
        )
        dots = np.asarray(pc.count_substring(pc.fill_null(queries, ""), ".").to_numpy(zero_copy_only=False), np.float64)
        return {
            "char_nll": self.char_nll(labels, leave_out=leave_out),
            "entropy": char_entropy(labels),
            "length": length,
            "digits": digits / np.maximum(length, 1),
            "labels": dots + 1,
        }


def _robust_z(values: F64, reference: F64 | None = None) -> F64:
    """(x - median) / IQR of the reference (the distinct names or clients), clipped to [-5, 10]."""
    ref = values if reference is None else reference
    if ref.size == 0:
        return np.zeros_like(values)
    q1, med, q3 = np.percentile(ref, [25, 50, 75])
    scale = max(float(q3 - q1), 1e-3 * max(abs(float(med)), 1.0), 1e-6)
    return np.asarray(np.clip((values - med) / scale, -5.0, 10.0), np.float64)


def _column(table: pa.Table | pa.RecordBatch, name: str) -> Any:
    return table.column(table.schema.get_field_index(name))


def dga_evidence(
    table: pa.Table,
    *,
    model: DgaModel | None = None,
    weights: dict[str, float] | None = None,
    config: DgaConfig | None = None,
) -> pa.Table:
    """Per query of a DNS table: every feature, its z-scores and ``dga`` (the weighted sum; higher = more generated).

    ``model``: a fitted :class:`DgaModel` (default: fitted on ``table`` itself).
    """
    cfg = config or DgaConfig()
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    unknown = sorted(set(w) - set(DEFAULT_WEIGHTS))
    if unknown:
        raise ValidationError(
            f"unknown DGA feature(s) {unknown}; expected {', '.join(DEFAULT_WEIGHTS)}", field="weights"
        )
    query = pc.fill_null(_column(table, "query"), "")
    query = query.combine_chunks() if isinstance(query, pa.ChunkedArray) else query
    own = model is None
    model = model or DgaModel(cfg).fit(query)
    encoded = pc.dictionary_encode(query)
    names = encoded.dictionary
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64)
    counts = np.bincount(codes, minlength=len(names)).astype(np.float64)
    # Distinct names share one registered label when they differ only left of it: fitted once each.
    feats = model.name_features(names, leave_out=own)
    feats["rarity"] = -np.log(counts / max(float(counts.sum()), 1.0))
    z = {k: _robust_z(v) for k, v in feats.items()}
    per_query = {k: v[codes] for k, v in feats.items()}

    # Per client and window: share of one-off names, NXDOMAIN count.
    client = pc.fill_null(_column(table, "client_ip"), "")
    client = client.combine_chunks() if isinstance(client, pa.ChunkedArray) else client
    client_codes = np.asarray(pc.dictionary_encode(client).indices.to_numpy(zero_copy_only=False), np.int64)
    ts = _column(table, "ts").cast(pa.timestamp("us")).cast(pa.int64())
    window = np.asarray(pc.fill_null(ts, 0).to_numpy(zero_copy_only=False), np.int64) // int(cfg.window_s * 1e6)
    group = np.unique(np.stack([client_codes, window], axis=1), axis=0, return_inverse=True)[1].ravel()
    n_groups = int(group.max()) + 1 if group.size else 0
    oneoff = (counts[codes] <= 1).astype(np.float64)
    rcode = np.asarray(pc.fill_null(_column(table, "rcode"), -1).to_numpy(zero_copy_only=False), np.int64)
    per_group_n = np.bincount(group, minlength=n_groups).astype(np.float64)
    share = np.bincount(group, weights=oneoff, minlength=n_groups) / np.maximum(per_group_n, 1)
    nx = np.log1p(np.bincount(group, weights=(rcode == 3).astype(np.float64), minlength=n_groups))
    per_query["client_oneoff"] = share[group]
    per_query["client_nx"] = nx[group]
    zq = {k: v[codes] for k, v in z.items()}
    zq["client_oneoff"] = _robust_z(share[group], share)
    zq["client_nx"] = _robust_z(nx[group], nx)

    score = np.zeros(table.num_rows)
    for k, weight in w.items():
        if weight:
            score += weight * zq[k]
    cols: dict[str, Any] = {f"dga_{k}": pa.array(v, pa.float64()) for k, v in per_query.items()}
    cols["dga"] = pa.array(score, pa.float64())
    return pa.table(cols)


def dns_scores(lda_score: F64, evidence: F64, *, lda_weight: float = 0.1) -> F64:
    """One DNS ranking (lower = more suspicious): ``lda_weight * LDA log-probability - DGA evidence``.

    >>> dns_scores(np.array([-1.0, -1.0]), np.array([0.0, 3.0])).tolist()
    [-0.1, -3.1]
    """
    return np.asarray(lda_weight * np.asarray(lda_score, np.float64) - np.asarray(evidence, np.float64), np.float64)


def score_dns(table: pa.Table, model: Any = None, *, lda_weight: float = 0.1) -> pa.Table:
    """A DNS log scored with its DGA evidence, most suspicious first: the log's columns, ``dga_*``,
    ``dga``, ``lda_score`` (a fitted DNS :class:`~mlscale.apps.threat.model.ThreatDetector`'s, 0 without
    one), with a model its readable DNS ``word`` and the word's ``prob``, ``score`` (:func:`dns_scores`)
    and ``rank``. Ready for :func:`~mlscale.apps.threat.hosts.rank_hosts` (and, with a model,
    :func:`~mlscale.apps.threat.rank.ip_summary`)."""
    if model is not None and getattr(model, "kind", None) != "dns":
        raise ValidationError("expected a DNS model (kind 'dns') for DNS queries", field="model")
    evidence = dga_evidence(table)
    lda_scores = model.score(table) if model is not None else None
    lda = np.asarray(lda_scores.score, np.float64) if lda_scores is not None else np.zeros(table.num_rows)
    score = dns_scores(lda, np.asarray(evidence.column("dga").to_numpy(), np.float64), lda_weight=lda_weight)
    out = table
    for name in evidence.column_names:
        out = out.append_column(name, evidence.column(name))
    out = out.append_column("lda_score", pa.array(lda))
    if lda_scores is not None:
        # Each distinct word rendered once (a log has few distinct DNS words and many queries).
        encoded = pc.dictionary_encode(pa.array(np.asarray(lda_scores.src_word, np.int64)))
        names = pa.array(model.describe(np.asarray(encoded.dictionary.to_numpy(), np.int64)), pa.string())
        out = out.append_column("word", pa.DictionaryArray.from_arrays(encoded.indices, names))
        out = out.append_column("prob", pa.array(np.asarray(lda_scores.src_prob, np.float64)))
    out = out.append_column("score", pa.array(score))
    out = out.take(pc.sort_indices(out, sort_keys=[("score", "ascending")]))
    return out.add_column(0, "rank", pa.array(np.arange(1, out.num_rows + 1, dtype=np.int64)))
