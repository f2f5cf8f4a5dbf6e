"""Production load testing: open-loop load, SLO verdict, capacity knee and plan.

Requests leave at their scheduled times whatever the server does, and latency
is measured from those times (no coordinated omission); HDR histograms from
several generator processes are merged; a generator that cannot keep up says
so. :func:`run_loadtest` runs a fixed rate, a knee search or a soak, and the
:class:`LoadReport` prints, saves JSON, plots PNGs and writes one HTML page.

Applications supply scenarios built from their data through
:meth:`mlscale.apps.Application.scenario`; without one, a plain GET of the URL
is sent (:class:`PlainScenario`).
"""

from mlscale.loadtest.analysis import CapacityPlan, KneeSearch, Slo, Verdict, capacity_plan, find_knee, judge
from mlscale.loadtest.generator import LoadGenerator, StepResult, StepSpec, Target
from mlscale.loadtest.report import SCHEMA_VERSION, LoadReport
from mlscale.loadtest.runner import run_loadtest
from mlscale.loadtest.scenario import PlainScenario, Request, Scenario, ScenarioSpec

__all__ = [
    "SCHEMA_VERSION",
    "CapacityPlan",
    "KneeSearch",
    "LoadGenerator",
    "LoadReport",
    "PlainScenario",
    "Request",
    "Scenario",
    "ScenarioSpec",
    "Slo",
    "StepResult",
    "StepSpec",
    "Target",
    "Verdict",
    "capacity_plan",
    "find_knee",
    "judge",
    "run_loadtest",
]
