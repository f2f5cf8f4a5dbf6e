"""``mlscale plan``: hosts and workers for a target load, from one host's measured capacity."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mlscale.errors import ValidationError
from mlscale.loadtest import Slo
from mlscale.loadtest.plan import check_plan, plan_fleet

__all__ = ["add_parser"]

#: Exit status when --check ran and the fleet missed the SLO (as ``mlscale loadtest``).
SLO_FAILED = 3


def add_parser(sub: Any) -> None:
    """Add the ``plan`` command to the top-level subparsers."""
    p = sub.add_parser(
        "plan",
        help="fleet size (hosts x workers) for a target load, from a measured knee",
        description="Turn one host's measured capacity (the highest rate of a load-test report that met the "
        "SLO; run `mlscale loadtest URL --mode knee --json knee.json` against one host) into hosts and workers "
        "with headroom. With --check URL, load-test the fleet behind URL at the target rate and compare.",
    )
    p.add_argument("--target-rps", type=float, required=True, help="the load the fleet must carry (req/s)")
    p.add_argument("--slo", action="append", default=[], metavar="KEY=VALUE", help="e.g. p99=50ms (repeatable)")
    p.add_argument("--report", type=Path, metavar="FILE", help="a load-test JSON report of one host")
    p.add_argument("--capacity", type=float, metavar="RPS", help="one host's capacity, instead of --report")
    p.add_argument("--headroom", type=float, default=1.5, help="safety factor (default 1.5)")
    p.add_argument("--workers-measured", type=int, default=1, help="workers of the host the report measured")
    p.add_argument("--workers-per-host", type=int, help="workers per planned host (default: as measured)")
    p.add_argument("--spare", type=int, default=0, help="extra hosts to lose one without missing the SLO")
    p.add_argument("--memory-per-worker", type=float, metavar="MIB", help="measured resident memory per worker")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the plan (and the check) as JSON")
    p.add_argument("--check", metavar="URL", help="load-test the fleet behind URL (a balancer) at the target rate")
    p.add_argument("--check-duration", type=float, default=10.0, help="seconds of the check (default 10)")
    p.set_defaults(handler=_plan)


def _read_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such file", field="--report") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValidationError(f"{path}: not a load-test JSON report ({err})", field="--report") from None
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: not a load-test JSON report (expected an object)", field="--report")
    return data


def _plan(args: argparse.Namespace) -> int:
    report = None if args.report is None else _read_report(args.report)
    slo_items = list(args.slo)
    if report is not None and not slo_items:  # the SLO the report was measured against
        measured = report.get("slo", {})
        slo_items = [f"{p}={ms}ms" for p, ms in measured.get("latency_ms", {}).items()]
        if "max_error_rate" in measured:
            slo_items.append(f"errors={float(measured['max_error_rate'])}")
    slo = Slo.parse(slo_items)
    plan = plan_fleet(
        report,
        target_rps=args.target_rps,
        slo=slo,
        headroom=args.headroom,
        workers_measured=args.workers_measured,
        workers_per_host=args.workers_per_host,
        spare=args.spare,
        memory_per_worker_mib=args.memory_per_worker,
        capacity_rps=args.capacity,
    )
    print("fleet plan:")
    for line in plan.lines():
        print(f"  {line}")
    out: dict[str, Any] = {"plan": plan.as_dict()}
    status = 0
    if args.check:
        print(f"checking: {plan.target_rps:,.0f} req/s for {args.check_duration:g}s against {args.check}", flush=True)
        check = check_plan(args.check, plan, slo, args.check_duration)
        out["check"] = check
        print(
            f"measured: {check['achieved_rps']:,.0f} req/s, p99 {check['p99_ms']} ms, errors "
            f"{check['error_rate']:.2%} -> {'the plan holds' if check['passed'] else 'MISSED the SLO'}"
        )
        status = 0 if check["passed"] else SLO_FAILED
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"json: {args.json}", file=sys.stderr)
    return status
