"""Ingest benchmark: a synthetic CSV interaction log to a CSR matrix.

Candidates, each in its own process, on the same cached file (in the page cache).
Each first runs its code once on the file's first 1,000 rows, so one-time costs
(lazy imports: pyarrow imports pandas on its first ``pa.array(ndarray)``;
thread pools) stay outside the timer for both:

- ``mlscale``: ``ingest_matrix(InteractionReader(path), memory_budget=256M)``;
- ``pandas+scipy`` (baseline): ``pandas.read_csv`` (default C engine),
  ``pd.factorize`` of user and item, ``scipy.sparse.coo_matrix(...).tocsr()``
  and ``sum_duplicates()``.

Goals: mlscale reads at least 5x the baseline's rows/s, and its peak RSS is at
most 1.5 x the final CSR size + 256 MiB. Both must give the same matrix size
and non-zeros (a correctness guard).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from benchmarks._data import ensure_csv, ensure_warmup
from benchmarks._harness import (
    Summary,
    add_common_args,
    cpu_ratio,
    fmt_num,
    format_table,
    host_info,
    now_iso,
    print_profiles,
    rows_arg,
    rows_label,
    rss_now_kib,
    run_candidates,
    run_sizes,
    runs_text,
    stopwatch,
    summarise,
    warm_page_cache,
    write_result,
)

__all__ = ["add_parser", "baseline_candidate", "mlscale_candidate", "run"]

NAME = "ingest"
BASELINE = "pandas+scipy"
CANDIDATES = {
    BASELINE: "benchmarks.ingest:baseline_candidate",
    "mlscale": "benchmarks.ingest:mlscale_candidate",
}
SPEED_GOAL = 5.0
MEMORY_FACTOR = 1.5
MEMORY_SLACK_MIB = 256


# -- candidates (run in the child) ------------------------------------------------


def mlscale_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """mlscale's out-of-core ingest of the CSV into an InteractionMatrix."""
    import numpy as np

    from mlscale.apps.recommend.ingest import ingest_matrix
    from mlscale.apps.recommend.matrix import InteractionMatrix
    from mlscale.data import InteractionReader

    spill = Path(params["spill_dir"])
    spill.mkdir(parents=True, exist_ok=True)

    def work(path: str) -> InteractionMatrix:
        return ingest_matrix(InteractionReader(path), memory_budget=int(params["memory_budget"]), spill_dir=spill)

    work(params["warmup_path"])
    rss_before = rss_now_kib()
    with stopwatch() as lap:
        matrix = work(params["path"])
    return {
        "seconds": lap.seconds,
        "cpu_seconds": lap.cpu_seconds,
        "rss_before_kib": rss_before,
        "shape": list(matrix.shape),
        "nnz": matrix.nnz,
        "csr_bytes": matrix.nbytes,
        "data_sum": float(matrix.csr.data.sum(dtype=np.float64)),
    }


def baseline_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """The usual in-memory way: pandas.read_csv, factorize, scipy COO to CSR."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    def work(path: str) -> sp.csr_matrix:
        df = pd.read_csv(path)
        users, user_ids = pd.factorize(df["user"])
        items, item_ids = pd.factorize(df["item"])
        coo = sp.coo_matrix((df["rating"].to_numpy(), (users, items)), shape=(len(user_ids), len(item_ids)))
        csr = coo.tocsr()
        csr.sum_duplicates()
        return csr

    work(params["warmup_path"])
    rss_before = rss_now_kib()
    with stopwatch() as lap:
        csr = work(params["path"])
    return {
        "seconds": lap.seconds,
        "cpu_seconds": lap.cpu_seconds,
        "rss_before_kib": rss_before,
        "shape": [int(csr.shape[0]), int(csr.shape[1])],
        "nnz": int(csr.nnz),
        "csr_bytes": int(csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes),
        "data_sum": float(csr.data.sum(dtype=np.float64)),
    }


# -- the run (in the parent) ------------------------------------------------------


def add_parser(sub: Any) -> None:
    """Register ``ingest`` and its options."""
    p = sub.add_parser(NAME, help="CSV interactions to CSR: mlscale vs pandas + scipy")
    p.add_argument("--rows", type=rows_arg, action="append", help="rows (10M, 1e4...); repeatable")
    p.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    p.add_argument("--memory-budget", type=int, default=256 << 20, help="mlscale budget in bytes")
    add_common_args(p, CANDIDATES)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for every ``--rows``; returns the exit status."""
    return run_sizes(args, run_one)


def run_one(rows: int, args: argparse.Namespace) -> dict[str, Any]:
    """One workload size: run the candidates, print the table, write the JSON."""
    out: Path = args.out
    data_dir: Path = args.data_dir or out / "data"
    print(f"ingest benchmark, {rows:,} rows", file=sys.stderr)
    path = ensure_csv(rows, args.seed, data_dir)
    warm_page_cache(path)
    spill = out / "tmp" / f"ingest-{rows_label(rows)}"
    params = {
        "path": str(path),
        "warmup_path": str(ensure_warmup(path)),
        "memory_budget": args.memory_budget,
        "spill_dir": str(spill),
    }
    chosen = [(n, t) for n, t in CANDIDATES.items() if not args.only or n in args.only]
    profile_dir = out / "profiles" / f"{NAME}-{rows_label(rows)}" if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    host = host_info()
    try:
        runs = run_candidates(chosen, params, repeat=args.repeat, timeout=args.timeout, profile_dir=profile_dir)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    summaries = {name: summarise(name, outcomes) for name, outcomes in runs.items()}
    result = report(rows, path, args, summaries, host)
    result["runs"] = runs
    dest = write_result(out / f"{NAME}-{rows_label(rows)}.json", result)
    print(f"\nresults: {dest}")
    if profile_dir is not None:
        print_profiles(profile_dir)
    return result


def report(
    rows: int, path: Path, args: argparse.Namespace, summaries: dict[str, Summary], host: dict[str, Any]
) -> dict[str, Any]:
    """Print the table and return the result document (goals, checks, ratios)."""
    base = summaries.get(BASELINE)
    ours = summaries.get("mlscale")
    speed = {n: rows / s.seconds if s.seconds else None for n, s in summaries.items()}
    ours_speed, base_speed = speed.get("mlscale"), speed.get(BASELINE)
    ratio = ours_speed / base_speed if ours_speed and base_speed else None
    # CPU seconds barely move when other work shares the cores; wall seconds do.
    cpu_speed_ratio = cpu_ratio(base, ours) if ratio is not None else None
    goals: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    if ours and ours.seconds is not None:
        csr_mib = ours.metrics["csr_bytes"] / (1 << 20)
        limit = MEMORY_FACTOR * csr_mib + MEMORY_SLACK_MIB
        goals.append(
            {
                "goal": "mlscale peak RSS <= 1.5 x CSR size + 256 MiB",
                "target_mib": round(limit, 1),
                "value_mib": round(ours.peak_rss_mib, 1),
                "met": ours.peak_rss_mib <= limit,
            }
        )
    if base is not None and ours is not None:
        if ratio is not None:
            goals.append(
                {
                    "goal": "mlscale rows/s >= 5 x baseline",
                    "target": SPEED_GOAL,
                    "value": round(ratio, 2),
                    "met": ratio >= SPEED_GOAL,
                }
            )
        elif ours.seconds is not None and base.seconds is None:
            goals.append(
                {
                    "goal": "mlscale rows/s >= 5 x baseline",
                    "target": SPEED_GOAL,
                    "value": None,
                    "met": True,
                    "note": f"baseline did not finish ({base.status}: {base.error})",
                }
            )
        if ours.seconds is not None and base.seconds is not None:
            same = ours.metrics["shape"] == base.metrics["shape"] and ours.metrics["nnz"] == base.metrics["nnz"]
            checks = {
                "same_shape_and_nnz": same,
                "data_sum_rel_diff": abs(ours.metrics["data_sum"] - base.metrics["data_sum"])
                / max(abs(base.metrics["data_sum"]), 1e-12),
            }

    table = []
    for name, s in summaries.items():
        rel = "1.00" if name == BASELINE else fmt_num(ratio) + "x" if ratio else "-"
        table.append(
            [
                name,
                s.status if s.status == "ok" else f"{s.status}: {s.error}"[:60],
                fmt_num(s.seconds),
                runs_text(s),
                fmt_num(s.metrics.get("cpu_seconds")),
                fmt_num(speed[name], 0),
                fmt_num(s.peak_rss_mib, 0),
                fmt_num(s.metrics.get("nnz"), 0),
                rel,
            ]
        )
    print()
    print(f"ingest {rows:,} rows ({path.name}, {path.stat().st_size / (1 << 20):,.0f} MiB CSV)")
    headers = ["candidate", "status", "seconds", "runs", "CPU s", "rows/s", "peak RSS MiB", "nnz", "ratio"]
    print(format_table(headers, table))
    for g in goals:
        print(f"goal: {g['goal']}: {'MET' if g['met'] else 'NOT MET'} ({_goal_value(g)})")
    if cpu_speed_ratio is not None:
        print(f"info: speed ratio in CPU seconds (baseline / mlscale): {cpu_speed_ratio:.2f}x")
    if checks:
        print(f"check: same shape and nnz: {checks['same_shape_and_nnz']}")
    return {
        "benchmark": NAME,
        "date": now_iso(),
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
        "workload": {
            "rows": rows,
            "seed": args.seed,
            "file": path.name,
            "file_bytes": path.stat().st_size,
            "memory_budget": args.memory_budget,
            "repeat": args.repeat,
        },
        "host": host,
        "candidates": dict(summaries),
        "rows_per_second": speed,
        "speed_ratio": ratio,
        "cpu_speed_ratio": cpu_speed_ratio,
        "goals": goals,
        "checks": checks,
    }


def _goal_value(goal: dict[str, Any]) -> str:
    if "value_mib" in goal:
        return f"{goal['value_mib']:,.0f} MiB vs limit {goal['target_mib']:,.0f} MiB"
    if goal.get("value") is None:
        return str(goal.get("note", ""))
    return f"{goal['value']:.2f}x vs {goal['target']:.2f}x"
