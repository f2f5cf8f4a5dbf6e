"""The recommender behind ``mlscale serve``: micro-batches of requests to one vectorised call.

Two actions:

- ``recommend``: top-k items for a batch of users, with ``exclude_seen``,
  ``include`` / ``exclude`` item filters, and ``recent_items`` for users the
  model does not know (or for an anonymous user); ``GET .../recommend/{user}``
  asks for one user;
- ``similar``: the items most similar to each given item.

Requests of a micro-batch that share ``k``, ``exclude_seen`` and filters are
scored together: one matrix product of the users' factors with the item
factors, the seen items masked in place, one partial sort. That path gives
exactly what :meth:`ImplicitRecommender.recommend` gives (the tests compare
them); the rare requests it does not cover (``recent_items``, unknown users)
go through :meth:`ImplicitRecommender.recommend` itself. A model that carries an
approximate index (:mod:`mlscale.apps.recommend.ann`) is scored through it instead
(``include`` excepted), with the same seen-item and ``exclude`` filters.

>>> import numpy as np
>>> from mlscale.apps.recommend.matrix import InteractionMatrix
>>> rng = np.random.default_rng(0)
>>> users = rng.integers(0, 50, 2000); items = (users % 5) * 10 + rng.integers(0, 10, 2000)
>>> matrix = InteractionMatrix.from_arrays(users, items)
>>> model = ImplicitRecommender(factors=8, iterations=5, threads=1).fit(matrix)
>>> predictor = RecommendPredictor(model, model_ref="recommend/demo", version=1)
>>> out = predictor.recommend_batch([RecommendRequest(users=[3, 4], k=2), RecommendRequest(users=[7], k=2)])
>>> [len(r.results) for r in out], [len(x.items) for x in out[0].results]
([2, 1], [2, 2])
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, cast

import msgspec
import numpy as np
import numpy.typing as npt

from mlscale.apps.recommend.ann import AnnIndex, gather_rows
from mlscale.apps.recommend.model import MAX_K, ImplicitRecommender, Recommendations
from mlscale.errors import MlscaleError, ValidationError
from mlscale.serve.predictor import Action, Predictor

__all__ = [
    "MAX_RESULTS",
    "MAX_USERS",
    "RecommendPredictor",
    "RecommendRequest",
    "RecommendResponse",
    "SimilarRequest",
    "SimilarResponse",
    "UserRecommendations",
]

#: The most users (or items) one request may ask about; larger batches belong to ``precompute``.
MAX_USERS = 10_000
_MAX_FILTER = 100_000
#: The most results (users times k) one request may ask for: about 30 bytes of JSON each.
MAX_RESULTS = 1_000_000

# Integer ids are int64 in the model: a larger one is refused when it is decoded (422 naming it),
# never left to overflow inside a batch it shares with other clients' requests.
_Int64 = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]
Id = _Int64 | str
# Given, ``users`` holds at least one id: an anonymous request leaves it out.
_Ids = Annotated[list[Id], msgspec.Meta(min_length=1, max_length=MAX_USERS)]
_Filter = Annotated[list[Id], msgspec.Meta(max_length=_MAX_FILTER)]
_K = Annotated[int, msgspec.Meta(ge=1, le=MAX_K)]


class RecommendRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Body of ``POST /v1/models/{name}/recommend``.

    ``recent_items`` is either a list (the items of the one user asked about,
    or of an anonymous user when ``users`` is empty) or an object mapping a
    user id to their items (cold start for users the model does not know).
    """

    users: _Ids = msgspec.field(default_factory=list)
    k: _K = 10
    exclude_seen: bool = True
    include: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=_MAX_FILTER)] | None = None
    exclude: _Filter | None = None
    recent_items: _Filter | dict[str, _Filter] | None = None


class UserRecommendations(msgspec.Struct):
    """The items recommended to one user, best first; ``strategy``: model, fold-in or popularity."""

    user: Id | None
    strategy: str
    items: list[Id]
    scores: list[float]


class RecommendResponse(msgspec.Struct):
    """Answer of ``recommend``: one entry per requested user, in order."""

    model: str
    version: int
    results: list[UserRecommendations]


class SimilarRequest(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Body of ``POST /v1/models/{name}/similar``: items most similar to each of ``items``."""

    items: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=MAX_USERS)]
    k: _K = 10


class SimilarItems(msgspec.Struct):
    """The items most similar to ``item`` (cosine of item factors); ``strategy`` unknown: not in the model."""

    item: Id
    strategy: str
    items: list[Id]
    scores: list[float]


class SimilarResponse(msgspec.Struct):
    """Answer of ``similar``: one entry per requested item, in order."""

    model: str
    version: int
    results: list[SimilarItems]


_GroupKey = tuple[int, bool, tuple[Id, ...] | None, tuple[Id, ...] | None]


def _split_ids(text: str) -> list[Id]:
    return [t for t in (s.strip() for s in text.split(",")) if t]


def _path_int(key: str, field: str, what: str) -> int:
    try:
        value = int(key)
    except ValueError:
        raise ValidationError(f"this model's {what} ids are integers; got {key[:100]!r}", field=field) from None
    if not -(1 << 63) <= value < 1 << 63:
        raise ValidationError(f"expected an integer id that fits in 64 bits, got {key[:100]!r}", field=field)
    return value


def _query_bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise ValidationError(f"expected true or false, got {raw!r}", field=name)


def _query_k(query: Mapping[str, str]) -> int:
    raw = query.get("k")
    if raw is None:
        return 10
    try:
        k = int(raw)
    except ValueError:
        raise ValidationError(f"expected an integer, got {raw[:100]!r}", field="k") from None
    if not 1 <= k <= MAX_K:
        raise ValidationError(f"expected 1 <= k <= {MAX_K}, got {k}", field="k")
    return k


class RecommendPredictor(Predictor):
    """Serves an :class:`ImplicitRecommender` loaded from the registry (arrays stay memory-mapped)."""

    def __init__(self, model: ImplicitRecommender, *, model_ref: str, version: int) -> None:
        model._check_fitted()
        self.model = model
        self.model_ref = model_ref
        self.version = version
        self._int_users = model.user_ids_.dtype.kind in "iu"
        self._int_items = model.item_ids_.dtype.kind in "iu"
        # Plain ndarray views: indexing a np.memmap wraps every result in a memmap object.
        self._y = np.asarray(model.item_factors_)
        self._x = np.asarray(model.user_factors_)
        self._indptr = np.asarray(model.seen_.indptr)
        self._indices = np.asarray(model.seen_.indices)
        self._item_ids = np.asarray(model.item_ids_)
        self._user_ids = np.asarray(model.user_ids_)
        # Registry ids are usually stored sorted: then no sorter is needed to look users up.
        ids = self._user_ids
        self._user_sorter: npt.NDArray[np.intp] | None = (
            None if ids.size < 2 or bool(np.all(ids[1:] > ids[:-1])) else np.asarray(model._user_sorter)
        )
        self._anonymous = self._unused_user_id()
        # Item-item models (EASE, kNN) have no user factors: a user's query vector is their history.
        self._item_item = model.item_item

    def _queries(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        return self.model.user_vectors(rows) if self._item_item else self._x[rows]

    def _unused_user_id(self) -> Any:
        ids = self.model.user_ids_
        if self._int_users:
            return int(ids.min()) - 1 if ids.size else 0
        return "\x00anonymous"

    # -- the contract --------------------------------------------------------------

    def actions(self) -> list[Action[Any]]:
        recommend: Action[RecommendRequest] = Action(
            name="recommend",
            summary="Top-k items for a batch of users (recent_items: cold start for unknown users)",
            request_type=RecommendRequest,
            response_type=RecommendResponse,
            run=self.recommend_batch,
            validate=self.validate_recommend,
            from_path=self.recommend_from_path,
            path_key="user",
            query_params={
                "k": "items to return (default 10)",
                "exclude_seen": "drop items the user already has (default true)",
                "include": "comma-separated item ids: only these are candidates",
                "exclude": "comma-separated item ids never to return",
                "recent_items": "comma-separated item ids of an unknown user (cold start)",
            },
        )
        similar: Action[SimilarRequest] = Action(
            name="similar",
            summary="The k items most similar to each given item",
            request_type=SimilarRequest,
            response_type=SimilarResponse,
            run=self.similar_batch,
            validate=self.validate_similar,
            from_path=self.similar_from_path,
            path_key="item",
            query_params={"k": "items to return (default 10)"},
        )
        return [recommend, similar]

    def describe(self) -> dict[str, Any]:
        m = self.model
        return {"users": m.n_users, "items": m.n_items, "factors": int(self._y.shape[1]), "kind": m.model}

    def warm(self) -> None:
        # Fault the memory-mapped pages in and exercise each path once (BLAS, fold-in, popularity).
        float(self._y.sum()) + float(self._x.sum()) + int(self._indices.sum())
        index = getattr(self.model, "ann_", None)  # only factor models carry one
        if index is not None:
            index.warm()
        users = self.model.user_ids_[: min(64, self.model.n_users)].tolist()
        first_item = self._item_ids[:1].tolist()
        requests = [
            RecommendRequest(users=users[:1]),
            RecommendRequest(users=users),
            RecommendRequest(users=users[:2], include=self._item_ids[:20].tolist(), exclude=first_item),
            RecommendRequest(recent_items=self._item_ids[:3].tolist()),
            RecommendRequest(users=[self._anonymous]),
        ]
        for _ in range(3):
            self.recommend_batch(requests)
        if self.model.n_items > 1:
            self.similar_batch([SimilarRequest(items=first_item, k=1)])

    # -- recommend -------------------------------------------------------------------

    def validate_recommend(self, req: RecommendRequest) -> int:
        """Checks that need the model (k against the item count, recent_items shape); returns the cost.

        The cost weighs each user by k (every 20 items asked for count as one more row), so that
        admission sees the work and the answer's size, not only the number of users.
        """
        if req.include is not None and not req.include:
            raise ValidationError("expected at least one item id (leave include out for every item)", field="include")
        top = min(self.model.n_items, MAX_K)
        if req.k > top:
            raise ValidationError(f"expected 1 <= k <= {top} (the items this model can return)", field="k")
        results = max(1, len(req.users)) * req.k
        if results > MAX_RESULTS:
            raise ValidationError(
                f"{max(1, len(req.users))} users x k={req.k} asks for {results:,} results, more than the "
                f"{MAX_RESULTS:,} one request may return; ask for fewer users or a smaller k",
                field="users",
            )
        weight = 1 + req.k // 20
        if not req.users:
            if not isinstance(req.recent_items, list):
                raise ValidationError(
                    "expected at least one user, or recent_items (a list) for an anonymous user",
                    field="users",
                )
            return weight
        if isinstance(req.recent_items, list) and len(req.users) > 1:
            raise ValidationError(
                "a list of recent items needs exactly one user; for several users give an object "
                "mapping each user id to their items",
                field="recent_items",
            )
        return len(req.users) * weight

    def recommend_from_path(self, key: str, query: Mapping[str, str]) -> RecommendRequest:
        """``GET .../recommend/{user}?k=&exclude_seen=&include=&exclude=&recent_items=``."""
        user: Id = _path_int(key, "user", "user") if self._int_users else key
        if not query:
            return RecommendRequest(users=[user])
        recent = query.get("recent_items")
        include, exclude = query.get("include"), query.get("exclude")
        return RecommendRequest(
            users=[user],
            k=_query_k(query),
            exclude_seen=_query_bool(query, "exclude_seen", True),
            include=_split_ids(include) if include is not None else None,
            exclude=_split_ids(exclude) if exclude is not None else None,
            recent_items=_split_ids(recent) if recent else None,
        )

    def recommend_batch(self, requests: Sequence[RecommendRequest]) -> list[RecommendResponse | MlscaleError]:
        """Answer a micro-batch: requests with the same k and filters are scored in one call."""
        out: list[RecommendResponse | MlscaleError | None] = [None] * len(requests)
        groups: dict[_GroupKey, list[int]] = {}
        for i, req in enumerate(requests):
            if req.recent_items is not None or not req.users:
                out[i] = self._guard(self._recommend_slow, req)
                continue
            key = (
                req.k,
                req.exclude_seen,
                None if req.include is None else tuple(req.include),
                None if req.exclude is None else tuple(req.exclude),
            )
            groups.setdefault(key, []).append(i)
        for key, members in groups.items():
            try:
                self._recommend_group(key, [requests[i] for i in members], members, out)
            except MlscaleError:
                # One request's bad ids must not fail its neighbours: answer them one by one.
                one = functools.partial(self._recommend_group_one, key)
                for i in members:
                    out[i] = self._guard(one, requests[i])
        return [r if r is not None else MlscaleError("no answer") for r in out]

    @staticmethod
    def _guard(fn: Any, req: Any) -> Any:
        try:
            return fn(req)
        except MlscaleError as err:
            return err

    def _recommend_group_one(self, key: _GroupKey, req: RecommendRequest) -> RecommendResponse:
        out: list[RecommendResponse | MlscaleError | None] = [None]
        self._recommend_group(key, [req], [0], out)
        result = out[0]
        assert isinstance(result, RecommendResponse)
        return result

    def _user_rows(self, users: list[Id]) -> npt.NDArray[np.int64]:
        """Row of each user (-1: unknown); integer ids take a lean path, the rest the model's own lookup."""
        ids = self._user_ids
        if not (self._int_users and ids.size and all(type(u) is int for u in users)):
            return self.model.user_index(users)
        try:
            wanted = np.array(users, dtype=np.int64)
        except OverflowError:
            return self.model.user_index(users)
        pos = np.searchsorted(ids, wanted, sorter=self._user_sorter)
        np.minimum(pos, ids.size - 1, out=pos)
        if self._user_sorter is not None:
            pos = self._user_sorter[pos]
        return np.where(ids[pos] == wanted, pos, -1).astype(np.int64, copy=False)

    def _recommend_group(
        self,
        key: _GroupKey,
        reqs: list[RecommendRequest],
        slots: list[int],
        out: list[RecommendResponse | MlscaleError | None],
    ) -> None:
        k, exclude_seen, include, exclude = key
        users: list[Id] = [u for r in reqs for u in r.users]
        rows = self._user_rows(users)
        n = rows.size
        if n and rows.min() >= 0:  # the common case: every user is known
            ids, scores = self._score(rows, k, exclude_seen, include, exclude)
            self._answer(users, ["model"] * n, ids, scores, reqs, slots, out)
            return
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        strategy = ["model"] * n
        warm = np.flatnonzero(rows >= 0)
        if warm.size:
            w_ids, w_scores = self._score(rows[warm], k, exclude_seen, include, exclude)
            ids[warm, : w_ids.shape[1]] = w_ids
            scores[warm, : w_ids.shape[1]] = w_scores
        cold = np.flatnonzero(rows < 0)
        if cold.size:
            recs = self.model.recommend(
                [users[i] for i in cold.tolist()],
                k,
                exclude_seen=exclude_seen,
                include=None if include is None else list(include),
                exclude=None if exclude is None else list(exclude),
            )
            cold_ids = self.model.item_index(recs.items.ravel()).reshape(recs.items.shape)
            ids[cold] = np.where(recs.valid, cold_ids, -1)
            scores[cold] = recs.scores
            for j, s in zip(cold.tolist(), recs.strategy.tolist(), strict=True):
                strategy[j] = s
        self._answer(users, strategy, ids, scores, reqs, slots, out)

    def _answer(
        self,
        users: list[Id],
        strategy: list[str],
        ids: npt.NDArray[np.int64],
        scores: npt.NDArray[np.float32],
        reqs: list[RecommendRequest],
        slots: list[int],
        out: list[RecommendResponse | MlscaleError | None],
    ) -> None:
        results = self._rows(users, strategy, ids, scores)
        if len(reqs) == 1:
            out[slots[0]] = RecommendResponse(self.model_ref, self.version, results)
            return
        start = 0
        for slot, req in zip(slots, reqs, strict=True):
            stop = start + len(req.users)
            out[slot] = RecommendResponse(self.model_ref, self.version, results[start:stop])
            start = stop

    def _score(
        self,
        rows: npt.NDArray[np.int64],
        k: int,
        exclude_seen: bool,
        include: tuple[Id, ...] | None,
        exclude: tuple[Id, ...] | None,
        approximate: bool = True,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Top-k item columns and scores for known users; -1 / -inf where fewer than k items qualify."""
        ann: AnnIndex | None = getattr(self.model, "ann_", None)  # only factor models carry one
        if approximate and include is None and ann is not None:
            exc_rows = np.empty(0, np.int64)
            if exclude is not None:
                exc_rows = self.model.item_index(list(exclude), "exclude")
                exc_rows = np.unique(exc_rows[exc_rows >= 0])
            return ann.topk(
                self._x[rows],
                k,
                self._y,
                seen=gather_rows(self._indptr, self._indices, rows) if exclude_seen else None,
                excluded=exc_rows,
                exact=lambda sub: self._score(rows[sub], k, exclude_seen, None, exclude, approximate=False),
            )
        y = self._y
        cand: npt.NDArray[np.int64] | None = None
        if include is not None:
            inc = self.model.item_index(list(include), "include")
            cand = np.unique(inc[inc >= 0])
            if cand.size == 0:
                return np.full((rows.size, 0), -1, np.int64), np.full((rows.size, 0), -np.inf, np.float32)
            y = y[cand]
        exc: npt.NDArray[np.int64] | None = None
        if exclude is not None:
            exc = self.model.item_index(list(exclude), "exclude")
            exc = exc[exc >= 0]
            if cand is not None:
                exc, _ = self._positions(cand, exc, exc)
        if rows.size == 1 and cand is None:
            return self._score_one(int(rows[0]), k, exclude_seen, exc)
        scores = self._queries(rows) @ y.T
        width = scores.shape[1]
        if exclude_seen:
            starts = self._indptr[rows]
            lens = (self._indptr[rows + 1] - starts).astype(np.int64)
            total = int(lens.sum())
            if total:
                row_of = np.repeat(np.arange(rows.size), lens)
                offsets = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(starts, lens)
                cols = self._indices[offsets].astype(np.int64)
                if cand is not None:
                    cols, row_of = self._positions(cand, cols, row_of)
                # One flat store beats a 2-D fancy assignment.
                np.put(scores, row_of * width + cols, -np.inf)
        if exc is not None:
            scores[:, exc] = -np.inf
        k = min(k, width)
        if k < width:
            part = np.argpartition(scores, width - k, axis=1)[:, width - k :]
        else:
            part = np.broadcast_to(np.arange(width), scores.shape)
        at = np.arange(rows.size)[:, None]
        top = scores[at, part]
        order = np.argsort(-top, axis=1, kind="stable")
        cols = part[at, order].astype(np.int64)
        top = top[at, order]
        if cand is not None:
            cols = cand[cols]
        cols[~np.isfinite(top)] = -1
        return cols, top

    def _score_one(
        self, row: int, k: int, exclude_seen: bool, exc: npt.NDArray[np.int64] | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """:meth:`_score` for one user, in 1-D (a third of the numpy calls: a lone request's latency)."""
        scores = self._y @ (self._queries(np.array([row]))[0] if self._item_item else self._x[row])
        if exclude_seen:
            scores[self._indices[self._indptr[row] : self._indptr[row + 1]]] = -np.inf
        if exc is not None:
            scores[exc] = -np.inf
        width = scores.size
        k = min(k, width)
        part = np.argpartition(scores, width - k)[width - k :] if k < width else np.arange(width)
        top = scores[part]
        order = np.argsort(-top, kind="stable")
        cols = part[order].astype(np.int64)
        top = top[order]
        cols[~np.isfinite(top)] = -1
        return cols[None, :], top[None, :]

    @staticmethod
    def _positions(
        cand: npt.NDArray[np.int64], cols: npt.NDArray[np.int64], other: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Map item columns to positions within the sorted candidate list, dropping non-candidates."""
        pos = np.clip(np.searchsorted(cand, cols), 0, cand.size - 1)
        keep = cand[pos] == cols
        return pos[keep], other[keep]

    def _rows(
        self,
        keys: Sequence[Any],
        strategy: list[str],
        ids: npt.NDArray[np.int64],
        scores: npt.NDArray[np.float32],
    ) -> list[UserRecommendations]:
        valid = ids >= 0
        rounded = scores.astype(np.float64).round(6).tolist()
        if valid.all():
            items = self._item_ids[ids].tolist()
            return [UserRecommendations(*row) for row in zip(keys, strategy, items, rounded, strict=True)]
        items = self._item_ids[np.where(valid, ids, 0)].tolist()
        partial = cast(list[bool], (~valid.all(axis=1)).tolist())
        out = []
        for key, strat, row_i, row_s, cut, ok in zip(
            keys, strategy, items, rounded, partial, valid.tolist(), strict=True
        ):
            if cut:
                row_i = [v for v, good in zip(row_i, ok, strict=True) if good]
                row_s = [v for v, good in zip(row_s, ok, strict=True) if good]
            out.append(UserRecommendations(key, strat, row_i, row_s))
        return out

    def _recommend_slow(self, req: RecommendRequest) -> RecommendResponse:
        """Requests with recent items (cold start): through ImplicitRecommender.recommend itself."""
        anonymous = not req.users
        users: list[Any] = [self._anonymous] if anonymous else list(req.users)
        recent: dict[Any, Sequence[Any]] | None
        if isinstance(req.recent_items, list):
            recent = {users[0]: req.recent_items}
        else:
            recent = dict(req.recent_items) if req.recent_items else None
        recs = self.model.recommend(
            users,
            req.k,
            exclude_seen=req.exclude_seen,
            include=req.include,
            exclude=req.exclude,
            recent_items=recent,
        )
        keys: list[Any] = [None] if anonymous else users
        return RecommendResponse(self.model_ref, self.version, self._from_recs(keys, recs))

    def _from_recs(self, keys: Sequence[Any], recs: Recommendations) -> list[UserRecommendations]:
        rows = recs.to_lists()
        return [
            UserRecommendations(key, str(strat), [i for i, _ in row], [round(float(s), 6) for _, s in row])
            for key, strat, row in zip(keys, recs.strategy.tolist(), rows, strict=True)
        ]

    # -- similar ---------------------------------------------------------------------

    def validate_similar(self, req: SimilarRequest) -> int:
        """k against the item count; returns the cost (items asked about)."""
        top = min(self.model.n_items - 1, MAX_K)
        if req.k > top:
            raise ValidationError(f"expected 1 <= k <= {top} (the items this model can return)", field="k")
        results = len(req.items) * req.k
        if results > MAX_RESULTS:
            raise ValidationError(
                f"{len(req.items)} items x k={req.k} asks for {results:,} results, more than the "
                f"{MAX_RESULTS:,} one request may return; ask for fewer items or a smaller k",
                field="items",
            )
        return len(req.items) * (1 + req.k // 20)

    def similar_from_path(self, key: str, query: Mapping[str, str]) -> SimilarRequest:
        """``GET .../similar/{item}?k=``."""
        item: Id = _path_int(key, "item", "item") if self._int_items else key
        return SimilarRequest(items=[item], k=_query_k(query) if query else 10)

    def similar_batch(self, requests: Sequence[SimilarRequest]) -> list[SimilarResponse | MlscaleError]:
        """Answer a micro-batch of ``similar`` requests: one ``similar_items`` call per request (not merged)."""
        out: list[SimilarResponse | MlscaleError] = []
        for req in requests:
            try:
                recs = self.model.similar_items(req.items, k=req.k)
            except MlscaleError as err:
                out.append(err)
                continue
            rows = recs.to_lists()
            out.append(
                SimilarResponse(
                    self.model_ref,
                    self.version,
                    [
                        SimilarItems(item, str(s), [i for i, _ in row], [round(float(x), 6) for _, x in row])
                        for item, s, row in zip(req.items, recs.strategy.tolist(), rows, strict=True)
                    ],
                )
            )
        return out
