"""The recommender's load-test scenario: real users with their real activity.

Users are drawn with probability proportional to their number of
interactions in the training data (a heavy user asks more often, as in
production). A share ``unknown_users`` of requests comes from users the model
has never seen, carrying a few recent items drawn by popularity (cold start
by fold-in); a share ``batch`` asks for ``batch_size`` users at once; a share
``get`` uses the one-user ``GET`` form.

Mix options (``[mix]`` in a scenario file): ``unknown_users`` (0.05),
``batch`` (0.1), ``batch_size`` (16), ``get`` (0.2), ``k`` (10),
``recent_items`` (3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from mlscale.apps.recommend.ingest import ingest_matrix
from mlscale.data.sources import open_interactions
from mlscale.errors import ValidationError
from mlscale.loadtest.scenario import Request, Scenario

__all__ = ["RecommendScenario"]

_DEFAULTS: dict[str, float] = {
    "unknown_users": 0.05,
    "batch": 0.1,
    "batch_size": 16,
    "get": 0.2,
    "k": 10,
    "recent_items": 3,
}


class RecommendScenario(Scenario):
    """Recommendation requests sampled from an interaction log."""

    name = "recommend"

    def __init__(self, data: str, data_dir: Path, model: str, mix: dict[str, Any] | None = None) -> None:
        unknown = set(mix or {}) - set(_DEFAULTS)
        if unknown:
            raise ValidationError(f"unknown option(s) {sorted(unknown)}; expected {sorted(_DEFAULTS)}", field="mix")
        self.mix = {**_DEFAULTS, **(mix or {})}
        for key in ("unknown_users", "batch", "get"):
            if not 0 <= float(self.mix[key]) <= 1:
                raise ValidationError(f"expected a share between 0 and 1, got {self.mix[key]!r}", field=f"mix.{key}")
        for key in ("batch_size", "k", "recent_items"):
            if not isinstance(self.mix[key], int) or self.mix[key] < 1:
                raise ValidationError(f"expected a whole number >= 1, got {self.mix[key]!r}", field=f"mix.{key}")
        self.data = data
        self.model = model
        matrix = ingest_matrix(open_interactions(data, data_dir))
        counts = np.diff(matrix.csr.indptr).astype(np.float64)
        self._users = matrix.user_ids
        self._user_p = counts / counts.sum()
        pop = np.bincount(matrix.csr.indices, minlength=matrix.shape[1]).astype(np.float64)
        self._items = matrix.item_ids
        self._item_p = pop / pop.sum()
        self._new_base = int(matrix.user_ids.max()) + 1_000_000 if matrix.user_ids.dtype.kind in "iu" else None

    def requests(self, rng: np.random.Generator, n: int) -> list[Request]:
        path = f"/v1/models/{self.model}/recommend"
        k = int(self.mix["k"])
        draws = n * (int(self.mix["batch_size"]) + 1)
        picks = iter(self._users[rng.choice(self._users.size, size=draws, p=self._user_p)].tolist())
        out: list[Request] = []
        for i in range(n):
            r = rng.random()
            if r < self.mix["unknown_users"]:
                user: Any = self._new_base + i if self._new_base is not None else f"new-{i}"
                items = self._items[
                    rng.choice(self._items.size, size=int(self.mix["recent_items"]), replace=False, p=self._item_p)
                ].tolist()
                body = {"users": [user], "k": k, "recent_items": items}
                out.append(Request("POST", path, msgspec.json.encode(body), "cold"))
            elif r < self.mix["unknown_users"] + self.mix["batch"]:
                users = [next(picks) for _ in range(int(self.mix["batch_size"]))]
                out.append(Request("POST", path, msgspec.json.encode({"users": users, "k": k}), "batch"))
            elif r < self.mix["unknown_users"] + self.mix["batch"] + self.mix["get"]:
                out.append(Request("GET", f"{path}/{next(picks)}?k={k}", None, "get"))
            else:
                out.append(Request("POST", path, msgspec.json.encode({"users": [next(picks)], "k": k}), "single"))
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "data": self.data,
            "model": self.model,
            "users": int(self._users.size),
            "mix": self.mix,
        }
