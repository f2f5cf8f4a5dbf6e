"""The approximate item index: build and recall, same answers as the exact path, storage, refusals."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mlscale.apps.recommend import ImplicitRecommender, from_artifact, precompute, publish_model
from mlscale.apps.recommend.ann import AnnParams, RecallWarning, attach_index, build_index
from mlscale.apps.recommend.predictor import RecommendPredictor, RecommendRequest, SimilarRequest
from mlscale.apps.recommend.synthetic_catalogue import SyntheticCatalogue, synthetic_model
from mlscale.cli import main
from mlscale.errors import ArtifactError, DependencyError, ValidationError
from mlscale.registry import open_store

K = 10


def _model(items: int = 3000, users: int = 400, factors: int = 16, seed: int = 0) -> ImplicitRecommender:
    return synthetic_model(SyntheticCatalogue(items=items, users=users, factors=factors, seed=seed), threads=1)


@pytest.fixture(scope="module")
def exact() -> ImplicitRecommender:
    return _model()


@pytest.fixture(scope="module")
def flat() -> ImplicitRecommender:
    model = _model()
    attach_index(model, AnnParams(kind="flat"), quiet=True)
    return model


@pytest.fixture(scope="module")
def ivf() -> ImplicitRecommender:
    model = _model()
    attach_index(model, AnnParams(kind="auto", exact_below=1000), quiet=True)  # threshold lowered
    return model


def _sets(items: np.ndarray) -> list[set[int]]:
    return [set(row.tolist()) for row in items]


def test_build_measures_recall_on_a_small_catalogue(ivf: ImplicitRecommender) -> None:
    index = ivf.ann_
    assert index is not None
    assert index.kind == "ivf"
    meta = index.meta
    assert meta["recall_at_k"] >= 0.95
    assert meta["met_target"] is True
    assert meta["sample_users"] == 400
    assert meta["k"] == K
    assert meta["curve"][-1]["setting"] == meta["nprobe"]
    assert meta["curve"][-1]["recall"] == meta["recall_at_k"]
    assert all(c["recall"] < 0.95 for c in meta["curve"][:-1])  # the first setting that reaches the target
    assert meta["bytes_per_item"] > 0
    assert meta["items"] == 3000


def test_auto_builds_nothing_below_the_threshold() -> None:
    model = _model(items=500)
    assert attach_index(model, AnnParams(), quiet=True) is None
    assert model.ann_ is None


def test_exact_index_gives_the_exact_top_k(exact: ImplicitRecommender, flat: ImplicitRecommender) -> None:
    users = exact.user_ids_[:100]
    for kwargs in ({}, {"exclude_seen": False}, {"exclude": [1, 2, 3, 50]}, {"include": list(range(1, 400))}):
        a = exact.recommend(users, k=K, **kwargs)  # type: ignore[arg-type]
        b = flat.recommend(users, k=K, **kwargs)  # type: ignore[arg-type]
        assert np.array_equal(a.items, b.items), kwargs
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)


def test_filters_and_seen_items_hold_with_the_index(exact: ImplicitRecommender, ivf: ImplicitRecommender) -> None:
    users = ivf.user_ids_[:200]
    excluded = [int(i) for i in exact.recommend(users[:5], k=3).items.ravel()]
    recs = ivf.recommend(users, k=K, exclude=excluded)
    assert recs.valid.all()
    rows = ivf.user_index(users)
    for row, items in zip(rows, recs.items, strict=True):
        seen = set(ivf.item_ids_[ivf.seen_.indices[ivf.seen_.indptr[row] : ivf.seen_.indptr[row + 1]]].tolist())
        assert not (set(items.tolist()) & (seen | set(excluded)))
    truth = exact.recommend(users, k=K, exclude=excluded)
    hits = np.mean([len(a & b) / K for a, b in zip(_sets(recs.items), _sets(truth.items), strict=True)])
    assert hits >= 0.9
    # scores are the model's own dot products
    cols = ivf.item_index(recs.items[0])
    np.testing.assert_allclose(recs.scores[0], ivf.item_factors_[cols] @ ivf.user_factors_[rows[0]], rtol=1e-5)
    include = list(range(1, 60))
    assert set(ivf.recommend(users, k=K, include=include).items.ravel().tolist()) <= set(include)


def test_heavy_filtering_falls_back_to_exact(exact: ImplicitRecommender, ivf: ImplicitRecommender) -> None:
    excluded = list(range(1, 2990))  # more than MAX_FETCH: exact scoring, still k answers where k exist
    a = exact.recommend(exact.user_ids_[:3], k=5, exclude=excluded, exclude_seen=False)
    b = ivf.recommend(ivf.user_ids_[:3], k=5, exclude=excluded, exclude_seen=False)
    assert np.array_equal(a.items, b.items)


def test_fold_in_goes_through_the_index(exact: ImplicitRecommender, flat: ImplicitRecommender) -> None:
    recent = {-5: [1, 2, 3, 40]}
    a = exact.recommend([-5], k=K, recent_items=recent)
    b = flat.recommend([-5], k=K, recent_items=recent)
    assert b.strategy.tolist() == ["fold-in"]
    assert np.array_equal(a.items, b.items)
    assert not set(b.items[0].tolist()) & {1, 2, 3, 40}


def test_similar_through_the_index() -> None:
    model = _model()
    norms = np.linalg.norm(model.item_factors_, axis=1, keepdims=True)
    model.item_factors_ = np.ascontiguousarray(model.item_factors_ / norms, dtype=np.float32)  # cosine = dot
    truth = model.similar_items([1, 2, 3, 99999], k=5)
    attach_index(model, AnnParams(kind="flat"), quiet=True)
    assert model.ann_ is not None
    assert model.ann_.similar_ok
    assert model.ann_.meta["similar_recall_at_k"] == 1.0
    got = model.similar_items([1, 2, 3, 99999], k=5)
    assert np.array_equal(truth.items[truth.valid], got.items[got.valid])
    assert got.strategy.tolist() == ["model", "model", "model", "unknown"]
    assert not (got.items[:3] == np.array([[1], [2], [3]])).any()


def test_similar_below_its_recall_target_stays_exact(exact: ImplicitRecommender, ivf: ImplicitRecommender) -> None:
    assert ivf.ann_ is not None
    if not ivf.ann_.similar_ok:
        assert np.array_equal(exact.similar_items([1, 2], k=5).items, ivf.similar_items([1, 2], k=5).items)


def test_a_missed_target_warns_and_min_recall_fails() -> None:
    model = _model()
    with pytest.warns(RecallWarning, match="below the target"):
        build_index(model.item_factors_, model.user_factors_, AnnParams(kind="ivf", nlist=64, nprobe=1))
    with pytest.raises(ValidationError, match="below the minimum") as err:
        build_index(
            model.item_factors_, model.user_factors_, AnnParams(kind="ivf", nlist=64, nprobe=1, min_recall=0.99)
        )
    assert err.value.field == "ann_min_recall"


def test_bad_params_and_missing_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as err:
        AnnParams(kind="lsh")  # type: ignore[arg-type]
    assert err.value.field == "ann_kind"
    with pytest.raises(ValidationError):
        AnnParams(recall_target=1.5)
    monkeypatch.setitem(sys.modules, "faiss", None)  # fault: faiss not installed
    model = _model(items=200)
    with pytest.raises(DependencyError, match=r"pip install 'mlscale\[recommend\]'"):
        attach_index(model, AnnParams(kind="ivf"), quiet=True)
    assert attach_index(model, AnnParams(exact_below=10), quiet=True) is None  # auto: no index, no failure


def test_index_round_trips_through_the_registry(tmp_path: Path, ivf: ImplicitRecommender) -> None:
    store = open_store(tmp_path)
    manifest = publish_model(store, "big", ivf, metrics={}, engine="synthetic", data_fingerprint="x")
    assert "ann_index.npy" in manifest.files
    assert manifest.extra["ann"]["recall_at_k"] >= 0.95
    assert store.load("recommend/big").arrays["ann_index"].size == manifest.extra["ann"]["bytes"]
    loaded = from_artifact(store.load("recommend/big"))
    assert loaded.ann_ is not None
    assert loaded.ann_.kind == "ivf"
    users = ivf.user_ids_[:50]
    assert np.array_equal(loaded.recommend(users, k=K).items, ivf.recommend(users, k=K).items)


def test_tampered_or_missing_index_file_is_refused(tmp_path: Path, ivf: ImplicitRecommender) -> None:
    store = open_store(tmp_path)
    manifest = publish_model(store, "big", ivf, metrics={}, engine="synthetic", data_fingerprint="x")
    path = store.version_dir("recommend", "big", manifest.version) / "ann_index.npy"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="ann_index.npy"):
        store.load("recommend/big")
    path.unlink()
    with pytest.raises(ArtifactError, match="ann_index.npy"):
        store.load("recommend/big")


def test_garbage_index_bytes_are_refused_clearly(tmp_path: Path, ivf: ImplicitRecommender) -> None:
    store = open_store(tmp_path)
    publish_model(store, "big", ivf, metrics={}, engine="synthetic", data_fingerprint="x")
    loaded = store.load("recommend/big")
    arrays = dict(loaded.arrays)
    arrays["ann_index"] = np.frombuffer(b"not a faiss index at all" * 10, np.uint8)
    broken = type(loaded)(manifest=loaded.manifest, path=loaded.path, arrays=arrays, tables=loaded.tables)
    with pytest.raises(ArtifactError, match="not a readable faiss index"):
        from_artifact(broken)
    del arrays["ann_index"]
    missing = type(loaded)(manifest=loaded.manifest, path=loaded.path, arrays=arrays, tables=loaded.tables)
    with pytest.raises(ArtifactError, match=r"ann_index\.npy is missing"):
        from_artifact(missing)


def test_predictor_uses_the_index_and_still_serves_without(
    exact: ImplicitRecommender, flat: ImplicitRecommender
) -> None:
    users = [int(u) for u in exact.user_ids_[:20]]
    requests = [
        RecommendRequest(users=users[:1], k=K),
        RecommendRequest(users=users, k=K, exclude=[1, 2, 3]),
        RecommendRequest(users=[users[0], 10**9], k=K),
    ]
    with_index = RecommendPredictor(flat, model_ref="recommend/f", version=1)
    without = RecommendPredictor(exact, model_ref="recommend/x", version=1)
    with_index.warm()
    a = without.recommend_batch(requests)
    b = with_index.recommend_batch(requests)
    for ra, rb in zip(a, b, strict=True):
        assert not isinstance(ra, Exception)
        assert not isinstance(rb, Exception)
        assert [r.items for r in ra.results] == [r.items for r in rb.results]
    assert with_index.similar_batch([SimilarRequest(items=[1], k=3)])[0] is not None


def test_precompute_uses_the_index(tmp_path: Path, exact: ImplicitRecommender, flat: ImplicitRecommender) -> None:
    precompute(exact, tmp_path / "x.parquet", k=5, chunk_users=150)
    precompute(flat, tmp_path / "f.parquet", k=5, chunk_users=150)
    assert (
        pq.read_table(tmp_path / "x.parquet")
        .column("item")
        .equals(pq.read_table(tmp_path / "f.parquet").column("item"))
    )


def test_cli_synth_model_builds_publishes_and_recommends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = str(tmp_path / "reg")
    args = ["data", "synth-model", "--items", "3k", "--users", "300", "--factors", "8", "--name", "s"]
    assert main([*args, "--ann-kind", "ivf", "--ann-sample-users", "200", "--registry", reg]) == 0
    out = capsys.readouterr().out
    assert "index: ivf nprobe=" in out
    assert "published recommend/s@1" in out
    assert main(["models", "show", "recommend/s", "--registry", reg]) == 0
    assert '"recall_at_k"' in capsys.readouterr().out
    assert main(["recommend", "s", "--users", "1,2", "--k", "3", "--registry", reg]) == 0
    assert capsys.readouterr().out.count("[model]") == 2


def test_update_rebuilds_the_index_for_the_new_factors(tmp_path: Path, flat: ImplicitRecommender) -> None:
    import pyarrow as pa

    from mlscale.data import interaction_schema

    reg = tmp_path / "reg"
    publish_model(open_store(reg), "s", flat, metrics={}, engine="synthetic", data_fingerprint="x")
    new = pa.table(
        {"user": [1, 1, 99999], "item": [5, 6, 40000], "rating": pa.array([1.0] * 3, pa.float32())},
        schema=interaction_schema(pa.int64()).remove(3),
    ).append_column("timestamp", pa.nulls(3, pa.int64()))
    path = tmp_path / "new.parquet"
    pq.write_table(new, path)
    assert main(["update", "recommend", "s", "--data", str(path), "--registry", str(reg)]) == 0
    updated = from_artifact(open_store(reg).load("recommend/s"))
    assert updated.ann_ is not None
    assert updated.ann_.kind == "flat"
    assert updated.ann_.n_items == updated.n_items == flat.n_items + 1
    users = [1, 2, 3]  # the new user's factors come from one new item: all ties, in any order
    via_index = updated.recommend(users, k=K)
    assert updated.recommend([99999], k=K).valid.all()
    updated.ann_ = None
    assert np.array_equal(via_index.items, updated.recommend(users, k=K).items)


def test_hnsw_is_tuned_stored_and_read_back(tmp_path: Path, exact: ImplicitRecommender) -> None:
    model = _model(items=2000, users=300)
    attach_index(model, AnnParams(kind="hnsw", hnsw_m=16, ef_construction=64), quiet=True)
    assert model.ann_ is not None
    assert model.ann_.meta["ef_search"] >= K
    assert model.ann_.meta["recall_at_k"] >= 0.95
    store = open_store(tmp_path)
    publish_model(store, "h", model, metrics={}, engine="synthetic", data_fingerprint="x")
    loaded = from_artifact(store.load("recommend/h"))
    assert loaded.ann_ is not None
    assert loaded.ann_.kind == "hnsw"
    users = model.user_ids_[:30]
    assert np.array_equal(loaded.recommend(users, k=K).items, model.recommend(users, k=K).items)


def _interactions(tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    users = rng.integers(0, 120, 2400)
    items = (users % 6) * 20 + rng.integers(0, 20, 2400)
    path = tmp_path / "interactions.csv"
    path.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in zip(users, items, strict=True)))
    return str(path)


def test_train_builds_the_index_of_a_factor_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg, data = str(tmp_path / "reg"), _interactions(tmp_path)
    args = ["train", "recommend", "--data", data, "--name", "a", "--registry", reg, "--quiet"]
    assert main([*args, "--model", "als", "--factors", "8", "--iterations", "3", "--ann-kind", "flat"]) == 0
    model = from_artifact(open_store(reg).load("recommend/a"))
    assert model.ann_ is not None
    assert model.ann_.kind == "flat"
    assert open_store(reg).load("recommend/a").manifest.extra["ann"]["recall_at_k"] == 1.0
    # The default (auto) on this small catalogue: no index, the exact path.
    assert main([*args[:5], "b", *args[6:], "--model", "als", "--factors", "8", "--iterations", "3"]) == 0
    assert from_artifact(open_store(reg).load("recommend/b")).ann_ is None


def test_item_item_models_never_get_an_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlscale.apps.recommend.ann import index_model
    from mlscale.apps.recommend.itemitem import EaseRecommender
    from mlscale.apps.recommend.matrix import InteractionMatrix

    reg, data = str(tmp_path / "reg"), _interactions(tmp_path)
    args = ["train", "recommend", "--data", data, "--name", "e", "--registry", reg, "--quiet", "--model", "ease"]
    assert main([*args, "--ann-kind", "flat"]) != 0  # refused before training: EASE has no item factors
    assert "--ann-kind: an ease model has no item factors" in capsys.readouterr().err
    assert main([*args, "--ann-exact-below", "1"]) == 0  # auto would index this size; not an item-item model
    loaded = open_store(reg).load("recommend/e")
    assert "ann" not in loaded.manifest.extra
    assert from_artifact(loaded).ann_ is None
    import scipy.sparse as sp

    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 50, 500), rng.integers(0, 40, 500)
    csr = sp.csr_matrix((np.ones(500, np.float32), (users, items)), shape=(50, 40))
    ease = EaseRecommender().fit(InteractionMatrix(csr=csr, user_ids=np.arange(50), item_ids=np.arange(40)))
    assert index_model(ease, {"ann_kind": "flat"}, quiet=True) is None
    assert ease.ann_ is None
