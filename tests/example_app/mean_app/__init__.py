"""An example mlscale application in one folder: "predict the mean" of a column.

It is the proof that a new application is one folder and one entry point:
it declares params, a local trainer, a codec, a predictor and a load-test
scenario, and passes the contract suite (``tests/contract/test_apps.py``)
with no change anywhere else. Installed, it would be one line of
``pyproject.toml``::

    [project.entry-points."mlscale.apps"]
    mean = "mean_app:application"

The suite registers it without packaging, through ``MLSCALE_APPS=mean=mean_app:application``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlscale.apps.base import Application, Artifact, Codec, Job, TrainResult, param, params_from_dict, params_to_dict
from mlscale.engines import Engine
from mlscale.errors import DataError, ValidationError
from mlscale.loadtest.scenario import Request, Scenario
from mlscale.registry import LoadedModel
from mlscale.serve.predictor import Action, Predictor

__all__ = ["MeanApp", "MeanParams", "application"]


@dataclass(frozen=True)
class MeanParams:
    """The one model family: the (shrunk) mean of a column."""

    family: ClassVar[str] = "mean"

    column: str = param("y", "the column to average")
    shrink: float = param(0.0, "pseudo-count pulling the mean toward 0", minimum=0)


@dataclass(frozen=True)
class MeanModel:
    mean: float
    rows: int
    params: MeanParams


class _Trainer:
    param_defaults: Mapping[str, Any] = {}

    def fit(self, engine: Engine, job: Job, params: MeanParams) -> TrainResult:
        path = Path(job.data)
        if not path.is_file():
            raise DataError(f"{path}: no such Parquet file")
        table = pq.read_table(path)
        if params.column not in table.column_names:
            raise ValidationError(f"no column {params.column!r} in {path}", field="column")
        values = table.column(params.column).to_numpy().astype(np.float64)
        mean = float(values.sum() / (len(values) + params.shrink)) if len(values) else 0.0
        fingerprint = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        return TrainResult(
            MeanModel(mean, len(values), params),
            {"rows": float(len(values))},
            fingerprint,
            summary=f"mean of {len(values):,} rows is {mean:.4g}",
        )


class _Codec:
    def to_artifact(self, model: MeanModel) -> Artifact:
        return Artifact(
            arrays={"mean": np.array([model.mean])}, params=params_to_dict(model.params), extra={"rows": model.rows}
        )

    def from_artifact(self, loaded: LoadedModel) -> MeanModel:
        return MeanModel(
            float(loaded.arrays["mean"][0]),
            int(loaded.manifest.extra["rows"]),
            params_from_dict(MeanParams, loaded.manifest.params),
        )


class PredictRequest(msgspec.Struct):
    n: int = 1


class PredictResponse(msgspec.Struct):
    predictions: list[float]
    version: int


class _Predictor(Predictor):
    def __init__(self, model: MeanModel, version: int) -> None:
        self.model, self.version = model, version

    def _check(self, request: PredictRequest) -> int:
        if not 1 <= request.n <= 1000:
            raise ValidationError(f"expected 1 <= n <= 1000, got {request.n}", field="n")
        return request.n

    def _run(self, batch: Sequence[PredictRequest]) -> list[PredictResponse]:
        return [PredictResponse([self.model.mean] * r.n, self.version) for r in batch]

    def actions(self) -> list[Action[PredictRequest]]:
        return [Action("predict", "the mean, n times", PredictRequest, PredictResponse, self._run, self._check)]


class _Scenario(Scenario):
    name = "mean"

    def __init__(self, model: str) -> None:
        self.model = model

    def requests(self, rng: np.random.Generator, n: int) -> list[Request]:
        sizes = rng.integers(1, 5, max(n, 1))
        return [Request("POST", f"/v1/models/{self.model}/predict", b'{"n": %d}' % s, "single") for s in sizes]


TRAINER = _Trainer()
CODEC = _Codec()


class MeanApp(Application):
    """Predict the mean of a column (the smallest application there is)."""

    name: ClassVar[str] = "mean"
    summary: ClassVar[str] = "predict the mean of a column (the example application)"
    params: ClassVar[Mapping[str, type[Any]]] = {"mean": MeanParams}
    trainers: ClassVar[Mapping[str, str]] = {"local": f"{__name__}:TRAINER"}
    data_help: ClassVar[str] = "a Parquet file"

    @property
    def codec(self) -> Codec:
        return CODEC

    def predictor(self, model: LoadedModel) -> Predictor:
        return _Predictor(CODEC.from_artifact(model), model.manifest.version)

    def scenario(self, mix: dict[str, Any], *, data: str | None, data_dir: Path, model: str) -> Scenario:
        return _Scenario(model)

    def example_data(self, folder: Path) -> tuple[str, dict[str, Any]]:
        path = folder / "values.parquet"
        pq.write_table(pa.table({"y": np.arange(100, dtype=np.float64)}), path)
        return str(path), {}


application = MeanApp()
