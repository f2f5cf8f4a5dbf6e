"""Ingest benchmark: a synthetic CSV interaction log to a CSR matrix, against today's baselines.

Candidates, each in its own process, on the same cached file (in the page cache).
Each first runs its code once on the file's first 1,000 rows, so one-time costs
(lazy imports, thread pools) stay outside the timer for all:

- ``mlscale``: ``ingest_matrix(InteractionReader(path), memory_budget=256M)``;
- ``pandas+scipy``: the installed pandas (3.x: the ``bench`` extra): ``pandas.read_csv``
  (default C engine), ``pd.factorize`` of user and item, ``scipy.sparse.coo_matrix(...).tocsr()``
  and ``sum_duplicates()``;
- ``pandas2+scipy``: the same code under another interpreter holding pandas 2.x
  (``--pandas2-python PATH``; left out without it);
- ``polars+scipy``: ``polars.read_csv`` of the three columns, dense ids with
  ``rank("dense")``, the ids with ``unique().sort()``, then the same scipy CSR;
- ``floor-polars`` / ``floor-pyarrow``: ``read_csv`` of the three columns and
  nothing else (the parse floor: no ids, no matrix).

A candidate whose library is missing is recorded as ``skipped``. Goals: mlscale
takes at most 1.2x the polars parse floor's wall time, is faster than both
pandas and polars doing the same job, and its peak RSS is at most 1.5 x the
final CSR size + 256 MiB. The jobs must give the same matrix size, non-zeros
and sum of values (a correctness guard).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks._data import ensure_csv, ensure_warmup
from benchmarks._harness import (
    Summary,
    add_common_args,
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

__all__ = [
    "add_parser",
    "baseline_candidate",
    "floor_polars_candidate",
    "floor_pyarrow_candidate",
    "mlscale_candidate",
    "polars_candidate",
    "run",
]

NAME = "ingest"
BASELINE = "pandas+scipy"
PANDAS2 = "pandas2+scipy"
POLARS = "polars+scipy"
FLOOR = "floor-polars"
CANDIDATES = {
    "mlscale": "benchmarks.ingest:mlscale_candidate",
    BASELINE: "benchmarks.ingest:baseline_candidate",
    PANDAS2: "benchmarks.ingest:baseline_candidate",
    POLARS: "benchmarks.ingest:polars_candidate",
    FLOOR: "benchmarks.ingest:floor_polars_candidate",
    "floor-pyarrow": "benchmarks.ingest:floor_pyarrow_candidate",
}
#: The candidates that build the matrix (the others only parse).
JOBS = ("mlscale", BASELINE, PANDAS2, POLARS)
FLOOR_FACTOR = 1.2
MEMORY_FACTOR = 1.5
MEMORY_SLACK_MIB = 256
_COLUMNS = ["user", "item", "rating"]


# -- candidates (run in the child) ------------------------------------------------


def _timed(params: dict[str, Any], work: Any, describe: Any) -> dict[str, Any]:
    """Warm up on the small file, time ``work`` on the big one, describe what it returned."""
    work(params["warmup_path"])
    rss_before = rss_now_kib()
    with stopwatch() as lap:
        out = work(params["path"])
    return {"seconds": lap.seconds, "cpu_seconds": lap.cpu_seconds, "rss_before_kib": rss_before, **describe(out)}


def _describe_csr(csr: Any) -> dict[str, Any]:
    import numpy as np

    return {
        "shape": [int(csr.shape[0]), int(csr.shape[1])],
        "nnz": int(csr.nnz),
        "csr_bytes": int(csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes),
        "data_sum": float(csr.data.sum(dtype=np.float64)),
    }


def _skip_without(module: str) -> dict[str, Any] | None:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return {"status": "skipped", "seconds": None, "error": f"{module} is not installed"}
    return None


def mlscale_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """mlscale's out-of-core ingest of the CSV into an InteractionMatrix."""
    from mlscale.apps.recommend.ingest import ingest_matrix
    from mlscale.data import InteractionReader

    spill = Path(params["spill_dir"])
    spill.mkdir(parents=True, exist_ok=True)

    def work(path: str) -> Any:
        return ingest_matrix(InteractionReader(path), memory_budget=int(params["memory_budget"]), spill_dir=spill)

    return _timed(params, work, lambda m: {**_describe_csr(m.csr), "csr_bytes": m.nbytes})


def baseline_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """The usual in-memory way: pandas.read_csv, factorize, scipy COO to CSR."""
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

    return {**_timed(params, work, _describe_csr), "version": pd.__version__}


def polars_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """The same job in polars: read the three columns, dense ids by rank, scipy CSR."""
    skipped = _skip_without("polars")
    if skipped:
        return skipped
    import polars as pl
    import scipy.sparse as sp

    def work(path: str) -> sp.csr_matrix:
        df = pl.read_csv(path, columns=_COLUMNS, schema_overrides={"rating": pl.Float32})
        user_ids = df["user"].unique().sort()
        item_ids = df["item"].unique().sort()
        dense = df.select(
            pl.col("user").rank("dense").cast(pl.Int32) - 1,
            pl.col("item").rank("dense").cast(pl.Int32) - 1,
            pl.col("rating"),
        )
        u, i, r = (dense[c].to_numpy() for c in _COLUMNS)
        coo = sp.coo_matrix((r, (u, i)), shape=(len(user_ids), len(item_ids)))
        csr = coo.tocsr()
        csr.sum_duplicates()
        return csr

    return {**_timed(params, work, _describe_csr), "version": pl.__version__}


def floor_polars_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """The parse floor: polars reads the three columns (typed), nothing else."""
    skipped = _skip_without("polars")
    if skipped:
        return skipped
    import polars as pl

    def work(path: str) -> int:
        schema = {"user": pl.Int64, "item": pl.Int64, "rating": pl.Float32}
        return int(pl.read_csv(path, columns=_COLUMNS, schema_overrides=schema).height)

    return {**_timed(params, work, lambda n: {"rows": n}), "version": pl.__version__}


def floor_pyarrow_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """The parse floor with Arrow: ``pyarrow.csv.read_csv`` of the three columns (typed), nothing else."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {"user": pa.int64(), "item": pa.int64(), "rating": pa.float32()}

    def work(path: str) -> int:
        convert = pacsv.ConvertOptions(include_columns=_COLUMNS, column_types=types)
        return int(pacsv.read_csv(path, convert_options=convert).num_rows)

    return {**_timed(params, work, lambda n: {"rows": n}), "version": pa.__version__}


# -- the run (in the parent) ------------------------------------------------------


def add_parser(sub: Any) -> None:
    """Register ``ingest`` and its options."""
    p = sub.add_parser(NAME, help="CSV interactions to CSR: mlscale vs pandas, polars and the parse floor")
    p.add_argument("--rows", type=rows_arg, action="append", help="rows (10M, 1e4...); repeatable")
    p.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    p.add_argument("--memory-budget", type=int, default=256 << 20, help="mlscale budget in bytes")
    p.add_argument(
        "--pandas2-python",
        default=None,
        help="an interpreter with pandas 2.x and scipy: adds the pandas2+scipy row (left out without it)",
    )
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
    chosen = [
        (n, t)
        for n, t in CANDIDATES.items()
        if (not args.only or n in args.only) and (n != PANDAS2 or args.pandas2_python)
    ]
    pythons = {PANDAS2: args.pandas2_python} if args.pandas2_python else {}
    profile_dir = out / "profiles" / f"{NAME}-{rows_label(rows)}" if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    host = host_info()
    try:
        runs = run_candidates(
            chosen, params, repeat=args.repeat, timeout=args.timeout, profile_dir=profile_dir, pythons=pythons
        )
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    summaries = {name: summarise(name, outcomes) for name, outcomes in runs.items()}
    loads = [o.loadavg_1m for outcomes in runs.values() for o in outcomes]
    result = report(rows, path, args, summaries, host, loads)
    result["runs"] = runs
    dest = write_result(out / f"{NAME}-{rows_label(rows)}.json", result)
    print(f"\nresults: {dest}")
    if profile_dir is not None:
        print_profiles(profile_dir)
    return result


def _goals(summaries: dict[str, Summary]) -> list[dict[str, Any]]:
    ours = summaries.get("mlscale")
    if ours is None or ours.seconds is None:
        return []
    goals: list[dict[str, Any]] = []
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
    floor = summaries.get(FLOOR)
    if floor is not None and floor.seconds:
        ratio = ours.seconds / floor.seconds
        goals.append(
            {
                "goal": f"mlscale wall <= {FLOOR_FACTOR} x the parse floor ({FLOOR})",
                "target": FLOOR_FACTOR,
                "value": round(ratio, 2),
                "met": ratio <= FLOOR_FACTOR,
                "cpu_value": _cpu_over(ours, floor),
            }
        )
    for other in (BASELINE, POLARS):
        base = summaries.get(other)
        if base is None or base.status == "skipped":
            continue
        goal = f"mlscale faster than {other}"
        if base.seconds is None:
            goals.append({"goal": goal, "value": None, "met": True, "note": f"{other}: {base.status} {base.error}"})
            continue
        speedup = base.seconds / ours.seconds
        goals.append(
            {
                "goal": goal,
                "target": 1.0,
                "value": round(speedup, 2),
                "met": speedup > 1.0,
                "cpu_value": _cpu_over(base, ours),
            }
        )
    return goals


def _cpu_over(a: Summary, b: Summary) -> float | None:
    x, y = a.metrics.get("cpu_seconds"), b.metrics.get("cpu_seconds")
    return round(float(x) / float(y), 2) if x and y else None


def _checks(summaries: dict[str, Summary]) -> dict[str, Any]:
    ours = summaries.get("mlscale")
    if ours is None or ours.seconds is None:
        return {}
    checks: dict[str, Any] = {}
    for other in JOBS[1:]:
        base = summaries.get(other)
        if base is None or base.seconds is None:
            continue
        same = ours.metrics["shape"] == base.metrics["shape"] and ours.metrics["nnz"] == base.metrics["nnz"]
        rel = abs(ours.metrics["data_sum"] - base.metrics["data_sum"]) / max(abs(base.metrics["data_sum"]), 1e-12)
        checks[other] = {"same_shape_and_nnz": same, "data_sum_rel_diff": rel}
    checks["same_shape_and_nnz"] = all(c["same_shape_and_nnz"] for c in checks.values())
    return checks


def report(
    rows: int,
    path: Path,
    args: argparse.Namespace,
    summaries: dict[str, Summary],
    host: dict[str, Any],
    loads: list[float],
) -> dict[str, Any]:
    """Print the table and return the result document (goals, checks, ratios)."""
    ours = summaries.get("mlscale")
    floor = summaries.get(FLOOR)
    speed = {n: rows / s.seconds if s.seconds else None for n, s in summaries.items()}
    goals = _goals(summaries)
    checks = _checks(summaries)
    table = []
    for name, s in summaries.items():
        vs_ours = fmt_num(s.seconds / ours.seconds) + "x" if s.seconds and ours and ours.seconds else "-"
        vs_floor = fmt_num(s.seconds / floor.seconds) + "x" if s.seconds and floor and floor.seconds else "-"
        version = s.metrics.get("version")
        table.append(
            [
                f"{name} {version}" if version else name,
                s.status if s.status == "ok" else f"{s.status}: {s.error}"[:60],
                fmt_num(s.seconds),
                runs_text(s),
                fmt_num(s.metrics.get("cpu_seconds")),
                fmt_num(speed[name], 0),
                fmt_num(s.peak_rss_mib, 0),
                fmt_num(s.metrics.get("nnz"), 0),
                vs_ours,
                vs_floor,
            ]
        )
    print()
    print(f"ingest {rows:,} rows ({path.name}, {path.stat().st_size / (1 << 20):,.0f} MiB CSV)")
    headers = [
        "candidate",
        "status",
        "seconds",
        "runs",
        "CPU s",
        "rows/s",
        "peak RSS MiB",
        "nnz",
        "/ mlscale",
        "/ floor",
    ]
    print(format_table(headers, table))
    if loads:
        print(
            f"load average (1 min) at the runs' starts: {min(loads):.1f}-{max(loads):.1f},"
            f" median {statistics.median(loads):.1f} (2 cores shared with other jobs: timings are noisy)"
        )
    for g in goals:
        print(f"goal: {g['goal']}: {'MET' if g['met'] else 'NOT MET'} ({_goal_value(g)})")
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
        "loadavg_1m": loads,
        "candidates": dict(summaries),
        "rows_per_second": speed,
        "speed_ratio": summaries[BASELINE].seconds / ours.seconds
        if ours and ours.seconds and BASELINE in summaries and summaries[BASELINE].seconds
        else None,
        "goals": goals,
        "checks": checks,
    }


def _goal_value(goal: dict[str, Any]) -> str:
    if "value_mib" in goal:
        return f"{goal['value_mib']:,.0f} MiB vs limit {goal['target_mib']:,.0f} MiB"
    if goal.get("value") is None:
        return str(goal.get("note", ""))
    cpu = f"; in CPU seconds {goal['cpu_value']:.2f}x" if goal.get("cpu_value") else ""
    return f"{goal['value']:.2f}x vs {goal['target']:.2f}x{cpu}"
