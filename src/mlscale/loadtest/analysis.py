"""From measurements to answers: SLO verdicts, the capacity knee and a capacity plan.

>>> slo = Slo.parse(["p99=50ms", "errors=0.1%"])
>>> slo.latency_ms, slo.max_error_rate
({99.0: 50.0}, 0.001)
>>> plan = capacity_plan(knee_rps=800, target_rps=2000, headroom=1.5,
...                      requests_per_user_per_day=40, peak_factor=3)
>>> plan.replicas, plan.users_per_replica
(4, 384000)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlscale.errors import ValidationError
from mlscale.loadtest.generator import StepResult

__all__ = ["CapacityPlan", "KneeSearch", "Slo", "Verdict", "capacity_plan", "find_knee", "judge"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s)?\s*$")


def _parse_ms(text: str, field_name: str) -> float:
    m = _DURATION.match(text)
    if not m:
        raise ValidationError(f"expected a duration such as 50ms, 0.2s or 800us, got {text!r}", field=field_name)
    scale = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0, None: 1.0}[m.group(2)]
    return float(m.group(1)) * scale


@dataclass(frozen=True)
class Slo:
    """Latency percentile targets (ms) and the largest acceptable error rate."""

    latency_ms: dict[float, float] = field(default_factory=lambda: {99.0: 50.0})
    max_error_rate: float = 0.001

    @classmethod
    def parse(cls, items: Sequence[str]) -> Slo:
        """Parse ``p99=50ms``, ``p99.9=200ms``, ``p50=10ms``, ``errors=0.1%`` (defaults: p99=50ms, errors=0.1%)."""
        latency: dict[float, float] = {}
        errors: float | None = None
        for item in items:
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            if not sep:
                raise ValidationError(f"expected KEY=VALUE such as p99=50ms, got {item!r}", field="--slo")
            if key in ("errors", "error", "error_rate"):
                v = value.strip()
                try:
                    errors = float(v[:-1]) / 100 if v.endswith("%") else float(v)
                except ValueError:
                    raise ValidationError(
                        f"expected an error rate such as 0.1%, got {value!r}", field="--slo errors"
                    ) from None
                if not 0 <= errors <= 1:
                    raise ValidationError(
                        f"expected an error rate between 0% and 100%, got {value!r}", field="--slo errors"
                    )
            elif re.fullmatch(r"p\d+(\.\d+)?", key):
                p = float(key[1:])
                if not 0 < p < 100:
                    raise ValidationError(f"expected a percentile between p0 and p100, got {key}", field="--slo")
                latency[p] = _parse_ms(value, f"--slo {key}")
            else:
                raise ValidationError(f"unknown SLO key {key!r}; expected pNN=DURATION or errors=RATE", field="--slo")
        return cls(latency_ms=latency or {99.0: 50.0}, max_error_rate=0.001 if errors is None else errors)

    def describe(self) -> str:
        parts = [f"p{p:g} <= {ms:g} ms" for p, ms in sorted(self.latency_ms.items())]
        return ", ".join([*parts, f"errors <= {self.max_error_rate:.2%}"])


@dataclass(frozen=True)
class Verdict:
    """Whether a step met the SLO, and why not."""

    passed: bool
    reasons: tuple[str, ...]
    generator_bound: bool = False


def judge(step: StepResult, slo: Slo) -> Verdict:
    """Check one step against the SLO (an answer rate well below the offered rate fails too)."""
    reasons = []
    for p, limit in sorted(slo.latency_ms.items()):
        got = step.percentile_ms(p)
        if math.isnan(got) or got > limit:
            reasons.append(f"p{p:g} {got:.1f} ms > {limit:g} ms")
    if step.error_rate > slo.max_error_rate:
        reasons.append(f"errors {step.error_rate:.2%} > {slo.max_error_rate:.2%}")
    if step.sent and step.completed < 0.99 * step.sent:
        # Poisson arrivals make the sent count vary around rate x duration; what matters is that
        # the server answered what was sent (timeouts and resets are also counted as errors).
        reasons.append(f"answered {step.completed:,} of {step.sent:,} requests sent")
    return Verdict(passed=not reasons, reasons=tuple(reasons), generator_bound=step.generator_saturated)


@dataclass
class KneeSearch:
    """Every step of a knee search, and the knee: the highest rate that met the SLO."""

    steps: list[tuple[StepResult, Verdict]]
    knee_rps: float | None
    limited_by_generator: bool

    def as_dict(self) -> dict[str, Any]:
        return {"knee_rps": self.knee_rps, "limited_by_generator": self.limited_by_generator}


def find_knee(
    run_step: Callable[[float], StepResult],
    slo: Slo,
    *,
    start: float,
    factor: float = 2.0,
    max_rate: float = 1e6,
    refine: int = 3,
    on_step: Callable[[StepResult, Verdict], None] | None = None,
) -> KneeSearch:
    """Raise the rate by ``factor`` until the SLO fails, then bisect ``refine`` times.

    A step where the generator itself could not keep up stops the search: its
    result says nothing about the server.
    """
    if start <= 0 or factor <= 1:
        raise ValidationError("expected a start rate > 0 and a factor > 1", field="knee")
    steps: list[tuple[StepResult, Verdict]] = []

    def measure(rate: float) -> Verdict:
        step = run_step(rate)
        verdict = judge(step, slo)
        steps.append((step, verdict))
        if on_step is not None:
            on_step(step, verdict)
        return verdict

    good: float | None = None
    bad: float | None = None
    rate = start
    while rate <= max_rate:
        v = measure(rate)
        if v.generator_bound:
            return KneeSearch(steps, good, True)
        if v.passed:
            good = rate
            rate *= factor
        else:
            bad = rate
            break
    if good is not None and bad is not None:
        for _ in range(refine):
            mid = (good + bad) / 2
            v = measure(mid)
            if v.generator_bound:
                return KneeSearch(steps, good, True)
            if v.passed:
                good = mid
            else:
                bad = mid
    return KneeSearch(steps, good, False)


@dataclass(frozen=True)
class CapacityPlan:
    """Replicas for a target load, and the users one replica serves."""

    knee_rps: float
    target_rps: float | None
    headroom: float
    replicas: int | None
    requests_per_user_per_day: float
    peak_factor: float
    users_per_replica: int

    def lines(self) -> list[str]:
        out = [f"one replica sustains {self.knee_rps:,.0f} req/s within the SLO"]
        per = self.knee_rps / self.headroom
        out.append(
            f"with headroom x{self.headroom:g}, plan {per:,.0f} req/s per replica, i.e. "
            f"{self.users_per_replica:,} users at {self.requests_per_user_per_day:g} requests/user/day "
            f"and a peak x{self.peak_factor:g} the daily average"
        )
        if self.replicas is not None and self.target_rps is not None:
            out.append(f"for {self.target_rps:,.0f} req/s: {self.replicas} replica(s)")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "knee_rps": self.knee_rps,
            "target_rps": self.target_rps,
            "headroom": self.headroom,
            "replicas": self.replicas,
            "requests_per_user_per_day": self.requests_per_user_per_day,
            "peak_factor": self.peak_factor,
            "users_per_replica": self.users_per_replica,
        }


def capacity_plan(
    *,
    knee_rps: float,
    target_rps: float | None = None,
    headroom: float = 1.5,
    requests_per_user_per_day: float = 20.0,
    peak_factor: float = 3.0,
) -> CapacityPlan:
    """Replicas = ceil(target x headroom / knee); users = planned req/s x 86400 / (req/user/day x peak)."""
    if knee_rps <= 0:
        raise ValidationError("no rate met the SLO, so there is no capacity to plan from", field="knee")
    if headroom < 1:
        raise ValidationError(f"expected a headroom factor >= 1, got {headroom}", field="--headroom")
    if requests_per_user_per_day <= 0 or peak_factor < 1:
        raise ValidationError("expected requests per user per day > 0 and a peak factor >= 1", field="--peak-factor")
    replicas = math.ceil(target_rps * headroom / knee_rps) if target_rps else None
    per_replica = knee_rps / headroom
    users = int(per_replica * 86_400 / (requests_per_user_per_day * peak_factor))
    return CapacityPlan(knee_rps, target_rps, headroom, replicas, requests_per_user_per_day, peak_factor, users)
