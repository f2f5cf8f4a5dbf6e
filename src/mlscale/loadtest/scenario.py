"""Scenarios: what requests a load test sends, in what mix, at what rate.

A :class:`Scenario` makes a pool of :class:`Request` objects (prepared once, so
the generator does no work per request beyond sending). Applications supply
their own scenario through :meth:`mlscale.apps.Application.scenario`, built
from their data (the recommender samples users with their real activity).

A scenario file is TOML::

    app = "recommend"     # whose requests (omit for a plain GET of the URL)

    [load]
    rate = 200            # requests/s (fixed mode), or the first step (knee mode)
    duration = 10         # seconds per step
    warmup = 1            # seconds per step not recorded
    arrival = "poisson"   # or "constant"
    timeout = 2.0         # seconds before a request counts as timed out

    [slo]
    p99 = "50ms"
    errors = "0.1%"

    [mix]                 # application options, passed to the app's scenario
    unknown_users = 0.05
    batch = 0.1
    batch_size = 16
    k = 10

>>> spec = ScenarioSpec.from_toml('[load]\\nrate = 50\\n[mix]\\nk = 5\\n')
>>> spec.rate, spec.duration, spec.mix["k"]
(50.0, 10.0, 5)
"""

from __future__ import annotations

import abc
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlscale.errors import ValidationError

__all__ = ["PlainScenario", "Request", "Scenario", "ScenarioSpec"]


@dataclass(frozen=True, slots=True)
class Request:
    """One request of a scenario's pool; ``kind`` labels it in the report (``single``, ``batch``...).

    ``content_type`` is sent with a body (an image action takes ``image/png``, say).
    """

    method: str
    path: str
    body: bytes | None = None
    kind: str = "request"
    content_type: str = "application/json"


class Scenario(abc.ABC):
    """A source of requests for the load generator."""

    name: str = "scenario"

    @abc.abstractmethod
    def requests(self, rng: np.random.Generator, n: int) -> list[Request]:
        """``n`` requests drawn with the scenario's mix (the generator cycles through them at random)."""

    def describe(self) -> dict[str, Any]:
        """What the scenario sends, for the report."""
        return {"name": self.name}


class PlainScenario(Scenario):
    """A plain GET of the URL (``mlscale loadtest URL`` without a scenario)."""

    name = "plain"

    def __init__(self, path: str = "") -> None:
        self.path = path  # appended to the URL's own path

    def requests(self, rng: np.random.Generator, n: int) -> list[Request]:
        return [Request("GET", self.path, None, "get")]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path}


_LOAD_KEYS = {
    "rate": float,
    "duration": float,
    "warmup": float,
    "arrival": str,
    "timeout": float,
    "processes": int,
    "max_connections": int,
    "seed": int,
}


@dataclass(frozen=True)
class ScenarioSpec:
    """The settings of a scenario file; flags on the command line override them."""

    rate: float = 100.0
    duration: float = 10.0
    warmup: float = 1.0
    arrival: str = "poisson"
    timeout: float = 2.0
    processes: int | None = None
    max_connections: int = 512
    seed: int = 0
    app: str | None = None
    slo: dict[str, str] = field(default_factory=dict)
    mix: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, text: str, source: str = "scenario") -> ScenarioSpec:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValidationError(f"{source}: not valid TOML ({exc})", field="scenario") from None
        unknown = set(data) - {"app", "load", "slo", "mix"}
        if unknown:
            raise ValidationError(
                f"{source}: unknown key(s) {sorted(unknown)}; expected app, [load], [slo], [mix]",
                field="scenario",
            )
        app = data.get("app")
        if app is not None and not isinstance(app, str):
            raise ValidationError(f'{source}: app must be a string such as "recommend"', field="app")
        load = data.get("load", {})
        kwargs: dict[str, Any] = {}
        for key, value in load.items():
            if key not in _LOAD_KEYS:
                raise ValidationError(
                    f"{source}: unknown key load.{key}; expected one of {sorted(_LOAD_KEYS)}",
                    field=f"load.{key}",
                )
            kind = _LOAD_KEYS[key]
            if isinstance(value, bool) or not isinstance(value, (kind, int) if kind is float else kind):
                raise ValidationError(
                    f"{source}: load.{key} must be {kind.__name__}, got {value!r}", field=f"load.{key}"
                )
            kwargs[key] = kind(value)
        slo = data.get("slo", {})
        if not isinstance(slo, Mapping) or not all(isinstance(v, str) for v in slo.values()):
            raise ValidationError(f'{source}: [slo] values must be strings such as "50ms" or "0.1%"', field="slo")
        mix = data.get("mix", {})
        if not isinstance(mix, Mapping):
            raise ValidationError(f"{source}: [mix] must be a table", field="mix")
        spec = cls(**kwargs, app=app, slo=dict(slo), mix=dict(mix))
        if spec.arrival not in ("constant", "poisson"):
            raise ValidationError(f"{source}: load.arrival must be 'constant' or 'poisson'", field="load.arrival")
        for key in ("rate", "duration", "timeout"):
            if getattr(spec, key) <= 0:
                raise ValidationError(f"{source}: load.{key} must be > 0", field=f"load.{key}")
        return spec

    @classmethod
    def load(cls, path: str | Path) -> ScenarioSpec:
        p = Path(path)
        if not p.is_file():
            raise ValidationError(f"{p}: no such scenario file", field="scenario")
        return cls.from_toml(p.read_text(encoding="utf-8"), source=str(p))
