"""Generated-domain evidence: known generated names above real ones, learnt from the log itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlscale.apps.threat import read_dns
from mlscale.apps.threat.dga import DgaModel, dga_evidence, dns_scores, encode_labels, registered_label
from mlscale.apps.threat.evaluate import ranking_metrics
from mlscale.apps.threat.study import dns_mixture, load_dga_names
from mlscale.errors import ValidationError

# Real generated names (published DGA feeds, as in the Wang 2021 data set) and real popular names.
GENERATED = ["znwaenhancedysb", "tjnngesaplshf", "beumgkwkgpgtoavrqluc", "qnjbkbfnc", "onhyhyfqbex",
             "orozdqfeqxcmbycqqgcyeiknuw", "tsujpppgrdnmdseq", "dydsnufncpll", "q4k4o8gl1n14k85vqbu03te",
             "fmadbfoddonaekmk"]  # fmt: skip
REAL = ["google", "youtube", "facebook", "wikipedia", "amazon", "twitter", "instagram", "linkedin", "netflix",
        "microsoft", "apple", "yahoo", "reddit", "github", "stackoverflow", "mozilla", "ubuntu", "dropbox"]  # fmt: skip


@pytest.fixture(scope="module")
def dns009(strato: Path) -> pa.Table:
    return read_dns(strato / "009-zeek-malicious" / "data" / "dns.log.labeled")


@pytest.fixture(scope="module")
def dga_names(shared_data: Path) -> tuple[list[str], list[str]]:
    return load_dga_names(shared_data / "dga-domains-wang2021" / "domains_features.csv.gz")


def test_registered_label_and_encoding() -> None:
    labels = registered_label(pa.array(["a.b.example.co.uk", "x.google.com", "wpad", None]))
    assert labels.to_pylist() == ["example", "google", "wpad", ""]
    mat, lengths = encode_labels(pa.array(["ab", "a" * 80, ""]))
    assert lengths.tolist() == [2, 63, 0]
    assert mat[0, :4].tolist() == [39, 1, 2, 40]  # start, a, b, end
    assert mat[2, :2].tolist() == [39, 40]


def test_generated_names_are_less_likely_than_real_ones(dga_names: tuple[list[str], list[str]]) -> None:
    _, legit = dga_names
    # A model of a few thousand real names (as a log holds), scored on names it never saw.
    model = DgaModel().fit(pa.array([f"www.{n}.com" for n in legit[1000:4000]]))
    real = model.char_nll(pa.array(REAL))
    gen = model.char_nll(pa.array(GENERATED))
    assert np.median(gen) > np.median(real) + 0.5
    y = np.r_[np.zeros(len(REAL), bool), np.ones(len(GENERATED), bool)]
    assert ranking_metrics(y, -np.r_[real, gen])["roc_auc"] > 0.9


def test_leave_out_stops_one_off_names_explaining_themselves() -> None:
    names = pa.array([f"{n}.com" for n in REAL * 3] + ["xq7vz9kkjw.com"])
    model = DgaModel().fit(names)
    own = model.char_nll(pa.array(["xq7vz9kkjw"]))[0]
    out = model.char_nll(pa.array(["xq7vz9kkjw"]), leave_out=True)[0]
    assert out > own + 0.5


def test_evidence_on_the_real_log_with_generated_names_mixed_in(
    dns009: pa.Table, dga_names: tuple[list[str], list[str]]
) -> None:
    generated, legit = dga_names
    mix, truth = dns_mixture(dns009, generated, legit, 0.02, seed=7)
    assert 0.015 < truth.mean() <= 0.02
    ev = dga_evidence(mix)
    assert ev.num_rows == mix.num_rows
    assert ranking_metrics(truth, -ev.column("dga").to_numpy())["roc_auc"] > 0.95
    # The character features alone, among names asked once: generated vs legitimate one-offs.
    one_off = ev.column("dga_rarity").to_numpy() >= ev.column("dga_rarity").to_numpy().max() - 1e-9
    char = dga_evidence(mix, weights={"rarity": 0.0, "client_oneoff": 0.0, "client_nx": 0.0})
    auc = ranking_metrics(truth[one_off], -char.column("dga").to_numpy()[one_off])["roc_auc"]
    assert auc > 0.8


def test_nxdomain_burst_of_a_client() -> None:
    n = 200
    rng = np.random.default_rng(0)
    clients = ["10.0.0.1"] * 100 + [f"10.0.0.{i}" for i in rng.integers(2, 20, 70)] + ["10.0.0.66"] * 30
    rcode = [0] * 170 + [3] * 30
    table = pa.table(
        {
            "ts": pa.array(np.full(n, 1_700_000_000_000_000)).cast(pa.timestamp("us")),
            "client_ip": clients,
            "query": [f"{REAL[i % len(REAL)]}.com" for i in range(170)] + [f"{g}.net" for g in GENERATED * 3],
            "rcode": pa.array(rcode, pa.int32()),
        }
    )
    ev = dga_evidence(table)
    nx = ev.column("dga_client_nx").to_numpy()
    assert nx[-1] == pytest.approx(np.log1p(30))
    assert nx[0] == 0.0
    assert ev.column("dga").to_numpy()[170:].min() > ev.column("dga").to_numpy()[:100].max()


def test_scores_and_checks() -> None:
    assert dns_scores(np.array([-2.0]), np.array([1.0]), lda_weight=0.5).tolist() == [-2.0]
    with pytest.raises(ValidationError, match="unknown DGA feature"):
        dga_evidence(pa.table({"query": ["a.com"]}), weights={"vowels": 1.0})
    with pytest.raises(ValidationError, match="not fitted"):
        DgaModel().char_nll(pa.array(["a"]))


def test_score_dns_feeds_the_host_ranking(dns009: pa.Table, dga_names: tuple[list[str], list[str]]) -> None:
    from mlscale.apps.threat import ThreatDetector
    from mlscale.apps.threat.dga import score_dns
    from mlscale.apps.threat.hosts import rank_hosts

    generated, legit = dga_names
    mix, truth = dns_mixture(dns009, generated, legit, 0.02, seed=1, clients=1)
    bot = mix.filter(pa.array(truth)).column("client_ip")[0].as_py()
    lda = ThreatDetector(kind="dns", topics=5, passes=2, seed=0).fit(mix)
    scored = score_dns(mix, lda)
    assert scored.column("rank").to_pylist()[:3] == [1, 2, 3]
    assert np.all(np.diff(scored.column("score").to_numpy()) >= 0)
    hosts = rank_hosts(dns=scored)
    assert hosts.column("host")[0].as_py() == bot
    with pytest.raises(ValidationError, match="DNS model"):
        score_dns(mix, ThreatDetector())
