"""Fleet benchmark: 1, 2 and 3 serving hosts behind nginx, one s3 registry; and a new host's cold start.

On the network-namespace fleet of :mod:`benchmarks.fleetlab` (root needed):

- **capacity**: for a fleet of n = 1, 2, 3 serving hosts (one worker each)
  behind the balancer, an open-loop knee search (recommend requests, Poisson
  arrivals) from the load-generator host; capacity is the highest achieved
  rate with p99 <= 50 ms and errors <= 0.1%; scaling efficiency is
  capacity(n) / (n x capacity(1)).
- **cold start** of a new serving host: seconds from ``mlscale serve`` to a
  200 on ``/readyz``, and the bytes it fetched from the store, with an empty
  host cache and with the version already cached.

All hosts share this machine's cores: on a 2-core machine, three serving hosts,
nginx, the generator and the store compete for two cores, so the fleet cannot
scale linearly there; the efficiency measures the software's overhead only on
a machine with a core per host. Say so beside any figure recorded from it.

Run: ``python -m benchmarks fleet [--max-rate 1600] [--duration 2]``.
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
from mlscale.errors import ValidationError
from mlscale.loadtest import Slo
from mlscale.loadtest.plan import capacity_at

__all__ = ["add_parser", "run"]

RECOMMEND = "/v1/models/demo/recommend/3"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("fleet", help="capacity of 1-3 serving hosts behind nginx on an s3 registry; cold start")
    p.add_argument("--start-rate", type=float, default=50.0, help="first rate of each knee search (req/s)")
    p.add_argument("--max-rate", type=float, default=1600.0, help="highest rate a knee search tries")
    p.add_argument("--duration", type=float, default=2.0, help="seconds per knee step")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="where to write the JSON result")
    p.set_defaults(handler=run)


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
        sizes = []
        for n in (1, 2, 3):
            url = lab.start_balancer(lab.serving()[:n])
            knee = lab.knee(url + RECOMMEND, start=args.start_rate, max_rate=args.max_rate, duration=args.duration)
            try:
                capacity = capacity_at(knee, slo)[0]
            except ValidationError:  # no step met the SLO
                capacity = 0.0
            saturated = any(s["generator"]["saturated"] for s in knee["steps"])
            steps = [
                {"offered": st["offered_rps"], "achieved": st["achieved_rps"], "p99_ms": st["latency_ms"]["p99"]}
                for st in knee["steps"]
            ]
            sizes.append({"hosts": n, "capacity_rps": capacity, "generator_saturated": saturated, "steps": steps})
            print(f"{n} host(s): {capacity:,.0f} req/s at {slo.describe()}", flush=True)
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
