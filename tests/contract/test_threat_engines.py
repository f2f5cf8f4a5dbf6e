"""The threat model over every engine: one command, one artifact format, comparable rankings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlscale.apps.threat import from_artifact, ranking_metrics, read_flows, seeded_mixture
from mlscale.apps.threat.evaluate import labels_of
from mlscale.cli import main
from mlscale.registry import Manifest, open_store

ENGINES = [pytest.param("local", id="local"), pytest.param("spark", id="spark", marks=pytest.mark.spark)]
CAPTURE = ("stratosphere-zeek-labeled", "008-zeek-mixed", "data", "conn.log.labeled")


@pytest.fixture(scope="module")
def mixture(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A realistic 2% mixture of a real capture, as Parquet (what `mlscale threat ingest` writes)."""
    import pyarrow.parquet as pq

    table = seeded_mixture(read_flows(shared_data.joinpath(*CAPTURE)), 0.02, seed=0)
    folder = tmp_path_factory.mktemp("mix") / "flows"
    folder.mkdir()
    pq.write_table(table, folder / "part-00000.parquet")
    return folder


@pytest.fixture(scope="module", params=ENGINES)
def trained(
    request: pytest.FixtureRequest, mixture: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, Manifest]:
    engine = request.param
    if engine == "spark":
        request.getfixturevalue("spark_engine")
    registry = tmp_path_factory.mktemp(f"registry-{engine}")
    argv = [
        "train",
        "threat",
        "--data",
        str(mixture),
        "--name",
        "mix",
        "--engine",
        engine,
        "--topics",
        "10",
        "--passes",
        "3",
        "--registry",
        str(registry),
    ]
    if engine == "spark":
        argv += ["--spark-master", "local[2]"]
    assert main(argv) == 0
    return engine, registry, open_store(registry).resolve("threat/mix")


def test_same_artifact_format(trained: tuple[str, Path, Manifest]) -> None:
    engine, registry, manifest = trained
    assert manifest.engine == engine
    assert {Path(f).name for f in manifest.files} >= {
        "vocab.npy",
        "topic_word.npy",
        "word_counts.npy",
        "ip_topic.npy",
        "ip_words.npy",
        "ips.parquet",
        "words.parquet",
    }
    loaded = open_store(registry).load(manifest.ref)
    topic_word = loaded.arrays["topic_word"]
    assert topic_word.shape[0] == 10
    assert np.allclose(topic_word.sum(axis=1), 1.0, atol=1e-4)
    assert np.allclose(loaded.arrays["ip_topic"].sum(axis=1), 1.0, atol=1e-4)
    del loaded


def test_same_corpus_and_a_useful_ranking(trained: tuple[str, Path, Manifest], mixture: Path) -> None:
    engine, registry, manifest = trained
    model = from_artifact(open_store(registry).load(manifest.ref))
    table = read_flows(mixture)
    # Both engines build the corpus with the same word function: identical vocabularies and totals.
    assert model.n_words == 219
    assert model.n_ips == 188
    assert model.word_counts_.sum() == 2 * table.num_rows
    metrics = ranking_metrics(labels_of(table), model.score(table).score)
    assert metrics["roc_auc"] > 0.9, (engine, metrics)
