"""From one host's measured capacity to a fleet: how many hosts, how many workers each.

The capacity of one host is read from a load-test report (``mlscale loadtest
--json``, any mode; a knee search gives the best one): the highest achieved
rate among the steps that met the SLO asked for now, which need not be the SLO
the load test was run with. A step limited by its own generator is not
trusted. Then::

    per host (planned) = capacity x workers_per_host / workers_measured / headroom
    hosts              = ceil(target / per host) + spare

Scaling one host's capacity by its worker count assumes the workers are CPU
bound and the host has a core for each (measure again at the worker count you
deploy); scaling to n hosts assumes the balancer and the registry are not the
bottleneck, which :func:`check_plan`-style load tests of the real fleet verify.

>>> report = {"slo": {"latency_ms": {"p99": 50}, "max_error_rate": 0.001}, "steps": [
...     {"achieved_rps": 400, "latency_ms": {"p99": 12.0}, "error_rate": 0, "generator": {"saturated": False}},
...     {"achieved_rps": 790, "latency_ms": {"p99": 31.0}, "error_rate": 0, "generator": {"saturated": False}},
...     {"achieved_rps": 1500, "latency_ms": {"p99": 900.0}, "error_rate": 0.2, "generator": {"saturated": False}}]}
>>> plan = plan_fleet(report, target_rps=2000, slo=Slo.parse(["p99=50ms"]), headroom=1.5)
>>> plan.capacity_rps, plan.hosts, plan.workers_per_host
(790.0, 4, 1)
>>> plan_fleet(report, target_rps=2000, slo=Slo.parse(["p99=20ms"])).capacity_rps
400.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from mlscale.errors import ValidationError
from mlscale.loadtest.analysis import Slo
from mlscale.loadtest.generator import StepSpec
from mlscale.loadtest.runner import run_loadtest
from mlscale.loadtest.scenario import PlainScenario

__all__ = ["FleetPlan", "capacity_at", "check_plan", "plan_fleet"]


def capacity_at(report: Mapping[str, Any], slo: Slo) -> tuple[float, int]:
    """(highest achieved req/s that met ``slo``, index of that step) in a load-test report's steps."""
    steps = report.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ValidationError("the load-test report has no steps", field="steps")
    best, where = 0.0, -1
    for i, step in enumerate(steps):
        try:
            latency = step["latency_ms"]
            achieved = float(step["achieved_rps"])
            errors = float(step["error_rate"])
            saturated = bool(step.get("generator", {}).get("saturated", False))
        except (KeyError, TypeError, ValueError) as err:
            raise ValidationError(f"step {i} is not a load-test step ({err})", field=f"steps[{i}]") from None
        met = errors <= slo.max_error_rate and all(
            latency.get(f"p{p:g}") is not None and float(latency[f"p{p:g}"]) <= limit
            for p, limit in slo.latency_ms.items()
        )
        if met and not saturated and achieved > best:
            best, where = achieved, i
    if where < 0:
        raise ValidationError(
            f"no step of the load-test report met {slo.describe()}",
            field="--report",
            hint="run the knee search from a lower rate (mlscale loadtest URL --mode knee --rate 10 --json knee.json)",
        )
    return best, where


@dataclass(frozen=True)
class FleetPlan:
    """Hosts and workers for a target load, and what it assumed."""

    target_rps: float
    slo: str
    capacity_rps: float
    workers_measured: int
    workers_per_host: int
    headroom: float
    per_host_rps: float
    hosts: int
    spare: int
    memory_per_worker_mib: float | None

    @property
    def workers(self) -> int:
        """Worker processes in the whole fleet."""
        return self.hosts * self.workers_per_host

    def lines(self) -> list[str]:
        out = [
            f"one host with {self.workers_measured} worker(s) sustains {self.capacity_rps:,.0f} req/s "
            f"within {self.slo} (measured)",
            f"planned per host ({self.workers_per_host} worker(s), headroom x{self.headroom:g}): "
            f"{self.per_host_rps:,.0f} req/s",
            f"for {self.target_rps:,.0f} req/s: {self.hosts} host(s) x {self.workers_per_host} worker(s) "
            f"= {self.workers} worker(s)" + (f", {self.spare} of the hosts spare" if self.spare else ""),
        ]
        if self.memory_per_worker_mib is not None:
            out.append(
                f"memory: at most {self.memory_per_worker_mib * self.workers_per_host:,.0f} MiB per host "
                f"({self.memory_per_worker_mib:,.0f} MiB per worker; workers share the memory-mapped model, "
                "so this is an upper bound)"
            )
        return out

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "workers": self.workers}


def plan_fleet(
    report: Mapping[str, Any] | None,
    *,
    target_rps: float,
    slo: Slo,
    headroom: float = 1.5,
    workers_measured: int = 1,
    workers_per_host: int | None = None,
    spare: int = 0,
    memory_per_worker_mib: float | None = None,
    capacity_rps: float | None = None,
) -> FleetPlan:
    """The fleet for ``target_rps`` from a load-test report of one host (see the module docstring).

    ``capacity_rps`` (one host's measured capacity) stands in for the report when there is none.
    """
    if not target_rps > 0:
        raise ValidationError(f"expected a target rate > 0, got {target_rps}", field="--target-rps")
    if headroom < 1:
        raise ValidationError(f"expected a headroom factor >= 1, got {headroom}", field="--headroom")
    if workers_measured < 1 or (workers_per_host is not None and workers_per_host < 1):
        raise ValidationError("expected at least 1 worker", field="--workers")
    if spare < 0:
        raise ValidationError(f"expected 0 or more spare hosts, got {spare}", field="--spare")
    if capacity_rps is not None:
        if not capacity_rps > 0:
            raise ValidationError(f"expected a capacity > 0 req/s, got {capacity_rps}", field="--capacity")
        capacity = float(capacity_rps)
    elif report is not None:
        capacity, _ = capacity_at(report, slo)
    else:
        raise ValidationError("pass a load-test report (--report knee.json) or --capacity RPS", field="--report")
    workers = workers_measured if workers_per_host is None else workers_per_host
    per_host = capacity * workers / workers_measured / headroom
    hosts = math.ceil(target_rps / per_host - 1e-9) + spare
    return FleetPlan(
        target_rps=float(target_rps),
        slo=slo.describe(),
        capacity_rps=capacity,
        workers_measured=workers_measured,
        workers_per_host=workers,
        headroom=headroom,
        per_host_rps=round(per_host, 1),
        hosts=max(hosts, 1),
        spare=spare,
        memory_per_worker_mib=memory_per_worker_mib,
    )


def check_plan(url: str, plan: FleetPlan, slo: Slo, duration: float) -> dict[str, Any]:
    """Load ``url`` (the fleet's balancer) at the plan's target rate; measured figures beside planned ones."""
    spec = StepSpec(rate=plan.target_rps, duration=duration, warmup=min(1.0, duration / 4))
    report = run_loadtest(url, PlainScenario(""), spec, slo, mode="fixed", processes=1, metrics_url="")
    step = report.as_dict()["steps"][0]
    return {
        "url": url,
        "planned_hosts": plan.hosts,
        "target_rps": plan.target_rps,
        "achieved_rps": step["achieved_rps"],
        "p99_ms": step["latency_ms"]["p99"],
        "error_rate": step["error_rate"],
        "passed": report.passed,
    }
