"""The application contract: what an application declares so every stage can run it.

An application (``apps/<name>/``, or any package with an ``mlscale.apps`` entry
point) declares, per stage:

- :attr:`Application.params`: one frozen dataclass per model family (fields made
  with :func:`param`); the command line's flags, their help and their defaults
  are generated from it, and the same values round-trip through a manifest;
- :attr:`Application.trainers` (and ``evaluators``, ``precomputers``): the
  implementation per engine name, as ``"module:attribute"`` strings loaded only
  when that engine is used, so Spark or a GPU library is imported only then;
- :attr:`Application.codec`: its fitted model to registry arrays/tables and back;
- :attr:`Application.tuners`: the parameter search per engine (``mlscale tune APP``,
  ``train --tune``), where the app has one;
- where it has them: :meth:`Application.predictor` (serving),
  :meth:`Application.scenario` (load tests), an ``updater`` and its own commands
  (:meth:`Application.add_commands`).

The generic verbs (``mlscale train|evaluate|update|precompute|tune APP``, publish,
promote) are written once, in the command line and :func:`publish_model`, and
call the application only through this contract. The contract sits between
the applications and the stages (it speaks the stages' types: ``Predictor``,
``Scenario``, ``LoadedModel``, ``Engine``), and no stage imports it: the serving
stage, for one, receives its predictors through an injected factory.

>>> import dataclasses
>>> @dataclasses.dataclass(frozen=True)
... class P:
...     k: int = param(3, "neighbours", minimum=1)
>>> params_to_dict(params_from_dict(P, {"k": 5, "other": 1}))
{'k': 5}
>>> params_from_dict(P, {"k": 0})
Traceback (most recent call last):
...
mlscale.errors.ValidationError: k: expected a number >= 1, got 0
"""

from __future__ import annotations

import abc
import argparse
import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from mlscale.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from mlscale.engines.base import Engine
    from mlscale.loadtest.scenario import Scenario
    from mlscale.registry import LoadedModel, Manifest, ModelRef, Store
    from mlscale.serve.predictor import Predictor

__all__ = [
    "VERBS",
    "Application",
    "Artifact",
    "Codec",
    "Evaluator",
    "Job",
    "Precomputer",
    "TrainResult",
    "Trainer",
    "Tuner",
    "Updater",
    "load_object",
    "param",
    "params_from_dict",
    "params_to_dict",
    "publish_model",
]

#: Generic verbs of the command line: ``mlscale VERB APP ...``.
VERBS: tuple[str, ...] = ("train", "evaluate", "update", "precompute", "tune")

P = TypeVar("P")


# -- parameters ---------------------------------------------------------------------------------------


def param(
    default: Any,
    help: str = "",
    *,
    choices: Sequence[Any] | None = None,
    minimum: float | None = None,
    flag: str | None = None,
    hidden: bool = False,
) -> Any:
    """A params-class field: its default (the only place it is written) and what the CLI says about it.

    ``choices`` / ``minimum`` are checked by :func:`params_from_dict`; ``flag``
    overrides the generated ``--field-name``; ``hidden`` keeps the flag out of ``--help``.
    """
    meta = {"help": help, "choices": tuple(choices) if choices else None, "minimum": minimum}
    meta.update({"flag": flag, "hidden": hidden})
    return field(default=default, metadata=meta)


def params_to_dict(params: Any) -> dict[str, Any]:
    """A params instance as the JSON-able dict a manifest stores."""
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def params_from_dict(cls: type[P], values: Mapping[str, Any]) -> P:
    """The ``cls`` instance for ``values`` (keys it does not have are ignored), checked against the metadata."""
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    given = {k: v for k, v in values.items() if k in known}
    for name, value in given.items():
        meta = known[name].metadata
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ValidationError(f"expected one of {', '.join(map(str, choices))}, got {value!r}", field=name)
        minimum = meta.get("minimum")
        if minimum is not None and value is not None and value < minimum:
            raise ValidationError(f"expected a number >= {minimum:g}, got {value!r}", field=name)
    return cls(**given)


# -- what the stages call -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What a verb hands an application: the data spec, where data and models live, the app's own flags."""

    data: str
    data_dir: Path
    store: Store | None = None
    name: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    def option(self, key: str, default: Any = None) -> Any:
        """One of the application's own flags (``default`` when the verb did not define it)."""
        value = self.options.get(key, default)
        return default if value is None else value


@dataclass(frozen=True)
class TrainResult:
    """A fitted model and what its manifest records; ``summary`` is the line the CLI prints."""

    model: Any
    metrics: Mapping[str, float]
    data_fingerprint: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""


@dataclass(frozen=True)
class Artifact:
    """A model as the registry stores it: arrays (``.npy``), tables (``.parquet``), params and facts."""

    arrays: Mapping[str, Any]
    params: Mapping[str, Any]
    tables: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


class Trainer(Protocol):
    """Fits one application's model on one engine.

    ``param_defaults``: this engine's own defaults for fields the user did not
    set (Spark's ALS scales regularisation, so its default differs).
    """

    param_defaults: Mapping[str, Any]

    def fit(self, engine: Engine, job: Job, params: Any) -> TrainResult: ...


class Evaluator(Protocol):
    """Measures a model family offline on one engine; prints its report and returns the exit status."""

    param_defaults: Mapping[str, Any]

    def evaluate(self, engine: Engine, job: Job, params: Any) -> int: ...


class Tuner(Protocol):
    """Searches a model family's parameters on a validation split carved from the training data.

    The job's options hold the budget (``trials`` and/or ``time`` in seconds),
    ``storage`` (a file to resume from) and ``seed``; prints the trials and
    returns the exit status.
    """

    def tune(self, engine: Engine, job: Job) -> int: ...


class Updater(Protocol):
    """Folds new data into a loaded model without a full retrain."""

    def update(self, model: Any, manifest: Manifest, job: Job) -> TrainResult: ...


class Precomputer(Protocol):
    """Scores every entity of a model in batch; returns the line the CLI prints."""

    def precompute(self, engine: Engine, model: Any, job: Job) -> str: ...


class Codec(Protocol):
    """A fitted model to a registry artifact and back (arrays, never pickles)."""

    def to_artifact(self, model: Any) -> Artifact: ...

    def from_artifact(self, loaded: LoadedModel) -> Any: ...


def load_object(path: str) -> Any:
    """``"package.module:attribute"`` -> the object (the module is imported now, not before)."""
    module, sep, attr = path.partition(":")
    if not sep:
        raise ConfigError(f"expected 'module:attribute', got {path!r}")
    return getattr(importlib.import_module(module), attr)


def publish_model(
    store: Store,
    app: str,
    codec: Codec,
    name: str,
    model: Any,
    *,
    metrics: Mapping[str, float],
    engine: str,
    data_fingerprint: str,
    extra: Mapping[str, Any] | None = None,
) -> Manifest:
    """Publish a fitted model of application ``app`` as a new version of ``APP/NAME``, through its codec.

    The one publish of every application: the generic verbs call it, and each
    app's ``publish_model(store, name, model, ...)`` is this with its own name and codec.
    """
    artifact = codec.to_artifact(model)
    return store.publish(
        app,
        name,
        arrays=artifact.arrays,
        tables=artifact.tables,
        params=artifact.params,
        metrics=metrics,
        engine=engine,
        data_fingerprint=data_fingerprint,
        extra={**artifact.extra, **(extra or {})},
    )


class Application(abc.ABC):
    """One ML application (recommendations, threat detection...): declarations, not a pipeline."""

    name: ClassVar[str]
    summary: ClassVar[str]
    #: Model family -> frozen params dataclass; the first is the default family.
    params: ClassVar[Mapping[str, type[Any]]]
    #: Engine name -> ``"module:attribute"`` of a :class:`Trainer`.
    trainers: ClassVar[Mapping[str, str]]
    #: Engine name -> ``"module:attribute"`` of an :class:`Evaluator` (empty: no ``evaluate``).
    evaluators: ClassVar[Mapping[str, str]] = {}
    #: The params fields ``evaluate`` takes flags for (None: all).
    evaluate_param_fields: ClassVar[tuple[str, ...] | None] = None
    #: Engine name -> ``"module:attribute"`` of a :class:`Precomputer` (empty: no ``precompute``).
    precomputers: ClassVar[Mapping[str, str]] = {}
    #: Engine name -> ``"module:attribute"`` of a :class:`Tuner` (empty: no ``tune``, no ``train --tune``).
    tuners: ClassVar[Mapping[str, str]] = {}
    #: ``"module:attribute"`` of an :class:`Updater` (None: no ``update``).
    updater: ClassVar[str | None] = None
    #: Top-level modules of the app's extra (``mlscale[NAME]``), checked when it is loaded.
    requires: ClassVar[tuple[str, ...]] = ()
    #: What ``--data`` of ``train`` takes, for its help.
    data_help: ClassVar[str] = "catalogue name, file or folder"

    @property
    @abc.abstractmethod
    def codec(self) -> Codec:
        """The model <-> artifact codec."""

    @property
    def verbs(self) -> frozenset[str]:
        """The subset of :data:`VERBS` this application answers, from what it declares."""
        have = {
            "train": bool(self.trainers),
            "evaluate": bool(self.evaluators),
            "update": self.updater is not None,
            "precompute": bool(self.precomputers),
            "tune": bool(self.tuners),
        }
        return frozenset(v for v in VERBS if have[v])

    def add_arguments(self, verb: str, parser: argparse.ArgumentParser) -> None:  # noqa: B027 - optional hook
        """Add the application's own flags of ``mlscale VERB <app>`` (the generic ones are already there)."""

    def add_commands(self, sub: Any) -> None:  # noqa: B027 - optional hook
        """Add the application's own top-level commands (optional)."""

    def family_of(self, params: Mapping[str, Any]) -> str:
        """The model family a manifest's params belong to (default: the first family)."""
        return next(iter(self.params))

    def implementation(self, kind: str, engine: str) -> Any:
        """The trainer / evaluator / precomputer for ``engine``; a clear error when there is none."""
        table: Mapping[str, str] = {"train": self.trainers, "evaluate": self.evaluators, "tune": self.tuners}.get(
            kind, self.precomputers
        )
        if engine not in table:
            raise ConfigError(
                f"the {self.name} app cannot {kind} on {engine!r} yet; engines: {', '.join(table) or 'none'}"
            )
        return load_object(table[engine])

    def model_ref(self, text: str) -> ModelRef:
        """``NAME``, ``NAME@alias`` or ``APP/NAME[@sel]`` -> a reference to one of this app's models."""
        from mlscale.registry import ModelRef  # when used: loading an app need not load the registry

        ref = ModelRef.parse(text if "/" in text else f"{self.name}/{text}")
        if ref.app != self.name:
            raise ValidationError(f"{text!r} is not a {self.name} model (expected {self.name}/NAME)", field="--model")
        return ref

    def example_data(self, folder: Path) -> tuple[str, dict[str, Any]]:
        """A tiny data set written into ``folder`` for the contract suite: (``--data``, the app's options)."""
        raise NotImplementedError(f"the {self.name} app has no example data")

    def predictor(self, model: LoadedModel) -> Predictor:
        """What ``mlscale serve`` answers requests with, for a loaded version of one of this app's models.

        Applications that can be served override this; the default refuses.
        """
        raise ConfigError(
            f"the {self.name!r} application cannot serve models yet",
            hint="serve a model of an application that implements Application.predictor",
        )

    @property
    def servable(self) -> bool:
        """Whether :meth:`predictor` is implemented."""
        return type(self).predictor is not Application.predictor

    def scenario(self, mix: dict[str, Any], *, data: str | None, data_dir: Path, model: str) -> Scenario:
        """The requests ``mlscale loadtest --scenario <this app>`` sends, built from ``data``.

        ``mix`` holds the scenario file's ``[mix]`` options; ``model`` is the served
        model name the requests address. Applications that can be load-tested
        override this; the default refuses.
        """
        raise ConfigError(
            f"the {self.name!r} application has no load-test scenario",
            hint="load-test it with a plain GET (no --scenario) or a scenario of another application",
        )
