"""Standard offline protocols: MovieLens' official folds, leave-last-N-out, random holdout.

A protocol turns a data set into one or more (train, test) folds; a model is
fitted on each fold's training part only (a ``fit`` callable gets the
training table, so any choice it makes, such as a validation search, sees no
test row), then measured on the held-out items with the metrics of
:mod:`~mlscale.apps.recommend.evaluate` (binary relevance, seen training items
excluded), the popularity baseline beside it. Over several folds the report
gives the mean and the spread (sample standard deviation).

Protocol names:

- ``u1`` .. ``u5``, ``ua``, ``ub``: MovieLens-100k's official splits
  (``uN.base`` / ``uN.test`` in the data set's folder); ``u1-u5`` and
  ``ua-ub`` run each fold of the range;
- ``last-N``: each user's N most recent interactions held out (users with N
  or fewer stay in training);
- ``random-F``: each interaction held out with probability F (seeded), a
  training interaction kept per user; ``random-F-xR`` repeats it with R seeds.

>>> parse_protocol("u1-u5").folds
('u1', 'u2', 'u3', 'u4', 'u5')
>>> parse_protocol("last-2").n_test, parse_protocol("random-0.2-x3").repeats
(2, 3)
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from mlscale.apps.recommend.evaluate import EvaluationReport, report_on_split, split_from_tables, split_interactions
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.apps.recommend.model import ImplicitRecommender
from mlscale.data import InteractionReader, open_interactions
from mlscale.errors import DataError, ValidationError

__all__ = [
    "FitFn",
    "Protocol",
    "ProtocolReport",
    "evaluate_protocol",
    "fit_params",
    "parse_protocol",
    "protocol_folds",
]

#: Fits a model on a fold's training data: (training table, its matrix) -> fitted model.
FitFn = Callable[[pa.Table, InteractionMatrix], ImplicitRecommender]

_OFFICIAL = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


@dataclass(frozen=True)
class Protocol:
    """A parsed protocol name (see the module docstring)."""

    name: str
    kind: Literal["official", "last", "random"]
    folds: tuple[str, ...] = ()
    n_test: int = 10
    test_fraction: float = 0.2
    repeats: int = 1


def parse_protocol(name: str) -> Protocol:
    """Parse ``u1``, ``u1-u5``, ``ua-ub``, ``last-N`` or ``random-F[-xR]``; a ValidationError otherwise."""
    text = name.strip().lower()
    if text in _OFFICIAL:
        return Protocol(text, "official", (text,))
    m = re.fullmatch(r"(u[1-5a-b])-(u[1-5a-b])", text)
    if m and m[1] in _OFFICIAL and m[2] in _OFFICIAL:
        a, b = _OFFICIAL.index(m[1]), _OFFICIAL.index(m[2])
        if a <= b and (b < 5 or a >= 5):
            return Protocol(text, "official", _OFFICIAL[a : b + 1])
    m = re.fullmatch(r"last-(\d+)", text)
    if m and int(m[1]) >= 1:
        return Protocol(text, "last", n_test=int(m[1]))
    m = re.fullmatch(r"random-(0?\.\d+)(?:-x(\d+))?", text)
    if m and 0 < float(m[1]) < 1 and (m[2] is None or int(m[2]) >= 1):
        return Protocol(text, "random", test_fraction=float(m[1]), repeats=int(m[2] or 1))
    raise ValidationError(
        f"unknown protocol {name!r}; expected u1..u5, ua, ub, a range such as u1-u5 or ua-ub, "
        "last-N (e.g. last-10) or random-F[-xR] (e.g. random-0.2, random-0.2-x5)",
        field="protocol",
    )


def _official_folder(data: str | Path, data_dir: Path) -> Path:
    path = Path(data)
    folder = path if path.is_dir() else data_dir / str(data)
    if not (folder / "u1.base").is_file():
        raise DataError(
            f"{data}: MovieLens' official folds need uN.base / uN.test files (as in movielens-100k's folder)",
            hint="use the movielens-100k catalogue data set or its folder, or a last-N / random protocol",
        )
    return folder


def protocol_folds(
    data: str | Path, protocol: Protocol, data_dir: Path, *, seed: int = 0
) -> Iterator[tuple[str, pa.Table, pa.Table]]:
    """Yield ``(fold name, train table, test table)`` for each fold of ``protocol`` on ``data``."""
    if protocol.kind == "official":
        folder = _official_folder(data, data_dir)
        for fold in protocol.folds:
            train = InteractionReader(folder / f"{fold}.base", id_type="int").read_all()
            test = InteractionReader(folder / f"{fold}.test", id_type="int").read_all()
            yield fold, train, test
        return
    table = open_interactions(data, data_dir).read_all()
    if protocol.kind == "last":
        train, test = split_interactions(table, "time", n_test=protocol.n_test)
        yield protocol.name, train, test
        return
    for r in range(protocol.repeats):
        train, test = split_interactions(table, "random", test_fraction=protocol.test_fraction, seed=seed + r)
        yield f"{protocol.name}#{r}", train, test


def _spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass
class ProtocolReport:
    """Per-fold reports of one model on one protocol, with mean and spread of each metric."""

    data: str
    protocol: str
    folds: list[EvaluationReport]
    fit_seconds: list[float] = field(default_factory=list)

    def _values(self, who: str, metric: str) -> list[float]:
        return [(r.model if who == "model" else r.popularity)[metric] for r in self.folds]

    def mean(self, metric: str = "ndcg", who: str = "model") -> float:
        """Mean of ``metric`` over the folds (``who``: model or popularity)."""
        return statistics.fmean(self._values(who, metric))

    def spread(self, metric: str = "ndcg", who: str = "model") -> float:
        """Sample standard deviation of ``metric`` over the folds (0 for one fold)."""
        return _spread(self._values(who, metric))

    def as_dict(self) -> dict[str, Any]:
        names = ("precision", "recall", "ndcg", "map", "coverage")
        return {
            "data": self.data,
            "protocol": self.protocol,
            "k": self.folds[0].k,
            "model": {n: {"mean": self.mean(n), "std": self.spread(n)} for n in names},
            "popularity": {n: {"mean": self.mean(n, "popularity"), "std": self.spread(n, "popularity")} for n in names},
            "fit_seconds": self.fit_seconds,
            "folds": [r.as_dict() for r in self.folds],
        }

    def table(self) -> str:
        k = self.folds[0].k
        names = ("precision", "recall", "ndcg", "map", "coverage")
        lines = [f"{'':12}" + "".join(f"{n + '@' + str(k):>18}" for n in names)]
        for who in ("model", "popularity"):
            cells = "".join(f"{self.mean(n, who):>10.4f} ±{self.spread(n, who):.4f}" for n in names)
            lines.append(f"{who:12}" + cells)
        pop = self.mean("ndcg", "popularity")
        ratio = self.mean("ndcg") / pop if pop > 0 else float("inf")
        lines.append(f"NDCG@{k}: {ratio:.2f}x popularity; {self.protocol} on {self.data}, {len(self.folds)} fold(s)")
        return "\n".join(lines)


def evaluate_protocol(
    data: str | Path,
    protocol: str | Protocol,
    fit: FitFn,
    *,
    data_dir: Path,
    k: int = 10,
    seed: int = 0,
    on_fold: Callable[[str, EvaluationReport], None] | None = None,
) -> ProtocolReport:
    """Run ``protocol`` on ``data``: ``fit`` on each fold's training part, measure on its test part."""
    import time

    if k < 1:
        raise ValidationError(f"expected k >= 1, got {k}", field="k")
    proto = protocol if isinstance(protocol, Protocol) else parse_protocol(protocol)
    reports: list[EvaluationReport] = []
    seconds: list[float] = []
    for fold, train_t, test_t in protocol_folds(data, proto, data_dir, seed=seed):
        split = split_from_tables(train_t, test_t, fold)
        start = time.perf_counter()
        model = fit(train_t, split.train)
        seconds.append(time.perf_counter() - start)
        report = report_on_split(split, model, k=k, label=fold)
        reports.append(report)
        if on_fold is not None:
            on_fold(fold, report)
    return ProtocolReport(data=str(data), protocol=proto.name, folds=reports, fit_seconds=seconds)


def fit_params(model: ImplicitRecommender) -> FitFn:
    """A :data:`FitFn` that fits a fresh copy of ``model``'s parameters on each fold."""

    def fit(_table: pa.Table, matrix: InteractionMatrix) -> ImplicitRecommender:
        return type(model)(**model.get_params()).fit(matrix)

    return fit
