"""Corpus, online LDA, the two scorers, and the registry artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from mlscale.apps.threat import OnlineLDA, ThreatDetector, from_artifact, publish_model, ranking_metrics
from mlscale.apps.threat.corpus import CorpusBuilder
from mlscale.apps.threat.lda import infer_doc_topics
from mlscale.apps.threat.synthetic import generate_flows
from mlscale.errors import ArtifactError, DataError, ValidationError
from mlscale.registry import open_store


def test_corpus_counts_both_sides_with_weights() -> None:
    b = CorpusBuilder()
    b.add(pa.array(["a", "b", "a", "c"]), np.array([5, 5, 6, 5]))
    b.add(pa.array(["c", "a"]), np.array([7, 5]), weight=np.array([10.0, 1.0]))
    c = b.build()
    assert c.ips.to_pylist() == ["a", "b", "c"]
    assert c.vocab.tolist() == [5, 6, 7]
    assert c.counts.toarray().tolist() == [[2, 1, 0], [1, 0, 0], [1, 0, 10]]
    with pytest.raises(DataError, match="empty"):
        CorpusBuilder().build()


def test_online_lda_recovers_planted_topics() -> None:
    rng = np.random.default_rng(0)
    # Two groups of documents using disjoint halves of a 20-word vocabulary.
    rows = []
    for d in range(200):
        words = rng.integers(0, 10, 30) + (10 if d % 2 else 0)
        rows.append(np.bincount(words, minlength=20))
    counts = sp.csr_matrix(np.array(rows, dtype=np.float64))
    lda = OnlineLDA(topics=2, passes=5, batch_size=64, seed=0).fit(counts)
    theta = lda.doc_topic_
    assert theta.shape == (200, 2)
    assert np.allclose(theta.sum(axis=1), 1.0, atol=1e-5)
    dominant = theta.argmax(axis=1)
    assert (dominant[::2] == dominant[0]).all()
    assert (dominant[1::2] != dominant[0]).all()
    beta = lda.topic_word_
    assert np.allclose(beta.sum(axis=1), 1.0, atol=1e-5)
    assert beta[dominant[0], :10].sum() > 0.95
    # Folding the same documents in again gives the same mixtures.
    again = infer_doc_topics(counts, lda.components_, lda.alpha)
    assert np.abs(again - theta).max() < 1e-4


def test_lda_parameters_are_checked() -> None:
    counts = sp.csr_matrix(np.ones((3, 3)))
    for bad in ({"topics": 0}, {"passes": 0}, {"learning_decay": 0.2}, {"doc_topic_prior": -1.0}):
        with pytest.raises(ValidationError):
            OnlineLDA(**bad).fit(counts)  # type: ignore[arg-type]


def test_spot_scorer_is_min_of_lda_probabilities(detector001: ThreatDetector, capture001: pa.Table) -> None:
    spot = ThreatDetector(words="spot", hour_bins=24, scorer="spot", topics=8, passes=3).fit(capture001)
    s = spot.score(capture001)
    i = 17
    src_w, dst_w = s.src_word[i], s.dst_word[i]
    src_ip, dst_ip = capture001.column("src_ip")[i].as_py(), capture001.column("dst_ip")[i].as_py()
    ips = spot.ips_.to_pylist()
    beta = spot.word_topic_  # V x K
    p_src = float(beta[spot.word_index(np.array([src_w]))[0]] @ spot.ip_topic_[ips.index(src_ip)])
    p_dst = float(beta[spot.word_index(np.array([dst_w]))[0]] @ spot.ip_topic_[ips.index(dst_ip)])
    assert s.src_prob[i] == pytest.approx(p_src, rel=1e-5)
    assert s.score[i] == pytest.approx(min(p_src, p_dst), rel=1e-5)
    assert ((s.score >= 0) & (s.score <= 1)).all()


def test_mlscale_scorer_calibrates_for_history(detector001: ThreatDetector, capture001: pa.Table) -> None:
    det = detector001
    s = det.score(capture001)
    i = 5
    ip = det.ip_index(capture001.column("src_ip").slice(i, 1))[0]
    w = det.word_index(s.src_word[i : i + 1])[0]
    p_lda = float(det.word_topic_[w].astype(np.float64) @ det.ip_topic_[ip].astype(np.float64))
    n, m = det.ip_words_[ip], det.prior_strength
    q = (n * p_lda + m * det.word_prob_[w]) / (n + m)
    assert s.src_prob[i] == pytest.approx(q, rel=1e-4)
    assert s.score[i] == pytest.approx(np.log(s.src_prob[i]) + np.log(s.dst_prob[i]))


def test_unseen_ips_and_words(detector001: ThreatDetector, capture001: pa.Table) -> None:
    flows = capture001.slice(0, 2).to_pylist()
    flows[0]["src_ip"] = "203.0.113.77"  # never seen
    flows[1]["dst_port"], flows[1]["src_port"] = 31337, 40000  # a word never seen
    flows[1]["proto"] = "gre"
    table = pa.Table.from_pylist(flows, schema=capture001.schema)
    s = detector001.score(table)
    assert not s.src_known[0]
    assert s.dst_known[0]
    # An unseen IP falls back to how common its word is in the whole network.
    w = detector001.word_index(s.src_word[:1])[0]
    assert w >= 0
    assert s.src_prob[0] == pytest.approx(detector001.word_prob_[w])
    # An unseen word scores below every seen word.
    assert detector001.word_index(s.src_word[1:2])[0] == -1
    floor = detector001.prior_strength * detector001.unseen_word_prob_
    assert s.src_prob[1] <= floor / detector001.prior_strength + 1e-12
    assert s.score[1] < detector001.score(capture001).score.min()


def test_attacks_rise_to_the_top_of_synthetic_traffic() -> None:
    flows = generate_flows(20_000, hosts=80, attack_rate=0.005, seed=3)
    det = ThreatDetector(topics=10, passes=3).fit(flows)
    scores = det.score(flows).score
    y = np.array(flows.column("label").to_pylist()) == "Malicious"
    metrics = ranking_metrics(y, scores)
    assert metrics["roc_auc"] > 0.85
    top = y[np.argsort(scores)[:20]]
    assert top.mean() >= 0.7  # port scans lead the list


def test_artifact_round_trip(detector001: ThreatDetector, capture001: pa.Table, tmp_path: Path) -> None:
    store = open_store(tmp_path)
    manifest = publish_model(store, "t1", detector001, metrics={"x": 1.0}, engine="local", data_fingerprint="f")
    files = {p.name for p in (tmp_path / "threat" / "t1" / "1").iterdir()}
    assert {"vocab.npy", "topic_word.npy", "ip_topic.npy", "ips.parquet", "words.parquet"} <= files
    assert not any(name.endswith((".pkl", ".pickle", ".joblib")) for name in files)
    loaded = store.load(manifest.ref)
    assert loaded.arrays["topic_word"].shape == (8, detector001.n_words)
    assert loaded.tables["words"].column("word").to_pylist()[0] == detector001.describe(detector001.vocab_[:1])[0]
    model = from_artifact(loaded)
    assert np.allclose(model.score(capture001).score, detector001.score(capture001).score)
    del loaded, model


def test_artifact_refuses_other_apps_and_bad_shapes(detector001: ThreatDetector, tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.publish("recommend", "x", arrays={"a": np.zeros(2)}, params={}, engine="local", data_fingerprint="f")
    with pytest.raises(ArtifactError, match="not a threat model"):
        from_artifact(store.load("recommend/x"))
    store.publish(
        "threat",
        "bad",
        arrays={
            "vocab": np.zeros(3, np.int64),
            "topic_word": np.zeros((2, 4), np.float32),
            "word_counts": np.zeros(3),
            "ip_topic": np.zeros((1, 2), np.float32),
            "ip_words": np.zeros(1),
        },
        tables={"ips": pa.table({"ip": ["10.0.0.1"]})},
        params=detector001.get_params(),
        engine="local",
        data_fingerprint="f",
    )
    with pytest.raises(ArtifactError, match="shapes disagree"):
        from_artifact(store.load("threat/bad"))


def test_parameters_are_checked() -> None:
    with pytest.raises(ValidationError, match="scorer"):
        ThreatDetector(scorer="best").fit(generate_flows(100, hosts=5))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not fitted"):
        ThreatDetector().score(generate_flows(10, hosts=5))
