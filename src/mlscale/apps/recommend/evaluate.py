"""Offline evaluation of recommenders: splits, ranking metrics and a popularity baseline.

Splits:

- ``time``: per user, the ``n_test`` most recent interactions are held out
  (users with ``n_test`` or fewer interactions stay wholly in training);
- ``random``: each interaction is held out with probability ``test_fraction``
  (seeded), keeping at least one training interaction per user.

Metrics at ``k`` over users with held-out items the training data knows:
precision, recall (hits / held-out items), NDCG (binary relevance), MAP
(average precision normalised by ``min(k, held-out)``) and catalogue coverage
(share of items recommended to anyone). The most-popular baseline, which
also skips what the user has seen, is always computed beside the model.

>>> import numpy as np
>>> recs = np.array([[0, 1, 2], [2, 0, -1]])
>>> truth = [np.array([1]), np.array([3])]
>>> m = ranking_metrics(recs, truth, k=3, n_items=4)
>>> round(m["precision"], 4), round(m["recall"], 4), round(m["ndcg"], 4)
(0.1667, 0.5, 0.3155)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from mlscale.apps.recommend.ingest import ingest_matrix
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.apps.recommend.model import ImplicitRecommender
from mlscale.errors import DataError, ValidationError

__all__ = [
    "EvaluationReport",
    "Split",
    "evaluate_fit",
    "evaluate_recommender",
    "popularity_topk",
    "ranking_metrics",
    "report_on_split",
    "split_from_tables",
    "split_interactions",
]

SplitMethod = Literal["time", "random"]


@dataclass(frozen=True)
class Split:
    """Training matrix plus, for each evaluated user (a training row), their held-out item columns."""

    train: InteractionMatrix
    rows: npt.NDArray[np.int64]
    truth: list[npt.NDArray[np.int64]]
    method: str
    held_out: int


def split_interactions(
    table: pa.Table,
    method: SplitMethod = "time",
    *,
    n_test: int = 10,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[pa.Table, pa.Table]:
    """Split an interaction table (reader schema) into train and test tables."""
    if table.num_rows == 0:
        raise DataError("no interactions to split")
    codes = pc.dictionary_encode(table.column("user")).combine_chunks().indices.to_numpy().astype(np.int64)
    n = table.num_rows
    if method == "time":
        if n_test < 1:
            raise ValidationError(f"expected >= 1, got {n_test}", field="n_test")
        ts = table.column("timestamp")
        if ts.null_count == n:
            raise DataError(
                "the data has no timestamps, so a time-based split is impossible", hint="use --split random"
            )
        times = ts.fill_null(0).to_numpy().astype(np.int64)
        order = np.lexsort((np.arange(n), times, codes))
        sorted_codes = codes[order]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        sizes = np.diff(np.r_[starts, n])
        ends = np.repeat(starts + sizes, sizes)
        from_end = ends - np.arange(n)  # 1 for the most recent interaction
        test_sorted = (from_end <= n_test) & (np.repeat(sizes, sizes) > n_test)
        is_test = np.zeros(n, dtype=bool)
        is_test[order] = test_sorted
    elif method == "random":
        if not 0 < test_fraction < 1:
            raise ValidationError(f"expected 0 < test_fraction < 1, got {test_fraction}", field="test_fraction")
        rng = np.random.default_rng(seed)
        is_test = rng.random(n) < test_fraction
        # keep each user's first interaction (in a random order) for training
        perm = rng.permutation(n)
        first = np.unique(codes[perm], return_index=True)[1]
        is_test[perm[first]] = False
    else:
        raise ValidationError(f"expected 'time' or 'random', got {method!r}", field="split")
    mask = pa.array(is_test)
    return table.filter(pc.invert(mask)), table.filter(mask)


def make_split(
    table: pa.Table,
    method: SplitMethod = "time",
    *,
    n_test: int = 10,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """Split and build the training matrix and held-out item lists in its index space."""
    train_t, test_t = split_interactions(table, method, n_test=n_test, test_fraction=test_fraction, seed=seed)
    return split_from_tables(train_t, test_t, method)


def split_from_tables(train_t: pa.Table, test_t: pa.Table, method: str) -> Split:
    """A :class:`Split` from given train and test tables (e.g. MovieLens' official folds)."""
    train = ingest_matrix(train_t.to_batches(max_chunksize=1 << 20))
    rows = train.user_index(test_t.column("user").to_numpy(zero_copy_only=False))
    cols = train.item_index(test_t.column("item").to_numpy(zero_copy_only=False))
    ok = (rows >= 0) & (cols >= 0)
    truth_m = sp.csr_matrix((np.ones(int(ok.sum()), np.float32), (rows[ok], cols[ok])), shape=train.shape)
    truth_m.sum_duplicates()
    users = np.flatnonzero(np.diff(truth_m.indptr) > 0).astype(np.int64)
    truth = [truth_m.indices[truth_m.indptr[u] : truth_m.indptr[u + 1]].astype(np.int64) for u in users]
    if users.size == 0:
        raise DataError(
            "the split left no user with held-out items the training data knows",
            hint="use more data, a smaller --n-test, or --split random",
        )
    return Split(train=train, rows=users, truth=truth, method=method, held_out=test_t.num_rows)


def ranking_metrics(
    recs: npt.NDArray[np.int64], truth: Sequence[npt.NDArray[np.int64]], *, k: int, n_items: int
) -> dict[str, float]:
    """Mean precision/recall/NDCG/MAP at ``k`` and coverage; ``recs`` rows padded with -1."""
    recs = recs[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    prec = rec = ndcg = ap = 0.0
    for row, rel in zip(recs, truth, strict=True):
        hits = np.isin(row, rel) & (row >= 0)
        n_hits = int(hits.sum())
        prec += n_hits / k
        rec += n_hits / rel.size
        ideal = discounts[: min(rel.size, k)].sum()
        ndcg += float(discounts[hits].sum() / ideal)
        if n_hits:
            ap += float((np.cumsum(hits) / np.arange(1, k + 1))[hits].sum() / min(rel.size, k))
    n = max(len(truth), 1)
    shown = np.unique(recs[recs >= 0])
    return {
        "precision": prec / n,
        "recall": rec / n,
        "ndcg": ndcg / n,
        "map": ap / n,
        "coverage": shown.size / max(n_items, 1),
    }


def popularity_topk(train: sp.csr_matrix, rows: npt.NDArray[np.int64], k: int) -> npt.NDArray[np.int64]:
    """The ``k`` most popular items each user has not seen (a one-factor model through the same top-k)."""
    from implicit.cpu.topk import topk

    popularity = np.bincount(train.indices, minlength=train.shape[1]).astype(np.float32)
    ids, scores = topk(
        popularity[:, None].copy(),
        np.ones((rows.size, 1), np.float32),
        k,
        filter_query_items=train[rows].tocsr(),
        num_threads=0,
    )
    ids = np.asarray(ids, np.int64)
    scores = np.asarray(scores)
    ids[~np.isfinite(scores) | (scores <= -1e37)] = -1  # implicit marks filtered items with -finfo.max
    return ids


@dataclass
class EvaluationReport:
    """Metrics of the model and the popularity baseline on one split."""

    k: int
    split: str
    users: int
    train_interactions: int
    held_out: int
    params: dict[str, Any]
    model: dict[str, float]
    popularity: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ndcg_lift(self) -> float:
        """Relative NDCG gain over popularity (0.3 = 30% better)."""
        base = self.popularity["ndcg"]
        return self.model["ndcg"] / base - 1.0 if base > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "split": self.split,
            "users": self.users,
            "train_interactions": self.train_interactions,
            "held_out": self.held_out,
            "params": self.params,
            "model": self.model,
            "popularity": self.popularity,
            "ndcg_lift": self.ndcg_lift,
            **self.extra,
        }

    def metrics(self) -> dict[str, float]:
        """Flat metrics for a model manifest."""
        out = {f"{name}@{self.k}": v for name, v in self.model.items()}
        out.update({f"popularity_{name}@{self.k}": v for name, v in self.popularity.items()})
        out["ndcg_lift"] = self.ndcg_lift
        return out

    def table(self) -> str:
        names = ("precision", "recall", "ndcg", "map", "coverage")
        head = f"{'':12}" + "".join(f"{n + '@' + str(self.k):>14}" for n in names)
        lines = [head]
        for label, m in (("model", self.model), ("popularity", self.popularity)):
            lines.append(f"{label:12}" + "".join(f"{m[n]:>14.4f}" for n in names))
        lines.append(
            f"NDCG@{self.k} lift over popularity: {self.ndcg_lift:+.1%} ({self.users:,} users, split {self.split})"
        )
        return "\n".join(lines)


def evaluate_recommender(
    table: pa.Table,
    model: ImplicitRecommender,
    *,
    split: SplitMethod = "time",
    k: int = 10,
    n_test: int = 10,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> EvaluationReport:
    """Fit ``model`` on a training split of ``table`` and measure it against popularity."""
    return evaluate_fit(
        table,
        lambda _train, matrix: model.fit(matrix),
        split=split,
        k=k,
        n_test=n_test,
        test_fraction=test_fraction,
        seed=seed,
    )


def evaluate_fit(
    table: pa.Table,
    fit: Callable[[pa.Table, InteractionMatrix], ImplicitRecommender],
    *,
    split: SplitMethod = "time",
    k: int = 10,
    n_test: int = 10,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> EvaluationReport:
    """:func:`evaluate_recommender` for a model made by ``fit(training table, its matrix)``.

    ``fit`` sees the training part only, so a choice it makes (the default's
    validation search) never sees a test row.
    """
    if k < 1:
        raise ValidationError(f"expected k >= 1, got {k}", field="k")
    train_t, test_t = split_interactions(table, split, n_test=n_test, test_fraction=test_fraction, seed=seed)
    s = split_from_tables(train_t, test_t, split)
    model = fit(train_t, s.train)
    label = s.method if s.method == "random" else f"time (last {n_test} per user)"
    return report_on_split(s, model, k=k, label=label)


def report_on_split(s: Split, model: ImplicitRecommender, *, k: int = 10, label: str | None = None) -> EvaluationReport:
    """Measure a model fitted on ``s.train`` against popularity on the split's held-out items."""
    k = min(k, s.train.shape[1])
    recs = model.recommend(s.train.user_ids[s.rows], k=k)
    # Columns of the split's matrix, not the model's: a model may keep only part of the catalogue (EASE).
    rec_idx = np.where(recs.valid, s.train.item_index(recs.items.ravel()).reshape(recs.items.shape), -1)
    pop_idx = popularity_topk(s.train.csr, s.rows, k)
    n_items = s.train.shape[1]
    return EvaluationReport(
        k=k,
        split=label or s.method,
        users=int(s.rows.size),
        train_interactions=s.train.nnz,
        held_out=s.held_out,
        params=model.get_params(),
        model=ranking_metrics(rec_idx, s.truth, k=k, n_items=n_items),
        popularity=ranking_metrics(pop_idx, s.truth, k=k, n_items=n_items),
    )
