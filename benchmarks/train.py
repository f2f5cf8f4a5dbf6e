"""Training benchmark: ALS on the synthetic log, mlscale vs calling ``implicit`` directly.

The matrix is ingested once from the cached synthetic CSV (mlscale's ingest, in
a child process) and saved as ``.npy`` files; each candidate then loads that
same matrix in its own process, so its peak RSS is the fit's, not the
ingest's. Both time the same work: BM25 weighting (K1=100, B=0.8) and
``implicit``'s CPU ALS (64 factors, regularization 1, alpha 1, 2 threads,
random_state 0, BLAS limited to one thread). Imports happen before the timer
in both.

- ``mlscale``: ``ImplicitRecommender(factors=64, iterations=N, threads=2).fit(matrix)``,
  then ``recommend(users, k=10)`` over every user in chunks of 10k;
- ``implicit`` (baseline): ``bm25_weight(csr.T.tocsr()).T.tocsr()`` as float32, the confidence
  ``1 + alpha * weight`` stored in it (alpha 1), ``AlternatingLeastSquares(...).fit(weighted)``, then a plain
  per-user loop of ``model.recommend(u, csr[u], N=10)`` timed on a seeded sample of users and extrapolated
  to all of them.

Goal: mlscale's training time is at most 1.10 x the baseline's. Both fits
must give the same item factors (a correctness guard: same input, same seed).
Memory is reported twice: the peak while fitting (``VmHWM`` read right after
the fit) and the whole child's peak from :func:`os.wait4` (fit + recommend).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from benchmarks._data import ensure_csv
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
    rss_peak_kib,
    run_candidate,
    run_candidates,
    run_sizes,
    runs_text,
    stopwatch,
    summarise,
    write_result,
)

__all__ = ["add_parser", "baseline_candidate", "mlscale_candidate", "prepare_matrix", "run"]

NAME = "train"
BASELINE = "implicit"
CANDIDATES = {
    BASELINE: "benchmarks.train:baseline_candidate",
    "mlscale": "benchmarks.train:mlscale_candidate",
}
OVERHEAD_GOAL = 1.10
FACTORS = 64
THREADS = 2
K = 10


# -- children -----------------------------------------------------------------------


def prepare_matrix(params: dict[str, Any]) -> dict[str, Any]:
    """Ingest the CSV with mlscale and save the matrix as .npy files (atomically)."""
    from mlscale.apps.recommend.ingest import ingest_matrix
    from mlscale.data import InteractionReader

    dest = Path(params["dest"])
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    with stopwatch() as lap:
        matrix = ingest_matrix(InteractionReader(params["path"]), spill_dir=params["spill_dir"])
        matrix.save(tmp)
    tmp.rename(dest)
    return {"seconds": lap.seconds, "shape": list(matrix.shape), "nnz": matrix.nnz}


def _factor_checksum(factors: Any) -> float:
    import numpy as np

    return float(np.abs(np.asarray(factors, dtype=np.float64)).sum())


def mlscale_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """ImplicitRecommender.fit, then batched recommend over all users."""
    import implicit.cpu.als
    import implicit.cpu.topk
    import implicit.nearest_neighbours  # noqa: F401  (imported before the timer, as in the baseline)

    from mlscale.apps.recommend import ImplicitRecommender
    from mlscale.apps.recommend.matrix import InteractionMatrix

    matrix = InteractionMatrix.load(params["matrix"])
    iterations = int(params["iterations"])
    rss_before = rss_now_kib()
    with stopwatch() as fit:
        model = ImplicitRecommender(factors=FACTORS, iterations=iterations, threads=THREADS).fit(matrix)
    peak_after_fit = rss_peak_kib()
    all_users = matrix.user_ids
    limit = int(params.get("recommend_users") or all_users.size)
    users = all_users[: min(limit, all_users.size)]
    chunk = int(params["chunk"])
    with stopwatch() as rec:
        for start in range(0, users.size, chunk):
            model.recommend(users[start : start + chunk], k=K)
    return {
        "seconds": fit.seconds,
        "cpu_seconds": fit.cpu_seconds,
        "seconds_per_iteration": fit.seconds / iterations,
        "rss_before_kib": rss_before,
        "peak_rss_fit_kib": peak_after_fit,
        "shape": list(matrix.shape),
        "nnz": matrix.nnz,
        "item_factor_checksum": _factor_checksum(model.item_factors_),
        "recommend_users": int(users.size),
        "recommend_seconds": rec.seconds,
        "recommend_users_per_second": users.size / rec.seconds,
        "recommend_method": f"batched recommend(), chunks of {chunk:,} users",
        "recommend_extrapolated": users.size < all_users.size,
        "recommend_all_users_seconds_extrapolated": rec.seconds * all_users.size / users.size,
    }


def baseline_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """The same work with implicit's own API, then a per-user recommend loop."""
    import numpy as np
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import bm25_weight
    from threadpoolctl import threadpool_limits

    from mlscale.apps.recommend.matrix import InteractionMatrix

    csr = InteractionMatrix.load(params["matrix"]).csr
    iterations = int(params["iterations"])
    rss_before = rss_now_kib()
    with stopwatch() as fit:
        weighted = bm25_weight(csr.T.tocsr(), K1=100, B=0.8).T.tocsr().astype(np.float32)
        # The documented confidence C = 1 + alpha * weight (alpha 1): implicit takes the stored value as
        # the whole confidence, so the same model is these values with implicit's alpha at 1, as mlscale does.
        weighted.data = (1.0 + weighted.data).astype(np.float32)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=FACTORS,
                regularization=1.0,
                alpha=1.0,
                iterations=iterations,
                num_threads=THREADS,
                random_state=0,
            )
            model.fit(weighted, show_progress=False)
    peak_after_fit = rss_peak_kib()
    n_users = int(csr.shape[0])
    rng = np.random.default_rng(int(params["seed"]))
    sample = rng.choice(n_users, size=min(int(params["loop_sample"]), n_users), replace=False)
    with stopwatch() as rec:
        for u in sample.tolist():
            model.recommend(u, csr[u], N=K)
    return {
        "seconds": fit.seconds,
        "cpu_seconds": fit.cpu_seconds,
        "seconds_per_iteration": fit.seconds / iterations,
        "rss_before_kib": rss_before,
        "peak_rss_fit_kib": peak_after_fit,
        "shape": [n_users, int(csr.shape[1])],
        "nnz": int(csr.nnz),
        "item_factor_checksum": _factor_checksum(model.item_factors),
        "recommend_users": int(sample.size),
        "recommend_seconds": rec.seconds,
        "recommend_users_per_second": sample.size / rec.seconds,
        "recommend_method": "per-user model.recommend() loop",
        "recommend_extrapolated": sample.size < n_users,
        "recommend_all_users_seconds_extrapolated": rec.seconds * n_users / sample.size,
    }


# -- the run ------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """Register ``train`` and its options."""
    p = sub.add_parser(NAME, help="ALS training and recommend-all: mlscale vs implicit directly")
    p.add_argument("--rows", type=rows_arg, action="append", help="rows (10M, 1e4...); repeatable")
    p.add_argument("--iterations", type=int, default=3, help="ALS iterations (default 3)")
    p.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    p.add_argument("--chunk", type=int, default=10_000, help="users per mlscale recommend call")
    p.add_argument("--loop-sample", type=int, default=2000, help="users timed in the per-user loop")
    p.add_argument("--recommend-users", type=int, default=0, help="cap the users mlscale recommends (0: all)")
    add_common_args(p, CANDIDATES)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for every ``--rows``; returns the exit status."""
    return run_sizes(args, run_one)


def ensure_matrix(rows: int, args: argparse.Namespace) -> Path:
    """The saved matrix of the workload, built in a child process on first use."""
    out: Path = args.out
    data_dir: Path = args.data_dir or out / "data"
    dest = data_dir / f"matrix-{rows}-seed{args.seed}"
    if (dest / "matrix.json").exists():
        return dest
    csv = ensure_csv(rows, args.seed, data_dir)
    spill = out / "tmp" / f"train-{rows_label(rows)}"
    print(f"  building the matrix -> {dest}", file=sys.stderr, flush=True)
    try:
        done = run_candidate(
            "prepare",
            "benchmarks.train:prepare_matrix",
            {"path": str(csv), "dest": str(dest), "spill_dir": str(spill)},
            timeout=args.timeout,
        )
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    if not done.ok:
        raise SystemExit(f"could not build the matrix: {done.status}: {done.error}")
    return dest


def run_one(rows: int, args: argparse.Namespace) -> dict[str, Any]:
    """One workload size: run the candidates, print the table, write the JSON."""
    print(f"train benchmark, {rows:,} rows, {args.iterations} iterations", file=sys.stderr)
    matrix = ensure_matrix(rows, args)
    params = {
        "matrix": str(matrix),
        "iterations": args.iterations,
        "chunk": args.chunk,
        "loop_sample": args.loop_sample,
        "recommend_users": args.recommend_users,
        "seed": args.seed,
    }
    chosen = [(n, t) for n, t in CANDIDATES.items() if not args.only or n in args.only]
    host = host_info()
    profile_dir = args.out / "profiles" / f"{NAME}-{rows_label(rows)}" if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    runs = run_candidates(chosen, params, repeat=args.repeat, timeout=args.timeout, profile_dir=profile_dir)
    summaries = {name: summarise(name, outcomes) for name, outcomes in runs.items()}
    result = report(rows, args, summaries, host)
    result["runs"] = runs
    dest = write_result(args.out / f"{NAME}-{rows_label(rows)}.json", result)
    print(f"\nresults: {dest}")
    if profile_dir is not None:
        print_profiles(profile_dir)
    return result


def report(rows: int, args: argparse.Namespace, summaries: dict[str, Summary], host: dict[str, Any]) -> dict[str, Any]:
    """Print the tables and return the result document."""
    base = summaries.get(BASELINE)
    ours = summaries.get("mlscale")
    ratio = (
        ours.seconds / base.seconds if ours is not None and base is not None and ours.seconds and base.seconds else None
    )
    rec_ratio = (
        ours.metrics["recommend_users_per_second"] / base.metrics["recommend_users_per_second"]
        if ratio is not None and ours is not None and base is not None
        else None
    )
    # CPU seconds barely move when other work shares the cores; wall seconds do.
    cpu_time_ratio = cpu_ratio(ours, base) if ratio is not None else None
    goals: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    if ratio is not None:
        goals.append(
            {
                "goal": "mlscale training time <= 1.10 x implicit directly",
                "target": OVERHEAD_GOAL,
                "value": round(ratio, 3),
                "met": ratio <= OVERHEAD_GOAL,
            }
        )
    elif ours is not None and base is not None and ours.seconds is not None:
        goals.append(
            {
                "goal": "mlscale training time <= 1.10 x implicit directly",
                "target": OVERHEAD_GOAL,
                "value": None,
                "met": True,
                "note": f"baseline did not finish ({base.status}: {base.error})",
            }
        )
    if ours is not None and base is not None and ours.seconds and base.seconds:
        a, b = ours.metrics["item_factor_checksum"], base.metrics["item_factor_checksum"]
        checks = {
            "same_nnz": ours.metrics["nnz"] == base.metrics["nnz"],
            "item_factor_checksum_rel_diff": abs(a - b) / max(abs(b), 1e-12),
        }

    fit_rows = []
    rec_rows = []
    for name, s in summaries.items():
        fit_rows.append(
            [
                name,
                s.status if s.status == "ok" else f"{s.status}: {s.error}"[:60],
                fmt_num(s.seconds),
                runs_text(s),
                fmt_num(s.metrics.get("cpu_seconds")),
                fmt_num(s.seconds / args.iterations if s.seconds else None),
                fmt_num(s.metrics.get("peak_rss_fit_kib", 0) / 1024, 0),
                fmt_num(s.peak_rss_mib, 0),
                "1.00" if name == BASELINE else (fmt_num(ratio, 3) if ratio else "-"),
            ]
        )
        if s.seconds is not None:
            how = f"{s.metrics['recommend_method']}, " + (
                f"timed on {s.metrics['recommend_users']:,} users, extrapolated"
                if s.metrics.get("recommend_extrapolated")
                else f"all {s.metrics['recommend_users']:,} users"
            )
            rec_rows.append(
                [
                    name,
                    fmt_num(s.metrics["recommend_users_per_second"], 0),
                    how,
                    "1.00" if name == BASELINE else (fmt_num(rec_ratio) + "x" if rec_ratio else "-"),
                ]
            )
    any_s = next(iter(summaries.values()))
    shape = any_s.metrics.get("shape", ["?", "?"])
    print()
    print(
        f"train {rows:,} rows: {shape[0]:,} users x {shape[1]:,} items, "
        f"{any_s.metrics.get('nnz', 0):,} non-zeros, {args.iterations} ALS iterations, {FACTORS} factors"
    )
    print(
        format_table(
            [
                "candidate",
                "status",
                "fit s",
                "runs",
                "CPU s",
                "s/iteration",
                "peak RSS fit MiB",
                "peak RSS all MiB",
                "time vs baseline",
            ],
            fit_rows,
        )
    )
    print()
    print(format_table(["candidate", "recommend users/s", "how", "speed vs baseline"], rec_rows))
    for g in goals:
        shown = f"{g['value']:.3f} vs <= {g['target']:.2f}" if g.get("value") is not None else g["note"]
        print(f"goal: {g['goal']}: {'MET' if g['met'] else 'NOT MET'} ({shown})")
    if cpu_time_ratio is not None:
        print(f"info: training time ratio in CPU seconds (mlscale / implicit): {cpu_time_ratio:.3f}")
    if checks:
        print(
            f"check: same nnz: {checks['same_nnz']}; item factors relative difference: "
            f"{checks['item_factor_checksum_rel_diff']:.2e}"
        )
    return {
        "benchmark": NAME,
        "date": now_iso(),
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
        "workload": {
            "rows": rows,
            "seed": args.seed,
            "iterations": args.iterations,
            "factors": FACTORS,
            "threads": THREADS,
            "recommend_chunk": args.chunk,
            "loop_sample": args.loop_sample,
            "repeat": args.repeat,
        },
        "host": host,
        "candidates": dict(summaries),
        "seconds_per_iteration": {
            n: (s.seconds / args.iterations if s.seconds else None) for n, s in summaries.items()
        },
        "time_ratio": ratio,
        "cpu_time_ratio": cpu_time_ratio,
        "recommend_speed_ratio": rec_ratio,
        "goals": goals,
        "checks": checks,
    }
