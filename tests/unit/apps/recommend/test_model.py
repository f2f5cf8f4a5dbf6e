from __future__ import annotations

import numpy as np
import pytest

from mlscale.apps.recommend import ImplicitRecommender
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.errors import ValidationError

STAR_WARS, EMPIRE, JEDI = 50, 172, 181


def test_recommend_batch_matches_single_calls(ml100k_model: ImplicitRecommender) -> None:
    batch = ml100k_model.recommend([1, 2, 3], k=10)
    for row, user in enumerate([1, 2, 3]):
        single = ml100k_model.recommend([user], k=10)
        assert single.items[0].tolist() == batch.items[row].tolist()
    assert (np.diff(batch.scores, axis=1) <= 1e-6).all()  # best first
    assert batch.strategy.tolist() == ["model"] * 3


def test_seen_items_are_excluded_unless_asked(
    ml100k_model: ImplicitRecommender, ml100k_matrix: InteractionMatrix
) -> None:
    row = ml100k_matrix.user_index([1])[0]
    seen = set(ml100k_matrix.item_ids[ml100k_matrix.csr[row].indices].tolist())
    assert not seen & set(ml100k_model.recommend([1], k=50).items[0].tolist())
    with_seen = ml100k_model.recommend([1], k=50, exclude_seen=False).items[0].tolist()
    assert seen & set(with_seen)


def test_include_and_exclude_filters(ml100k_model: ImplicitRecommender) -> None:
    top = ml100k_model.recommend([5], k=5).items[0].tolist()
    without = ml100k_model.recommend([5], k=5, exclude=top[:2]).items[0].tolist()
    assert not set(top[:2]) & set(without)
    only = ml100k_model.recommend([5], k=3, include=[1, 2, 3, 4, 999_999]).to_lists()[0]
    assert {i for i, _ in only} <= {1, 2, 3, 4}


def test_cold_user_folds_in_recent_items(ml100k_model: ImplicitRecommender) -> None:
    recs = ml100k_model.recommend([10**8], k=20, recent_items={10**8: [STAR_WARS, EMPIRE]})
    assert recs.strategy.tolist() == ["fold-in"]
    got = set(recs.items[0].tolist())
    assert not got & {STAR_WARS, EMPIRE}  # what they just saw is not recommended back
    # Folding in the Star Wars films should rank their nearest neighbour (Return of the Jedi) highly,
    # far above where it ranks for a user without history (popularity).
    assert JEDI in got
    similar = set(ml100k_model.similar_items([STAR_WARS], k=30).items[0].tolist())
    assert len(got & similar) >= 5


def test_unknown_user_without_items_gets_popular(
    ml100k_model: ImplicitRecommender, ml100k_matrix: InteractionMatrix
) -> None:
    recs = ml100k_model.recommend([10**9], k=5)
    assert recs.strategy.tolist() == ["popularity"]
    popularity = np.bincount(ml100k_matrix.csr.indices, minlength=ml100k_matrix.shape[1])
    expected = ml100k_matrix.item_ids[np.argsort(-popularity, kind="stable")[:5]]
    assert recs.items[0].tolist() == expected.tolist()


def test_similar_items_excludes_itself(ml100k_model: ImplicitRecommender) -> None:
    recs = ml100k_model.similar_items([STAR_WARS, 424242], k=5)
    assert STAR_WARS not in recs.items[0].tolist()
    assert EMPIRE in recs.items[0].tolist() or JEDI in recs.items[0].tolist()
    assert recs.strategy.tolist() == ["model", "unknown"]
    assert not recs.valid[1].any()


@pytest.mark.parametrize("k", [0, -1, 10**6, 2.5, "10", True])
def test_bad_k(ml100k_model: ImplicitRecommender, k: object) -> None:
    with pytest.raises(ValidationError, match="^k: "):
        ml100k_model.recommend([1], k=k)  # type: ignore[arg-type]


@pytest.mark.parametrize("users", [["abc"], [1.5], [None], [True]])
def test_user_id_of_wrong_type(ml100k_model: ImplicitRecommender, users: list[object]) -> None:
    with pytest.raises(ValidationError, match="^users: this model's ids are integers"):
        ml100k_model.recommend(users, k=5)


def test_digit_strings_are_accepted_for_integer_ids(ml100k_model: ImplicitRecommender) -> None:
    assert ml100k_model.recommend(["1"], k=5).items.tolist() == ml100k_model.recommend([1], k=5).items.tolist()


def test_bad_parameters_are_named() -> None:
    m = InteractionMatrix.from_arrays(np.array([1, 2]), np.array([3, 4]))
    with pytest.raises(ValidationError, match="^factors: "):
        ImplicitRecommender(factors=0).fit(m)
    with pytest.raises(ValidationError, match="^model: "):
        ImplicitRecommender(model="svd").fit(m)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not fitted"):
        ImplicitRecommender().recommend([1])


def test_bpr_trains_and_recommends(ml100k_matrix: InteractionMatrix) -> None:
    model = ImplicitRecommender(model="bpr", iterations=20, threads=1).fit(ml100k_matrix)
    assert model.item_factors_.shape == (1682, 65)  # implicit's BPR adds an item-bias column
    recs = model.recommend([1, 10**8], k=5, recent_items={10**8: [STAR_WARS]})
    assert recs.valid.all()
    assert recs.strategy.tolist() == ["model", "fold-in"]


def test_k_beyond_the_unseen_items_returns_only_real_candidates(
    ml100k_model: ImplicitRecommender, ml100k_matrix: InteractionMatrix
) -> None:
    row = ml100k_matrix.user_index([1])[0]
    n_seen = ml100k_matrix.csr[row].nnz
    recs = ml100k_model.recommend([1], k=ml100k_model.n_items)
    assert int(recs.valid.sum()) == ml100k_model.n_items - n_seen
    got = recs.items[0][recs.valid[0]]
    assert not set(got.tolist()) & set(ml100k_matrix.item_ids[ml100k_matrix.csr[row].indices].tolist())
