"""The evaluation functions of issue 18 on small real data: seeds, spread, DNS mixtures, tables."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mlscale.apps.threat import read_dns, read_flows
from mlscale.apps.threat.study import (
    TLDS,
    choose_beacon_weight,
    dns_iforest_scores,
    dns_mixture,
    dns_study,
    flow_study,
    load_dga_names,
    mean_sd,
    study_markdown,
)
from mlscale.errors import DataError, ValidationError


@pytest.fixture(scope="module")
def sme11(slips: Path) -> pa.Table:
    """766 labelled real flows (CTU-SME-11): 719 malicious, so mixtures keep one or two of them."""
    return read_flows(slips / "test18-ctu-sme-11" / "conn.log.labeled")


def test_flow_study_rows_per_seed(sme11: pa.Table) -> None:
    rows = flow_study({"sme": sme11}, fractions=(0.03,), seeds=(0, 1), methods=("iforest", "mlscale+beacon"),
                      params={"detector": {"topics": 4, "passes": 2}})  # fmt: skip
    assert [(r["method"], len(r["roc_auc"]), len(r["host_p10"])) for r in rows] == [
        ("iforest", 2, 2),
        ("mlscale+beacon", 2, 2),
    ]
    assert all(0.0 <= a <= 1.0 for r in rows for a in r["roc_auc"])
    table = study_markdown(rows)
    assert table.splitlines()[2].startswith("| sme | 3% | iforest | 48 |")
    with pytest.raises(ValidationError, match="unknown method"):
        flow_study({"sme": sme11}, methods=("lstm",))


def test_beacon_weight_is_chosen_on_validation_seeds(capture001: pa.Table) -> None:
    best, means = choose_beacon_weight({"001": capture001}, grid=(0.0, 4.0), fractions=(0.03,), seeds=(100,),
                                       params={"detector": {"topics": 8, "passes": 3}})  # fmt: skip
    assert set(means) == {0.0, 4.0}
    assert best == 4.0
    assert means[4.0] > means[0.0]  # on 001, beacons are what the topic model misses


def test_dns_mixture_is_realistic(strato: Path, shared_data: Path) -> None:
    dns = read_dns(strato / "009-zeek-malicious" / "data" / "dns.log.labeled")
    generated, legit = load_dga_names(shared_data / "dga-domains-wang2021" / "domains_features.csv.gz")
    mix, truth = dns_mixture(dns, generated, legit, 0.01, seed=3, clients=2)
    assert 0.009 < truth.mean() <= 0.01
    detail = mix.column("detailed_label")
    gen = mix.filter(pa.array(truth))
    ok = mix.filter(pc.fill_null(pc.equal(detail, "mixed-legitimate"), False))
    assert gen.num_rows == ok.num_rows
    assert len(pc.unique(gen.column("client_ip"))) == 2
    assert {q.rsplit(".", 1)[1] for q in gen.column("query").to_pylist() + ok.column("query").to_pylist()} <= set(TLDS)
    # rcode and frame length come from the log's own values, for both kinds of mixed names.
    assert set(gen.column("rcode").to_pylist()) <= set(dns.column("rcode").to_pylist())
    assert "Malicious" not in set(mix.filter(pa.array(~truth)).column("label").to_pylist())
    assert dns_iforest_scores(mix.slice(0, 500)).shape == (500,)
    rows = dns_study(mix.slice(0, 3000), generated, legit, fractions=(0.02,), seeds=(0,), methods=("dga",))
    assert rows[0]["method"] == "dga"
    assert rows[0]["roc_auc"][0] > 0.9
    assert "| 2% | dga |" in study_markdown(rows, kind="dns")
    with pytest.raises(ValidationError, match="fraction"):
        dns_mixture(dns, generated, legit, 0.6, seed=0)


def test_dga_names_file_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "names.csv.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("name,kind\nabc,dga\n")
    with pytest.raises(DataError, match="expected a 'domain,class,...' header"):
        load_dga_names(bad)


def test_mean_sd() -> None:
    assert mean_sd([0.5]) == "0.500 +- 0.000"
    assert mean_sd(np.array([1.0, 0.0]).tolist()) == "0.500 +- 0.707"
