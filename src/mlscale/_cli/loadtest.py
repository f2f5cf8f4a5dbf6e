"""``mlscale loadtest URL``: open-loop load, SLO verdict, knee and capacity plan."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

from mlscale._cli import _common
from mlscale.config import load_settings
from mlscale.errors import ConfigError, ValidationError
from mlscale.loadtest import (
    PlainScenario,
    Scenario,
    ScenarioSpec,
    Slo,
    StepResult,
    StepSpec,
    Verdict,
    run_loadtest,
)
from mlscale.loadtest.generator import Target

__all__ = ["SLO_FAILED", "add_parser"]

#: Exit status when the load test ran but the SLO was not met (CI can gate on it).
SLO_FAILED = 3


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "loadtest",
        help="open-loop load test: SLO verdict, capacity knee and plan, report",
        description="Send open-loop load to URL (latency measured from each request's intended send time), "
        "judge it against an SLO, find the knee (--mode knee) and plan capacity. Exit status 0 when the SLO "
        f"is met, {SLO_FAILED} when it is not.",
    )
    p.add_argument("url", metavar="URL", help="base URL of the service (plain GET of it without --scenario)")
    p.add_argument("--scenario", help="an application name (e.g. recommend) or a scenario TOML file")
    p.add_argument("--data", help="data the scenario samples from (catalogue name, file or folder)")
    p.add_argument("--model", help="served model name the scenario addresses (default: asked from the server)")
    p.add_argument("--mode", choices=("fixed", "knee", "soak"), default="fixed", help="default: fixed")
    p.add_argument("--rate", type=float, help="requests/s (knee: the first step); default 100")
    p.add_argument("--duration", type=float, help="seconds per step (soak: in total); default 10")
    p.add_argument("--warmup", type=float, help="seconds per step not recorded; default 1")
    p.add_argument("--arrival", choices=("poisson", "constant"), help="arrival process; default poisson")
    p.add_argument("--timeout", type=float, help="seconds before a request counts as timed out; default 2")
    p.add_argument("--processes", type=int, help="generator processes (default: half the cores)")
    p.add_argument("--max-connections", type=int, help="connections per generator process; default 512")
    p.add_argument(
        "--closed-loop",
        type=int,
        default=0,
        metavar="N",
        help="closed loop over N connections instead (for comparison; hides queueing delay)",
    )
    p.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="e.g. p99=50ms, p99.9=200ms, errors=0.1%% (repeatable; default p99=50ms errors=0.1%%)",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    p.add_argument("--report", type=Path, metavar="DIR", help="write report.html, PNG plots and report.json")
    p.add_argument("--metrics-url", help="Prometheus page to scrape per step (default: URL/metrics when present)")
    p.add_argument("--knee-factor", type=float, default=2.0, help="rate multiplier between knee steps")
    p.add_argument("--knee-max-rate", type=float, default=1e6, help="highest rate the knee search tries")
    p.add_argument("--target-rps", type=float, help="capacity plan: replicas needed for this load")
    p.add_argument("--headroom", type=float, default=1.5, help="capacity plan: safety factor (default 1.5)")
    p.add_argument("--requests-per-user-per-day", type=float, default=20.0, help="capacity plan (default 20)")
    p.add_argument("--peak-factor", type=float, default=3.0, help="capacity plan: peak / daily mean (default 3)")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    _common.add_data_dir_arg(p)
    p.set_defaults(handler=_loadtest)


def _served_model(url: str, app: str, headers: dict[str, str]) -> str:
    req = urllib.request.Request(url.rstrip("/") + "/v1/models", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            listing = json.loads(resp.read())
    except (OSError, ValueError):
        raise ValidationError("could not list the served models: pass --model NAME", field="--model") from None
    models = listing.get("models", listing) if isinstance(listing, dict) else listing
    names = [m.get("name") for m in models if isinstance(m, dict) and m.get("app") == app]
    if len(names) != 1:
        raise ValidationError(
            f"the server serves {len(names)} {app} models ({names}): pass --model NAME", field="--model"
        )
    return str(names[0])


def _scenario(args: argparse.Namespace, spec: ScenarioSpec, headers: dict[str, str]) -> Scenario:
    app_name = spec.app
    if args.scenario and not args.scenario.endswith(".toml"):
        app_name = args.scenario
    if app_name is None:
        if args.data:
            raise ValidationError("--data needs a scenario (e.g. --scenario recommend)", field="--data")
        return PlainScenario("")
    from mlscale.apps import get_application

    app = get_application(app_name)
    model = args.model or _served_model(args.url, app_name, headers)
    return app.scenario(dict(spec.mix), data=args.data, data_dir=_common.data_dir(args), model=model)


def _loadtest(args: argparse.Namespace) -> int:
    from mlscale.loadtest.generator import default_processes

    spec_file = ScenarioSpec()
    if args.scenario and args.scenario.endswith(".toml"):
        spec_file = ScenarioSpec.load(args.scenario)
    elif args.scenario and ("/" in args.scenario or Path(args.scenario).suffix):
        raise ValidationError(
            f"expected an application name or a .toml file, got {args.scenario!r}", field="--scenario"
        )

    def pick(flag: Any, value: Any) -> Any:
        return value if flag is None else flag

    step = StepSpec(
        rate=pick(args.rate, spec_file.rate),
        duration=pick(args.duration, spec_file.duration),
        warmup=pick(args.warmup, spec_file.warmup),
        arrival=pick(args.arrival, spec_file.arrival),
        timeout=pick(args.timeout, spec_file.timeout),
        max_connections=pick(args.max_connections, spec_file.max_connections),
        seed=spec_file.seed,
        closed_loop=args.closed_loop,
    )
    slo = Slo.parse([*(f"{k}={v}" for k, v in spec_file.slo.items()), *args.slo])
    token = load_settings().api_token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    Target.parse(args.url)  # a malformed URL fails before any data is read
    scenario = _scenario(args, spec_file, headers)
    processes = pick(args.processes, spec_file.processes) or default_processes()
    if processes < 1:
        raise ConfigError(f"expected at least 1 generator process, got {processes}")
    metrics_url = args.metrics_url or args.url.rstrip("/") + "/metrics"

    def progress(step_result: StepResult, verdict: Verdict) -> None:
        if not args.quiet:
            p99 = step_result.percentile_ms(99)
            print(
                f"  step {step_result.offered_rate:,.0f}/s: achieved {step_result.achieved_rate:,.0f}/s, "
                f"p99 {p99:.1f} ms, errors {step_result.error_rate:.2%} -> "
                f"{'ok' if verdict.passed else 'fail'}",
                file=sys.stderr,
                flush=True,
            )

    report = run_loadtest(
        args.url,
        scenario,
        step,
        slo,
        mode=args.mode,
        processes=processes,
        headers=headers,
        metrics_url=metrics_url,
        knee_factor=args.knee_factor,
        knee_max_rate=args.knee_max_rate,
        target_rps=args.target_rps,
        headroom=args.headroom,
        requests_per_user_per_day=args.requests_per_user_per_day,
        peak_factor=args.peak_factor,
        on_step=progress,
    )
    print(report.summary())
    if args.json:
        print(f"json: {report.write_json(args.json)}")
    if args.report:
        print(f"report: {report.write(args.report)}")
    return 0 if report.passed else SLO_FAILED
