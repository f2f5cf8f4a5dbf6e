"""Load generator benchmark: what mlscale's open-loop generator sustains on one core, beside wrk.

nginx serves a static JSON file pinned to CPU 1; the load comes from CPU 0:

- ``wrk`` (closed loop, one thread, 64 connections): the requests/s a C tool
  reaches on that core, and its latency;
- ``mlscale``: the open-loop generator with one process pinned to CPU 0 at
  rising constant rates. At each rate: the rate it actually sent and got
  answered, the generator's CPU, its send lag (how late requests left against
  their schedule) and the latency it measured. The sustained rate is the
  highest one sent within 1% of the schedule with the send lag's p99 under
  1 ms (the latency the generator itself adds).

Goal: at least 10,000 requests/s per generator core with the added latency
below 1 ms at p99.

Run: ``python -m benchmarks loadtest [--rates 5000,10000,...] [--duration 10]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._harness import format_table, host_info, now_iso, write_result
from benchmarks.serve import _NGINX, _free_port, _need_tools, _process, _wait_ready

__all__ = ["add_parser", "main", "run"]

_CHILD = r"""
import json, sys
from mlscale.loadtest import PlainScenario, StepSpec
from mlscale.loadtest.generator import LoadGenerator
url, rates, duration = sys.argv[1], [float(r) for r in sys.argv[2].split(",")], float(sys.argv[3])
out = []
with LoadGenerator(url, PlainScenario().requests(None, 1), processes=1) as gen:
    for rate in rates:
        s = gen.run(StepSpec(rate=rate, duration=duration, warmup=1.0, arrival="constant", timeout=2.0,
                             max_connections=256))
        out.append({"rate": rate, "sent_rps": s.sent_rate, "achieved_rps": s.achieved_rate, "errors": s.errors,
                    "cpu": s.cpu, "send_lag_p99_ms": s.percentile_ms(99, "send_lag"),
                    "latency_p50_ms": s.percentile_ms(50), "latency_p99_ms": s.percentile_ms(99),
                    "service_p99_ms": s.percentile_ms(99, "service")})
        print(json.dumps(out[-1]), file=sys.stderr, flush=True)
print(json.dumps(out))
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("loadtest", help="open-loop generator throughput on one core vs wrk, against nginx")
    p.add_argument("--rates", default="5000,10000,12500,15000,20000", help="constant rates to try (req/s)")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per rate")
    p.add_argument("--out", type=Path, default=Path("bench-out"), help="where to write the JSON result")
    p.set_defaults(handler=run)


def _wrk_plain(url: str, duration: int) -> dict[str, Any]:
    import re

    from benchmarks.serve import _ms

    cmd = ["taskset", "-c", "0", "wrk", "-t1", "-c64", f"-d{duration}s", "--latency", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.MULTILINE)}
    return {"rps": rps, "latency_ms": pct}


def run(args: argparse.Namespace) -> int:
    _need_tools()
    work = Path(tempfile.mkdtemp(prefix="mlscale-bench-loadtest-"))
    (work / "www").mkdir()
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / name).mkdir()
    answer = json.dumps({"results": [{"user": 1, "items": [{"item": i, "score": 0.5} for i in range(10)]}]})
    (work / "www" / "answer.json").write_text(answer)
    for path in (work, work / "www", work / "www" / "answer.json"):
        path.chmod(0o755)
    port = _free_port()
    (work / "nginx.conf").write_text(_NGINX.format(dir=work, port=port))
    url = f"http://127.0.0.1:{port}/answer.json"
    result: dict[str, Any] = {
        "benchmark": "loadtest",
        "date": now_iso(),
        "host": host_info(),
        "body_bytes": len(answer),
    }
    with _process(
        ["nginx", "-c", str(work / "nginx.conf"), "-e", str(work / "nginx-error.log")], work / "nginx.log", cpu="1"
    ):
        _wait_ready(url, work / "nginx.log")
        _wrk_plain(url, 2)  # warm up
        result["wrk"] = _wrk_plain(url, int(args.duration))
        child = subprocess.run(
            ["taskset", "-c", "0", sys.executable, "-c", _CHILD, url, args.rates, str(args.duration)],
            capture_output=True,
            text=True,
            check=True,
        )
        steps = json.loads(child.stdout.strip().splitlines()[-1])
    result["mlscale"] = steps
    sustained = [
        s for s in steps if s["sent_rps"] >= 0.99 * s["rate"] and s["send_lag_p99_ms"] < 1.0 and not s["errors"]
    ]
    best = max(sustained, key=lambda s: s["rate"]) if sustained else None
    result["sustained_rps"] = best["sent_rps"] if best else 0.0
    result["goal_met"] = bool(best and best["sent_rps"] >= 10_000)
    path = write_result(args.out / "loadtest.json", result)
    rows = [
        [
            "wrk (closed loop, 64 conns)",
            f"{result['wrk']['rps']:,.0f}",
            "-",
            "-",
            f"{result['wrk']['latency_ms'].get('99', float('nan')):.2f}",
            "-",
        ]
    ]
    for s in steps:
        rows.append(
            [
                f"mlscale open loop @ {s['rate']:,.0f}/s",
                f"{s['sent_rps']:,.0f}",
                f"{s['achieved_rps']:,.0f}",
                f"{max(s['cpu']):.0%}",
                f"{s['latency_p99_ms']:.2f}",
                f"{s['send_lag_p99_ms']:.3f}",
            ]
        )
    print(format_table(["candidate (1 core)", "sent/s", "answered/s", "gen CPU", "p99 ms", "send lag p99 ms"], rows))
    print(
        f"sustained on one core with send lag p99 < 1 ms: {result['sustained_rps']:,.0f} req/s "
        f"(goal >= 10,000: {'met' if result['goal_met'] else 'NOT met'}); wrk closed loop: "
        f"{result['wrk']['rps']:,.0f} req/s"
    )
    print(f"result: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadtest")
    sub = parser.add_subparsers(required=True)
    add_parser(sub)
    args = parser.parse_args(["loadtest", *(argv or sys.argv[1:])])
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
