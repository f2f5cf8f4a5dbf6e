"""Hyper-parameter search over model families on a validation split carved from the training data.

The validation split never touches test data: it is cut from the table the
caller trains on. With timestamps it is time-aware (each user's most recent
interactions held out, as a deployed model meets the future); without, a
seeded random share. Each trial fits one model on the validation split's
training part and scores NDCG@k (binary relevance, seen items excluded).

The search is Optuna's TPE sampler, seeded: with a trial budget and one thread
the same seed gives the same trials and the same choice. With a ``storage``
file (Optuna's journal format) a study resumes where it stopped: trials
already stored count toward the budget. A time budget (``timeout``) stops
between trials, so which trials run depends on the machine.

Families and spaces (:data:`SEARCH_SPACE`): EASE (``l2``), ALS (factors,
regularisation, alpha, weighting), BPR, and item-kNN (neighbours,
similarity). EASE and kNN are left out when the catalogue does not fit the
memory budget.

>>> space = search_space(("ease", "als"))
>>> sorted(space), space["ease"]["l2"]["low"]
(['als', 'ease'], 1.0)
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from mlscale.apps.recommend.evaluate import Split, make_split, report_on_split
from mlscale.apps.recommend.itemitem import (
    DEFAULT_ITEM_ITEM_BUDGET,
    EaseRecommender,
    KnnRecommender,
    item_item_bytes,
    prune_items,
)
from mlscale.apps.recommend.model import ImplicitRecommender
from mlscale.errors import ConfigError, DataError, MlscaleError, ValidationError

__all__ = [
    "DEFAULT_FAMILIES",
    "FAMILIES",
    "SEARCH_SPACE",
    "TuneResult",
    "build_model",
    "search_space",
    "tune",
    "validation_split",
]

FAMILIES = ("ease", "als", "bpr", "knn")
#: What a search covers unless told otherwise (BPR is searched only when asked: it was not measured here).
DEFAULT_FAMILIES = ("ease", "als", "knn")

#: Per family, each parameter's distribution: ``log`` floats/ints in [low, high] or a ``choices`` list.
SEARCH_SPACE: dict[str, dict[str, dict[str, Any]]] = {
    "ease": {"l2": {"type": "float", "low": 1.0, "high": 10_000.0, "log": True}},
    "als": {
        "factors": {"type": "categorical", "choices": [16, 32, 64, 128, 256]},
        "regularization": {"type": "float", "low": 1e-3, "high": 100.0, "log": True},
        "alpha": {"type": "float", "low": 0.1, "high": 100.0, "log": True},
        "weighting": {"type": "categorical", "choices": ["none", "bm25", "tfidf"]},
        "iterations": {"type": "categorical", "choices": [15]},
    },
    "bpr": {
        "factors": {"type": "categorical", "choices": [32, 64, 128]},
        "learning_rate": {"type": "float", "low": 1e-3, "high": 0.2, "log": True},
        "regularization": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
        "iterations": {"type": "categorical", "choices": [100]},
    },
    "knn": {
        "neighbours": {"type": "int", "low": 10, "high": 1000, "log": True},
        "similarity": {"type": "categorical", "choices": ["cosine", "bm25", "tfidf"]},
    },
}


def search_space(families: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """The search space of ``families`` (a JSON-able copy of :data:`SEARCH_SPACE`)."""
    unknown = [f for f in families if f not in SEARCH_SPACE]
    if unknown or not families:
        raise ValidationError(
            f"expected families among {', '.join(FAMILIES)}, got {list(families)!r}", field="families"
        )
    return {f: {p: dict(d) for p, d in SEARCH_SPACE[f].items()} for f in families}


def build_model(
    family: str, params: dict[str, Any], *, threads: int = 0, seed: int = 0, **extra: Any
) -> ImplicitRecommender:
    """An unfitted model of ``family`` with ``params`` (as stored in a :class:`TuneResult`)."""
    if family == "ease":
        return EaseRecommender(threads=threads, seed=seed, **params, **extra)
    if family == "knn":
        return KnnRecommender(threads=threads, seed=seed, **params, **extra)
    if family in ("als", "bpr"):
        return ImplicitRecommender(model=family, threads=threads, seed=seed, **params)  # type: ignore[arg-type]
    raise ValidationError(f"expected one of {', '.join(FAMILIES)}, got {family!r}", field="family")


def _has_time(table: pa.Table) -> bool:
    return bool(table.column("timestamp").null_count < table.num_rows)


def validation_split(
    table: pa.Table,
    *,
    method: Literal["auto", "time", "random"] = "auto",
    n_val: int | None = None,
    fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """A validation split of a *training* table: each user's last ``n_val`` (time), or a random ``fraction``.

    ``auto``: time when the table has timestamps, else random. ``n_val``
    defaults to a fifth of the median user's interactions, between 1 and 10.
    An empty split (no user keeps a held-out item) is a ValidationError.
    """
    if table.num_rows == 0:
        raise ValidationError("no training interactions to carve a validation split from", field="data")
    if method not in ("auto", "time", "random"):
        raise ValidationError(f"expected 'auto', 'time' or 'random', got {method!r}", field="validation")
    try:
        if method == "time" or (method == "auto" and _has_time(table)):
            if n_val is None:
                _, counts = np.unique(table.column("user").to_numpy(zero_copy_only=False), return_counts=True)
                n_val = int(min(10, max(1, round(float(np.median(counts)) / 5))))
            return make_split(table, "time", n_test=n_val)
        return make_split(table, "random", test_fraction=fraction, seed=seed)
    except DataError as err:
        raise ValidationError(
            f"the validation split is empty ({err.args[0] if err.args else err})",
            field="validation",
        ) from None


@dataclass
class TuneResult:
    """The outcome of a search: the choice, every trial, the space and the validation curve."""

    family: str
    params: dict[str, Any]
    score: float
    metric: str
    trials: list[dict[str, Any]]
    space: dict[str, dict[str, dict[str, Any]]]
    validation: dict[str, Any]
    seed: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def curve(self) -> list[float]:
        """Best validation score after each completed trial (the validation curve)."""
        best, out = -np.inf, []
        for t in self.trials:
            if t["score"] is not None:
                best = max(best, t["score"])
            out.append(float(best))
        return out

    def model(self, *, threads: int = 0, **extra: Any) -> ImplicitRecommender:
        """The chosen model, unfitted."""
        return build_model(self.family, dict(self.params), threads=threads, seed=self.seed, **extra)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, for a manifest (``tuning``)."""
        return {
            "family": self.family,
            "params": self.params,
            "score": self.score,
            "metric": self.metric,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "validation": self.validation,
            "search_space": self.space,
            "curve": self.curve,
            "trials": self.trials,
            **self.extra,
        }

    def table(self) -> str:
        """The trials, one line each, best marked."""
        lines = [f"{'trial':>5}  {'family':6} {self.metric:>9}  {'secs':>6}  params"]
        for t in self.trials:
            score = "failed" if t["score"] is None else f"{t['score']:.4f}"
            mark = (
                " *" if t["score"] == self.score and t["family"] == self.family and t["params"] == self.params else ""
            )
            params = ", ".join(f"{k}={_fmt(v)}" for k, v in t["params"].items())
            lines.append(f"{t['number']:>5}  {t['family']:6} {score:>9}  {t['seconds']:>6.1f}  {params}{mark}")
        lines.append(f"chosen: {self.family} {self.params} ({self.metric} {self.score:.4f} on validation)")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _suggest(trial: Any, family: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, d in SEARCH_SPACE[family].items():
        key = f"{family}.{name}"
        if d["type"] == "categorical":
            out[name] = trial.suggest_categorical(key, d["choices"])
        elif d["type"] == "int":
            out[name] = trial.suggest_int(key, d["low"], d["high"], log=d.get("log", False))
        else:
            out[name] = trial.suggest_float(key, d["low"], d["high"], log=d.get("log", False))
    return out


def _check_budget(trials: int | None, timeout: float | None) -> None:
    if trials is None and timeout is None:
        raise ValidationError("give a budget: a number of trials or a time", field="trials")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise ValidationError(f"expected a number of trials >= 1, got {trials!r}", field="trials")
    if timeout is not None and not timeout > 0:
        raise ValidationError(f"expected a time budget > 0 seconds, got {timeout!r}", field="time")


def tune(
    table: pa.Table,
    *,
    families: Sequence[str] = DEFAULT_FAMILIES,
    trials: int | None = 20,
    timeout: float | None = None,
    seed: int = 0,
    storage: str | Path | None = None,
    study_name: str = "recommend",
    k: int = 10,
    threads: int = 0,
    memory_budget: int = DEFAULT_ITEM_ITEM_BUDGET,
    progress: bool = False,
    split: Split | None = None,
    validation: Literal["auto", "time", "random"] = "auto",
) -> TuneResult:
    """Search ``families`` for the best NDCG@``k`` on a validation split of ``table`` (training data only).

    ``trials`` and/or ``timeout`` (seconds) bound the search; ``storage`` (a
    file path) makes it resumable; ``validation`` picks the split (see
    :func:`validation_split`) and ``split`` replaces it.
    """
    _check_budget(trials, timeout)
    try:
        import optuna
    except ImportError:
        raise ConfigError("tuning needs optuna", hint="install it with `pip install 'mlscale[tune]'`") from None
    space = search_space(families)
    val = split if split is not None else validation_split(table, method=validation, seed=seed)
    if val.rows.size == 0:
        raise ValidationError("the validation split holds no user with held-out items", field="validation")
    usable = list(families)
    if any(f in ("ease", "knn") for f in usable):
        n_kept = prune_items(val.train, 2).shape[1]
        if item_item_bytes(n_kept) > memory_budget:
            usable = [f for f in usable if f not in ("ease", "knn")]
            if not usable:
                raise ValidationError(
                    f"EASE / kNN need {item_item_bytes(n_kept) / 2**30:.1f} GiB for {n_kept:,} items, over the "
                    "memory budget; add 'als' to the families",
                    field="families",
                )
    space = {f: space[f] for f in usable}

    def objective(trial: Any) -> float:
        family = trial.suggest_categorical("family", usable) if len(usable) > 1 else usable[0]
        params = _suggest(trial, family)
        extra = {"memory_budget": memory_budget} if family in ("ease", "knn") else {}
        model = build_model(family, params, threads=threads, seed=seed, **extra)
        start = time.perf_counter()
        model.fit(val.train)
        trial.set_user_attr("seconds", time.perf_counter() - start)
        return float(report_on_split(val, model, k=k).model["ndcg"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store: Any = None
    if storage is not None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        store = JournalStorage(JournalFileBackend(str(storage)))
    study = optuna.create_study(
        storage=store,
        sampler=optuna.samplers.TPESampler(seed=seed),
        study_name=study_name,
        direction="maximize",
        load_if_exists=store is not None,
    )
    done = sum(1 for t in study.trials if t.state.is_finished())
    remaining = None if trials is None else max(0, trials - done)
    start = time.perf_counter()
    if remaining is None or remaining > 0:
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=timeout,
            catch=(MlscaleError,),
            show_progress_bar=progress,
        )
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not finished:
        raise ValidationError("no trial completed; see the trials' errors", field="trials")
    rows = []
    for t in study.trials:
        fam = t.params.get("family", usable[0])
        rows.append(
            {
                "number": t.number,
                "family": fam,
                "params": {k.split(".", 1)[1]: v for k, v in t.params.items() if k.startswith(f"{fam}.")},
                "score": None if t.value is None else float(t.value),
                "seconds": float(t.user_attrs.get("seconds", 0.0)),
                "state": t.state.name.lower(),
            }
        )
    best = max((r for r in rows if r["score"] is not None), key=lambda r: r["score"])
    return TuneResult(
        family=best["family"],
        params=best["params"],
        score=best["score"],
        metric=f"ndcg@{k}",
        trials=rows,
        space=space,
        validation={
            "method": val.method,
            "users": int(val.rows.size),
            "held_out": int(val.held_out),
            "train_interactions": int(val.train.nnz),
        },
        seed=seed,
        seconds=time.perf_counter() - start,
        extra={"median_trial_seconds": statistics.median([r["seconds"] for r in rows]) if rows else 0.0},
    )
