"""Run a load test in one of three modes and build its report.

- ``fixed``: one rate for one duration;
- ``knee``: steps of rising rate until the SLO fails, then bisection: the
  knee is the highest rate that met the SLO, and it feeds the capacity plan;
- ``soak``: one rate for a long time in windows, watching p99 drift.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import numpy as np

from mlscale.errors import ValidationError
from mlscale.loadtest._prometheus import deltas, scrape
from mlscale.loadtest.analysis import Slo, Verdict, capacity_plan, find_knee, judge
from mlscale.loadtest.generator import LoadGenerator, StepResult, StepSpec
from mlscale.loadtest.report import LoadReport
from mlscale.loadtest.scenario import Scenario

__all__ = ["Mode", "run_loadtest"]

Mode = Literal["fixed", "knee", "soak"]
_POOL = 4096  # distinct prepared requests per run


def run_loadtest(
    url: str,
    scenario: Scenario,
    spec: StepSpec,
    slo: Slo,
    *,
    mode: Mode = "fixed",
    processes: int = 1,
    headers: dict[str, str] | None = None,
    metrics_url: str | None = None,
    knee_factor: float = 2.0,
    knee_max_rate: float = 1e6,
    knee_refine: int = 3,
    soak_windows: int = 6,
    target_rps: float | None = None,
    headroom: float = 1.5,
    requests_per_user_per_day: float = 20.0,
    peak_factor: float = 3.0,
    on_step: Callable[[StepResult, Verdict], None] | None = None,
) -> LoadReport:
    """Measure ``url`` with ``scenario`` and return the report (nothing is printed)."""
    if mode not in ("fixed", "knee", "soak"):
        raise ValidationError(f"expected fixed, knee or soak, got {mode!r}", field="--mode")
    requests = scenario.requests(np.random.default_rng(spec.seed), _POOL)
    report = LoadReport(url=url, mode=mode, scenario=scenario.describe(), slo=slo)

    with LoadGenerator(url, requests, processes=processes, headers=headers) as gen:
        gen.target.check(requests[0].path if requests[0].method == "GET" else "")

        def measure(step_spec: StepSpec) -> StepResult:
            before = scrape(metrics_url) if metrics_url else None
            result = gen.run(step_spec)
            server = deltas(before, scrape(metrics_url) if metrics_url else None)
            verdict = judge(result, slo)
            report.steps.append((result, verdict, server))
            if on_step is not None:
                on_step(result, verdict)
            return result

        if mode == "fixed":
            measure(spec)
        elif mode == "soak":
            window = dataclasses.replace(spec, duration=spec.duration / soak_windows)
            for i in range(soak_windows):
                measure(dataclasses.replace(window, warmup=spec.warmup if i == 0 else 0.0, seed=spec.seed + i))
            p99s = [s.percentile_ms(99) for s, _, _ in report.steps]
            first, last = p99s[0], p99s[-1]
            report.drift = {
                "first_p99_ms": first,
                "last_p99_ms": last,
                "ratio": last / first if first > 0 else 1.0,
                "windows": soak_windows,
            }
        else:
            knee = find_knee(
                lambda rate: measure(dataclasses.replace(spec, rate=rate)),
                slo,
                start=spec.rate,
                factor=knee_factor,
                max_rate=knee_max_rate,
                refine=knee_refine,
            )
            report.knee = knee
            if knee.knee_rps:
                report.capacity = capacity_plan(
                    knee_rps=knee.knee_rps,
                    target_rps=target_rps,
                    headroom=headroom,
                    requests_per_user_per_day=requests_per_user_per_day,
                    peak_factor=peak_factor,
                )
    if mode == "fixed" and target_rps and report.steps and report.steps[0][1].passed:
        report.capacity = capacity_plan(
            knee_rps=spec.rate,
            target_rps=target_rps,
            headroom=headroom,
            requests_per_user_per_day=requests_per_user_per_day,
            peak_factor=peak_factor,
        )
    return report
