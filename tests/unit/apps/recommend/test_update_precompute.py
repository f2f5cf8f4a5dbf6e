from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.apps.recommend import ImplicitRecommender, from_artifact, precompute, publish_model, update_model
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.data import interaction_schema
from mlscale.registry import open_store

STAR_WARS, EMPIRE, JEDI = 50, 172, 181


def interactions(users: list[int], items: list[int]) -> pa.Table:
    n = len(users)
    return pa.table(
        {
            "user": users,
            "item": items,
            "rating": pa.array(np.full(n, 5.0, np.float32)),
            "timestamp": pa.nulls(n, pa.int64()),
        },
        schema=interaction_schema(pa.int64()),
    )


def test_update_moves_a_new_user_toward_what_they_did(ml100k_model: ImplicitRecommender) -> None:
    new_user = 5000
    before = ml100k_model.recommend([new_user], k=10)
    assert before.strategy.tolist() == ["popularity"]
    updated = update_model(ml100k_model, interactions([new_user] * 2, [STAR_WARS, EMPIRE]))
    after = updated.recommend([new_user], k=10)
    assert after.strategy.tolist() == ["model"]
    assert updated.n_users == ml100k_model.n_users + 1
    assert JEDI in after.items[0].tolist()
    assert not {STAR_WARS, EMPIRE} & set(after.items[0].tolist())
    # untouched users keep their factors
    assert np.array_equal(updated.user_factors_[:5], ml100k_model.user_factors_[:5])


def test_update_adds_new_items(ml100k_model: ImplicitRecommender) -> None:
    new_item = 99_001
    # users who like Star Wars start watching a brand-new item
    users = [int(u) for u in ml100k_model.user_ids_[:40]]
    updated = update_model(ml100k_model, interactions(users, [new_item] * len(users)))
    assert updated.n_items == ml100k_model.n_items + 1
    assert np.abs(updated.item_factors_[-1]).sum() > 0
    assert int(updated.item_popularity_[-1]) == 40
    # the new item scores higher for the users who took it than for the others
    scores = updated.user_factors_ @ updated.item_factors_[-1]
    assert scores[:40].mean() > scores[40:].mean() + 0.1


def test_publish_load_round_trip_gives_same_recommendations(ml100k_model: ImplicitRecommender, tmp_path: Path) -> None:
    store = open_store(tmp_path)
    manifest = publish_model(
        store, "ml", ml100k_model, metrics={"ndcg@10": 0.1}, engine="local", data_fingerprint="sha256:x"
    )
    loaded = from_artifact(store.load(manifest.ref))
    assert not loaded.item_factors_.flags.writeable  # memory-mapped, shared between processes
    a = ml100k_model.recommend([1, 2, 10**8], k=10, recent_items={10**8: [STAR_WARS]})
    b = loaded.recommend([1, 2, 10**8], k=10, recent_items={10**8: [STAR_WARS]})
    assert a.items.tolist() == b.items.tolist()
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_precompute_writes_every_users_top_k(ml100k_model: ImplicitRecommender, tmp_path: Path) -> None:
    out = tmp_path / "recs.parquet"
    rows = precompute(ml100k_model, out, k=7, chunk_users=100)
    table = pq.read_table(out)
    assert rows == table.num_rows == ml100k_model.n_users * 7
    first = table.filter(pa.compute.equal(table.column("user"), 42)).sort_by("rank")
    assert first.column("item").to_pylist() == ml100k_model.recommend([42], k=7).items[0].tolist()
    assert not list(tmp_path.glob(".*"))


def test_tiny_matrix_with_string_ids() -> None:
    m = InteractionMatrix.from_arrays(np.array(["a", "a", "b", "c"]), np.array(["x", "y", "x", "z"]))
    model = ImplicitRecommender(factors=4, iterations=3, threads=1).fit(m)
    recs = model.recommend(["a", "zz"], k=2, recent_items={"zz": ["x"]})
    assert recs.items.dtype.kind == "U"
    assert recs.strategy.tolist() == ["model", "fold-in"]
