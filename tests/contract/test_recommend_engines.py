"""The same recommender suite over every engine: one command, one artifact format, one quality bar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mlscale.apps.recommend import from_artifact
from mlscale.cli import main
from mlscale.engines.spark import SparkEngine
from mlscale.registry import Manifest, open_store

ENGINES = [pytest.param("local", id="local"), pytest.param("spark", id="spark", marks=pytest.mark.spark)]


@pytest.fixture(scope="module", params=ENGINES)
def trained(
    request: pytest.FixtureRequest, shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, Manifest]:
    engine = request.param
    if engine == "spark":
        request.getfixturevalue("spark_engine")
    registry = tmp_path_factory.mktemp(f"registry-{engine}")
    argv = [
        "train",
        "recommend",
        "--data",
        "movielens-100k",
        "--data-dir",
        str(shared_data),
        "--name",
        "ml",
        "--engine",
        engine,
        "--evaluate",
        "--quiet",
        "--registry",
        str(registry),
        # ALS outright, on both engines: this suite compares the engines' ALS (the default has its own tests)
        "--model",
        "als",
    ]
    if engine == "spark":
        argv += ["--spark-master", "local[2]"]
    assert main(argv) == 0
    return engine, registry, open_store(registry).resolve("recommend/ml")


def test_manifest_records_engine_and_quality(trained: tuple[str, Path, Manifest]) -> None:
    engine, _, manifest = trained
    assert manifest.engine == engine
    # the quality bar holds whichever engine trained the model
    assert manifest.metrics["ndcg_lift"] >= 0.30, manifest.metrics
    assert manifest.extra["users"] == 943
    assert manifest.extra["items"] == 1682


def test_same_artifact_format(trained: tuple[str, Path, Manifest]) -> None:
    _, registry, manifest = trained
    loaded = open_store(registry).load(manifest.ref)
    assert sorted(loaded.arrays) == [
        "item_factors",
        "item_ids",
        "item_popularity",
        "seen_data",
        "seen_indices",
        "seen_indptr",
        "user_factors",
        "user_ids",
    ]
    assert loaded.arrays["user_factors"].dtype == np.float32
    assert loaded.arrays["user_ids"].dtype == np.int64
    assert loaded.arrays["seen_indptr"].size == 944


def test_served_by_the_same_code(trained: tuple[str, Path, Manifest]) -> None:
    _, registry, manifest = trained
    model = from_artifact(open_store(registry).load(manifest.ref))
    recs = model.recommend([1, 10**9], k=10, recent_items={10**9: [50, 172]})
    assert recs.strategy.tolist() == ["model", "fold-in"]
    assert recs.valid.all()
    seen_by_1 = set(model.item_ids_[model.seen_[int(model.user_index([1])[0])].indices].tolist())
    assert not seen_by_1 & set(recs.items[0].tolist())
    assert 181 in model.similar_items([50], k=10).items[0].tolist()  # Return of the Jedi next to Star Wars


@pytest.mark.spark
def test_spark_precompute_matches_local(
    trained: tuple[str, Path, Manifest], tmp_path: Path, spark_engine: SparkEngine
) -> None:
    engine, registry, _ = trained
    if engine != "local":
        pytest.skip("compares the two engines' batch scoring on the local model")
    common = ["precompute", "recommend", "--model", "ml", "--k", "5", "--registry", str(registry)]
    assert main([*common, "--out", str(tmp_path / "local.parquet")]) == 0
    assert main([*common, "--out", str(tmp_path / "spark"), "--engine", "spark"]) == 0
    local = pq.read_table(tmp_path / "local.parquet").sort_by([("user", "ascending"), ("rank", "ascending")])
    spark = pq.read_table(tmp_path / "spark").sort_by([("user", "ascending"), ("rank", "ascending")])
    assert local.num_rows == spark.num_rows == 943 * 5
    assert local.column("user").to_pylist() == spark.column("user").to_pylist()
    same = np.mean(np.array(local.column("item").to_pylist()) == np.array(spark.column("item").to_pylist()))
    assert same > 0.99  # identical but for ties in float scores
    np.testing.assert_allclose(local.column("score").to_numpy(), spark.column("score").to_numpy(), atol=1e-4)


@pytest.mark.spark
def test_spark_metrics_agree_with_local(spark_engine: SparkEngine) -> None:
    from mlscale.apps.recommend import ranking_metrics
    from mlscale.apps.recommend.train_spark import spark_ranking_metrics

    rng = np.random.default_rng(1)
    recs = np.stack([rng.choice(50, 10, replace=False) for _ in range(40)])
    truth = [rng.choice(50, int(rng.integers(1, 15)), replace=False) for _ in range(40)]
    local = ranking_metrics(recs, truth, k=10, n_items=50)
    spark = spark_engine.session
    recs_df = spark.createDataFrame([(u, [int(x) for x in recs[u]]) for u in range(40)], "uidx int, items array<int>")
    truth_df = spark.createDataFrame([(u, [int(x) for x in truth[u]]) for u in range(40)], "uidx int, truth array<int>")
    remote = spark_ranking_metrics(recs_df, truth_df, 10, 50)
    for name, value in local.items():
        assert remote[name] == pytest.approx(value, abs=1e-9), name
