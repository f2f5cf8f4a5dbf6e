"""Fleet benchmark: 1, 2 and 3 serving hosts behind nginx, one s3 registry; and a new host's cold start.

On the network-namespace fleet of :mod:`benchmarks.fleetlab` (root needed):

- **capacity**: for a fleet of n = 1, 2, 3 serving hosts (one worker each)
  behind the balancer, open-loop load (recommend requests, Poisson arrivals)
  from the load-generator host at every rate of a fixed ladder; capacity is
  the highest achieved rate with p99 <= 50 ms and errors <= 0.1%. A ladder,
  not the knee search: on a shared machine one noisy step at a low rate
  would end a knee search early. Sizes run interleaved for ``--rounds``
  rounds and the best round counts (neighbours only ever slow a run down).
  Scaling efficiency is capacity(n) / (n x capacity(1)).
- **cold start** of a new serving host: seconds from ``mlscale serve`` to a
  200 on ``/readyz``, and the bytes it fetched from the store, with an empty
  host cache and with the version already cached.

All hosts share this machine's cores: on a 2-core machine, three serving hosts,
nginx, the generator and the store compete for two cores, so the fleet cannot
scale linearly there; the efficiency measures the software's overhead only on
a machine with a core per host. Say so beside any figure recorded from it.

Run: ``python -m benchmarks fleet [--rates 200,400,...] [--rounds 2] [--duration 2]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._harness import format_table, host_info, now_iso, write_result
from benchmarks.fleetlab import FleetLab, netns_unavailable
from mlscale.loadtest import Slo

__all__ = ["add_parser", "run"]

RECOMMEND = "/v1/models/demo/recommend/3"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("fleet", help="capacity of 1-3 serving hosts behind nginx on an s3 registry; cold start")
    p.add_argument("--rates", default="200,400,800,1200,1600,2000,2400,3200", help="fixed rates tried (req/s)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best round counts (default 2)")
    p.add_argument("--duration", type=float, default=2.0, help="seconds per rate")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="where to write the JSON result")
    p.set_defaults(handler=run)


def _capacity(steps: list[dict[str, Any]], slo: Slo) -> float:
    """The highest achieved rate of a step that met the SLO, its generator keeping up (0 if none)."""
    limit = slo.latency_ms[99.0]
    good = [
        s["achieved"]
        for s in steps
        if s["p99_ms"] <= limit and s["error_rate"] <= slo.max_error_rate and not s["saturated"]
    ]
    return max(good, default=0.0)


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _cold_start(lab: FleetLab, *, cache: bool) -> dict[str, Any]:
    host = lab.hosts["srv3"]
    host.kill(signal.SIGKILL)
    cache_dir = lab.workdir / "srv3-cache"
    before = 0 if not cache else _dir_bytes(cache_dir)
    lab.start_serving(host, cache=cache)
    ready = lab.wait_ready([host])["srv3"]
    return {"cache": cache, "ready_s": ready, "bytes_fetched": _dir_bytes(cache_dir) - before}


def run(args: argparse.Namespace) -> int:
    reason = netns_unavailable()
    if reason:
        print(f"fleet benchmark skipped: {reason}")
        return 0
    slo = Slo.parse(["p99=50ms", "errors=0.1%"])
    work = Path(tempfile.mkdtemp(prefix="mlscale-bench-fleet-"))
    result: dict[str, Any] = {
        "benchmark": "fleet",
        "date": now_iso(),
        "host": host_info(),
        "cores": os.cpu_count(),
        "slo": slo.describe(),
        "note": "all hosts share this machine's cores: no linear scaling is possible on fewer cores than hosts",
    }
    with FleetLab(work, serving_hosts=3) as lab:
        lab.promote(lab.publish(seed=0))
        for host in lab.serving():
            lab.start_serving(host)
        lab.wait_ready(lab.serving())
        rates = [float(r) for r in args.rates.split(",")]
        runs: dict[int, list[list[dict[str, Any]]]] = {1: [], 2: [], 3: []}
        for round_ in range(args.rounds):  # interleaved rounds: neighbours' load hits every size alike
            for n in (1, 2, 3):
                url = lab.start_balancer(lab.serving()[:n])
                steps = lab.ladder(url + RECOMMEND, rates, duration=args.duration)
                runs[n].append(steps)
                print(f"round {round_ + 1}, {n} host(s): {_capacity(steps, slo):,.0f} req/s", flush=True)
        sizes = []
        for n, ladders in runs.items():
            best = max(_capacity(steps, slo) for steps in ladders)
            saturated = any(st["saturated"] for steps in ladders for st in steps)
            sizes.append({"hosts": n, "capacity_rps": best, "generator_saturated": saturated, "runs": ladders})
        one = sizes[0]["capacity_rps"] or float("nan")
        for size in sizes:
            size["efficiency"] = size["capacity_rps"] / (size["hosts"] * one)
        result["fleet"] = sizes
        result["cold_start"] = [_cold_start(lab, cache=False), _cold_start(lab, cache=True)]
    path = write_result(args.out / "fleet.json", result)
    rows = [
        [str(s["hosts"]), f"{s['capacity_rps']:,.0f}", f"{s['efficiency']:.2f}", "yes" * s["generator_saturated"]]
        for s in sizes
    ]
    print(format_table(["serving hosts", "req/s at p99<=50ms", "efficiency", "generator saturated"], rows))
    cold = [
        ["warm" if c["cache"] else "empty", f"{c['ready_s']:.2f}", f"{c['bytes_fetched']:,}"]
        for c in result["cold_start"]
    ]
    print(format_table(["host cache", "seconds to ready", "bytes fetched"], cold))
    print(f"({os.cpu_count()} cores shared by every host: see the note in {path})")
    return 0
