"""The recommender's predictor: exactly ImplicitRecommender.recommend, batched."""

from __future__ import annotations

import doctest

import numpy as np
import pyarrow as pa
import pytest

import mlscale.apps.recommend.predictor as predictor_module
from mlscale.apps.recommend import ImplicitRecommender, update_model
from mlscale.apps.recommend.predictor import RecommendPredictor, RecommendRequest, SimilarRequest
from mlscale.errors import MlscaleError, ValidationError


@pytest.fixture(scope="module")
def predictor(small_model: ImplicitRecommender) -> RecommendPredictor:
    p = RecommendPredictor(small_model, model_ref="recommend/toy", version=3)
    p.warm()
    return p


def _items(model: ImplicitRecommender, users: list[int], k: int, **kw: object) -> list[list[int]]:
    return [[i for i, _ in row] for row in model.recommend(users, k, **kw).to_lists()]  # type: ignore[arg-type]


def test_single_and_batched_requests_match_the_python_api(
    predictor: RecommendPredictor, small_model: ImplicitRecommender
) -> None:
    users = small_model.user_ids_.tolist()
    expected = _items(small_model, users, 10)
    one_by_one = [predictor.recommend_batch([RecommendRequest(users=[u])])[0] for u in users]
    batched = predictor.recommend_batch([RecommendRequest(users=[u]) for u in users])
    for want, single, batch in zip(expected, one_by_one, batched, strict=True):
        assert not isinstance(single, MlscaleError)
        assert not isinstance(batch, MlscaleError)
        assert single.results[0].items == want
        assert batch.results[0].items == want
        assert single.version == 3
        assert single.model == "recommend/toy"
    ref = small_model.recommend(users[:5], 10)
    got = batched[0]
    assert not isinstance(got, MlscaleError)
    np.testing.assert_allclose(got.results[0].scores, ref.scores[0], rtol=1e-5, atol=1e-5)


def test_filters_and_mixed_groups_match(predictor: RecommendPredictor, small_model: ImplicitRecommender) -> None:
    users = small_model.user_ids_[:30].tolist()
    include = [*small_model.item_ids_[:120].tolist(), 999_999]
    exclude = small_model.item_ids_[:5].tolist()
    requests = [
        RecommendRequest(users=users[:10], k=7, include=include, exclude=exclude),
        RecommendRequest(users=users[10:20], k=5, exclude_seen=False),
        RecommendRequest(users=users[20:], k=7, include=include, exclude=exclude),
    ]
    out = predictor.recommend_batch(requests)
    expect = [
        _items(small_model, users[:10], 7, include=include, exclude=exclude),
        _items(small_model, users[10:20], 5, exclude_seen=False),
        _items(small_model, users[20:], 7, include=include, exclude=exclude),
    ]
    for got, want in zip(out, expect, strict=True):
        assert not isinstance(got, MlscaleError)
        assert [r.items for r in got.results] == want


def test_cold_start_unknown_and_anonymous_users(
    predictor: RecommendPredictor, small_model: ImplicitRecommender
) -> None:
    known = int(small_model.user_ids_[0])
    recent = small_model.item_ids_[:4].tolist()
    out = predictor.recommend_batch(
        [
            RecommendRequest(users=[known, 10_000_001], k=4),
            RecommendRequest(recent_items=recent, k=4),
            RecommendRequest(users=[10_000_002], recent_items={"10000002": recent}, k=4),
        ]
    )
    first, anon, folded = out
    assert not isinstance(first, MlscaleError)
    assert [r.strategy for r in first.results] == ["model", "popularity"]
    assert first.results[1].items == _items(small_model, [10_000_001], 4)[0]
    assert not isinstance(anon, MlscaleError)
    assert anon.results[0].user is None
    assert anon.results[0].strategy == "fold-in"
    assert not set(anon.results[0].items) & set(recent)  # recent items count as seen
    assert not isinstance(folded, MlscaleError)
    expected = _items(small_model, [10_000_002], 4, recent_items={10_000_002: recent})[0]
    assert folded.results[0].items == expected


def test_a_bad_request_fails_alone(predictor: RecommendPredictor, small_model: ImplicitRecommender) -> None:
    good = RecommendRequest(users=small_model.user_ids_[:2].tolist(), k=3)
    bad = RecommendRequest(users=["not-a-number"], k=3)
    out = predictor.recommend_batch([good, bad, good])
    assert isinstance(out[1], ValidationError)
    assert out[1].field == "users"
    assert not isinstance(out[0], MlscaleError)
    assert not isinstance(out[2], MlscaleError)
    assert len(out[0].results) == 2


def test_validation_names_the_field(predictor: RecommendPredictor, small_model: ImplicitRecommender) -> None:
    with pytest.raises(ValidationError) as err:
        predictor.validate_recommend(RecommendRequest(users=[1], k=small_model.n_items + 1))
    assert err.value.field == "k"
    with pytest.raises(ValidationError) as err:
        predictor.validate_recommend(RecommendRequest())
    assert err.value.field == "users"
    with pytest.raises(ValidationError) as err:
        predictor.validate_recommend(RecommendRequest(users=[1, 2], recent_items=[3]))
    assert err.value.field == "recent_items"
    assert predictor.validate_recommend(RecommendRequest(users=[1, 2, 3])) == 3
    with pytest.raises(ValidationError) as err:
        predictor.recommend_from_path("abc", {})
    assert err.value.field == "user"
    with pytest.raises(ValidationError) as err:
        predictor.recommend_from_path("1", {"k": "ten"})
    assert err.value.field == "k"
    with pytest.raises(ValidationError) as err:
        predictor.recommend_from_path("1", {"exclude_seen": "maybe"})
    assert err.value.field == "exclude_seen"


def test_get_form_builds_the_same_request(predictor: RecommendPredictor) -> None:
    req = predictor.recommend_from_path("5", {"k": "3", "exclude_seen": "false", "include": "1,2, 3", "exclude": "2"})
    assert req == RecommendRequest(users=[5], k=3, exclude_seen=False, include=["1", "2", "3"], exclude=["2"])
    assert predictor.recommend_from_path("7", {}) == RecommendRequest(users=[7])


def test_similar_items(predictor: RecommendPredictor, small_model: ImplicitRecommender) -> None:
    item = int(small_model.item_ids_[3])
    out = predictor.similar_batch([SimilarRequest(items=[item, 123_456_789], k=4)])[0]
    assert not isinstance(out, MlscaleError)
    want = small_model.similar_items([item], k=4).to_lists()[0]
    assert out.results[0].items == [i for i, _ in want]
    assert out.results[1].strategy == "unknown"
    assert out.results[1].items == []
    assert predictor.similar_from_path(str(item), {"k": "2"}) == SimilarRequest(items=[item], k=2)


def test_actions_and_description(predictor: RecommendPredictor, small_model: ImplicitRecommender) -> None:
    assert [a.name for a in predictor.actions()] == ["recommend", "similar"]
    info = predictor.describe()
    assert info["users"] == small_model.n_users
    assert info["items"] == small_model.n_items


def test_doctest() -> None:
    result = doctest.testmod(predictor_module)
    assert result.attempted > 0
    assert result.failed == 0


def test_unsorted_user_ids_after_an_update(small_model: ImplicitRecommender) -> None:
    # update_model appends new users at the end, so the id array is no longer sorted.
    new = pa.table(
        {
            "user": pa.array([0, 0, -5], pa.int64()),
            "item": pa.array(small_model.item_ids_[:3].tolist(), pa.int64()),
            "rating": pa.array([1.0, 1.0, 1.0], pa.float32()),
            "timestamp": pa.array([None, None, None], pa.int64()),
        }
    )
    updated = update_model(small_model, new)
    assert not bool(np.all(np.diff(updated.user_ids_) > 0))
    predictor = RecommendPredictor(updated, model_ref="recommend/toy", version=2)
    users = [0, -5, int(updated.user_ids_[0]), 987_654]
    np.testing.assert_array_equal(predictor._user_rows(users), updated.user_index(users))
    out = predictor.recommend_batch([RecommendRequest(users=users, k=4)])[0]
    assert not isinstance(out, MlscaleError)
    assert [r.items for r in out.results] == _items(updated, users, 4)
