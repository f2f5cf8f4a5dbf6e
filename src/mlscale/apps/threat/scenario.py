"""The threat model's load-test scenario: batches of real flows sent to ``score``.

Flows are sampled from a log (any format :mod:`mlscale.apps.threat.ingest`
reads) and sent as ``POST /v1/models/{model}/score`` bodies of ``batch_size``
flows; a share ``single`` of requests carries one flow (an inline check of a
live connection). Mix options (``[mix]`` in a scenario file): ``batch_size``
(100), ``single`` (0.2), ``pool`` (flows read from the data, 20000).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from mlscale.apps.threat.ingest import iter_flows
from mlscale.apps.threat.schema import FLOW_ENDPOINT, LABEL_FIELDS, flow_fields
from mlscale.errors import DataError, ValidationError
from mlscale.loadtest.scenario import Request, Scenario

__all__ = ["ThreatScenario"]

_DEFAULTS: dict[str, float] = {"batch_size": 100, "single": 0.2, "pool": 20_000}
# What a score request sends of a flow: its endpoint, then what its words are made of.
_FIELDS = (
    *FLOW_ENDPOINT,
    *flow_fields(without=("line", "flow_id", "ts", "service", *FLOW_ENDPOINT, *LABEL_FIELDS)),
    "flow_id",
)


class ThreatScenario(Scenario):
    """Score requests built from real flows."""

    name = "threat"

    def __init__(self, data: Path, model: str, mix: dict[str, Any] | None = None) -> None:
        unknown = set(mix or {}) - set(_DEFAULTS)
        if unknown:
            raise ValidationError(f"unknown option(s) {sorted(unknown)}; expected {sorted(_DEFAULTS)}", field="mix")
        self.mix = {**_DEFAULTS, **(mix or {})}
        if not 0 <= float(self.mix["single"]) <= 1:
            raise ValidationError(f"expected a share between 0 and 1, got {self.mix['single']!r}", field="mix.single")
        for key in ("batch_size", "pool"):
            if not isinstance(self.mix[key], int) or self.mix[key] < 1:
                raise ValidationError(f"expected a whole number >= 1, got {self.mix[key]!r}", field=f"mix.{key}")
        self.data = str(data)
        self.model = model
        batches, rows = [], 0
        for batch in iter_flows(data):
            batches.append(batch)
            rows += batch.num_rows
            if rows >= int(self.mix["pool"]):
                break
        if not rows:
            raise DataError(f"{data}: no flows to build requests from")
        table = pa.Table.from_batches(batches).slice(0, int(self.mix["pool"]))
        ts = table.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False) / 1e6
        self._flows = [
            {k: v for k, v in {**row, "ts": float(t)}.items() if v is not None}
            for row, t in zip(table.select(list(_FIELDS)).to_pylist(), ts.tolist(), strict=True)
        ]

    def requests(self, rng: np.random.Generator, n: int) -> list[Request]:
        path = f"/v1/models/{self.model}/score"
        size = int(self.mix["batch_size"])
        out: list[Request] = []
        for _ in range(n):
            single = rng.random() < float(self.mix["single"])
            picks = rng.integers(0, len(self._flows), size=1 if single else size)
            body = msgspec.json.encode({"flows": [self._flows[i] for i in picks.tolist()]})
            out.append(Request("POST", path, body, "single" if single else "batch"))
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "data": self.data, "model": self.model, "flows": len(self._flows), "mix": self.mix}
