"""EASE and item-kNN behind the recommender contract, and the ALS confidence fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from threadpoolctl import threadpool_limits

from mlscale.apps.recommend import ImplicitRecommender, from_artifact, precompute, publish_model, update_model
from mlscale.apps.recommend.itemitem import EaseRecommender, ItemItemRecommender, KnnRecommender, ease_from_gram
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.apps.recommend.model import weight_matrix
from mlscale.apps.recommend.predictor import RecommendPredictor, RecommendRequest, SimilarRequest
from mlscale.data import interaction_schema
from mlscale.errors import ValidationError
from mlscale.registry import open_store

STAR_WARS, EMPIRE, JEDI = 50, 172, 181


@pytest.fixture(scope="module", params=["ease", "knn"])
def item_item(request: pytest.FixtureRequest, ml100k_matrix: InteractionMatrix) -> ItemItemRecommender:
    model: ItemItemRecommender = (
        EaseRecommender(l2=300.0, threads=1) if request.param == "ease" else KnnRecommender(neighbours=50, threads=1)
    )
    return model.fit(ml100k_matrix)


@pytest.mark.parametrize("weighting", ["none", "bm25"])
def test_als_confidence_is_one_plus_alpha_times_weight(ml100k_matrix: InteractionMatrix, weighting: str) -> None:
    # The documented C = 1 + alpha * w: the same as implicit fitted on that matrix with its alpha at 1.
    # (implicit itself takes a stored value as the whole confidence; BM25 weights below 1 made observed
    # entries weigh less than missing ones.)
    from implicit.cpu.als import AlternatingLeastSquares

    ours = ImplicitRecommender(factors=8, alpha=3.0, iterations=3, weighting=weighting, threads=1, seed=0)  # type: ignore[arg-type]
    ours.fit(ml100k_matrix)
    conf = weight_matrix(ml100k_matrix.csr, weighting)
    conf.data = 1.0 + 3.0 * conf.data
    assert conf.data.min() > 1.0
    with threadpool_limits(1, "blas"):
        ref = AlternatingLeastSquares(
            factors=8, regularization=1.0, alpha=1.0, iterations=3, num_threads=1, random_state=0
        )
        ref.fit(conf, show_progress=False)
    np.testing.assert_allclose(ours.item_factors_, ref.item_factors, rtol=1e-4, atol=1e-5)


def test_ease_closed_form_matches_the_formula() -> None:
    rng = np.random.default_rng(1)
    x = (rng.random((40, 12)) < 0.3).astype(np.float64)
    lam = 5.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(12))
    b = np.eye(12) - p / np.diag(p)  # B = I - P diag(1/diag P): column j divided by P_jj
    got = ease_from_gram((x.T @ x).astype(np.float32), lam)
    np.testing.assert_allclose(got, b.T, atol=1e-4)
    assert np.all(np.diag(got) == 0)


def test_catalogue_too_large_for_ease_is_refused_naming_als(ml100k_matrix: InteractionMatrix) -> None:
    with pytest.raises(ValidationError, match=r"at most 11 items fit.*use ALS") as err:
        EaseRecommender(memory_budget=1000).fit(ml100k_matrix)
    assert err.value.field == "model"


def test_serving_matches_the_model(item_item: ItemItemRecommender) -> None:
    predictor = RecommendPredictor(item_item, model_ref="recommend/x", version=1)
    predictor.warm()
    users: list[int | str] = [1, 2, 3, 500]
    out = predictor.recommend_batch([RecommendRequest(users=users, k=10), RecommendRequest(users=[7], k=5)])
    direct = item_item.recommend(users, k=10)
    first = out[0]
    assert not isinstance(first, Exception)
    assert [r.items for r in first.results] == direct.items.tolist()
    one = out[1]
    assert not isinstance(one, Exception)
    assert one.results[0].items == item_item.recommend([7], k=5).items[0].tolist()
    similar = predictor.similar_batch([SimilarRequest(items=[STAR_WARS], k=5)])[0]
    assert not isinstance(similar, Exception)
    assert STAR_WARS not in similar.results[0].items
    assert len(similar.results[0].items) == 5
    assert predictor.describe()["kind"] == item_item.model


def test_fold_in_is_the_history_product(item_item: ItemItemRecommender) -> None:
    # A cold user holding a known user's exact history is scored exactly like that user.
    row = int(item_item.user_index([42])[0])
    history = item_item.item_ids_[
        item_item.seen_.indices[item_item.seen_.indptr[row] : item_item.seen_.indptr[row + 1]]
    ]
    warm = item_item.recommend([42], k=10)
    cold = item_item.recommend([10**7], k=10, recent_items={10**7: history.tolist()})
    assert cold.strategy.tolist() == ["fold-in"]
    assert cold.items.tolist() == warm.items.tolist()
    np.testing.assert_allclose(cold.scores, warm.scores, rtol=1e-5)
    star = item_item.recommend([10**7], k=10, recent_items={10**7: [STAR_WARS, EMPIRE]})
    assert JEDI in star.items[0].tolist()


def test_update_registry_and_precompute(item_item: ItemItemRecommender, tmp_path: Path) -> None:
    n = 2
    new = pa.table(
        {
            "user": [5000, 5000],
            "item": [STAR_WARS, EMPIRE],
            "rating": pa.array(np.full(n, 5.0, np.float32)),
            "timestamp": pa.nulls(n, pa.int64()),
        },
        schema=interaction_schema(pa.int64()),
    )
    updated = update_model(item_item, new)
    assert isinstance(updated, type(item_item))
    assert updated.n_users == item_item.n_users + 1
    after = updated.recommend([5000], k=10)
    assert after.strategy.tolist() == ["model"]
    folded = item_item.recommend([5000], k=10, recent_items={5000: [STAR_WARS, EMPIRE]})
    assert after.items.tolist() == folded.items.tolist()

    store = open_store(tmp_path / "reg")
    manifest = publish_model(store, "ii", updated, metrics={}, engine="local", data_fingerprint="sha256:x")
    loaded = from_artifact(store.load(manifest.ref))
    assert type(loaded) is type(item_item)
    assert loaded.get_params() == updated.get_params()
    assert loaded.recommend([1, 5000], k=10).items.tolist() == updated.recommend([1, 5000], k=10).items.tolist()

    out = tmp_path / "recs.parquet"
    rows = precompute(loaded, out, k=5, chunk_users=300)
    table = pq.read_table(out)
    assert rows == table.num_rows == loaded.n_users * 5
    mine = table.filter(pa.compute.equal(table.column("user"), 5000)).sort_by("rank")
    assert mine.column("item").to_pylist() == after.items[0, :5].tolist()


def test_bad_item_item_parameters_are_named(ml100k_matrix: InteractionMatrix) -> None:
    with pytest.raises(ValidationError) as err:
        EaseRecommender(l2=0.0).fit(ml100k_matrix)
    assert err.value.field == "l2"
    with pytest.raises(ValidationError) as err:
        KnnRecommender(similarity="jaccard").fit(ml100k_matrix)  # type: ignore[arg-type]
    assert err.value.field == "similarity"


def test_spark_precompute_refuses_item_item_models(item_item: ItemItemRecommender, tmp_path: Path) -> None:
    from mlscale.apps.recommend.train_spark import precompute_spark
    from mlscale.engines.spark import SparkEngine

    engine = SparkEngine(master="local[1]")  # never started: the model is refused first
    with pytest.raises(ValidationError, match="--engine local") as err:
        precompute_spark(engine, item_item, tmp_path / "out")
    assert err.value.field == "engine"
