"""Recommendation quality on six standard protocols: mlscale's default beside the baselines (issue 11).

``python -m benchmarks.recommend_quality [--out bench-out] [--rows ROW,...] [--protocols NAME,...]``

Every row is fitted on each protocol's training part only; whatever it
chooses (lambda, ALS parameters) it chooses on a validation split carved from
that training part (:func:`mlscale.apps.recommend.tune.validation_split`).
Test figures: NDCG@10, binary relevance on the held-out items, the user's
seen training items excluded, with the ratio to the popularity baseline
measured on the same split. Rows:

- ``default``: :func:`mlscale.apps.recommend.defaults.auto_model` (what ``train`` does without flags);
- ``popularity``: most popular unseen items;
- ``als-default``: ``ImplicitRecommender()`` with its constructor defaults;
- ``als-tuned``: implicit ALS, Optuna (TPE, seed 0, ``--als-trials``) over factors / regularisation /
  alpha / weighting on a random 20% validation split (the default's split);
- ``ease-tuned``: EASE, Optuna over lambda (``--ease-trials``) on the same split.

Writes ``OUT/recommend-quality.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlscale.apps.recommend.defaults import auto_model
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.apps.recommend.model import ImplicitRecommender
from mlscale.apps.recommend.protocols import evaluate_protocol
from mlscale.apps.recommend.tune import tune

PROTOCOLS: list[tuple[str, str, str]] = [
    ("ML-100k u1", "movielens-100k", "u1"),
    ("ML-100k last-10", "movielens-100k", "last-10"),
    ("ML-small 20%", "movielens-latest-small", "random-0.2"),
    ("Last.fm 20%", "lastfm-hetrec2011-2k", "random-0.2"),
    ("Amazon MI last-2", "amazon-musical-instruments-5core", "last-2"),
    ("ML-1m-partial last-10", "movielens-1m-partial", "last-10"),
]
ROWS = ("default", "als-default", "als-tuned", "ease-tuned")


def _fitter(row: str, args: argparse.Namespace, notes: dict[str, Any]) -> Any:
    def fit(table: pa.Table, matrix: InteractionMatrix) -> ImplicitRecommender:
        if row == "default":
            model, info = auto_model(table, matrix, threads=args.threads)
            notes["choice"] = {"l2": info["params"].get("l2"), "model": info["model"]}
            return model
        if row == "als-default":
            return ImplicitRecommender(threads=args.threads).fit(matrix)
        fams = ("als",) if row == "als-tuned" else ("ease",)
        n = args.als_trials if row == "als-tuned" else args.ease_trials
        result = tune(table, families=fams, trials=n, seed=0, threads=args.threads, validation="random")
        notes["choice"] = result.params
        return result.model(threads=args.threads).fit(matrix)

    return fit


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench-out"))
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--protocols", default=",".join(str(i) for i in range(len(PROTOCOLS))))
    p.add_argument("--als-trials", type=int, default=10)
    p.add_argument("--ease-trials", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--time-default",
        metavar="DATA",
        default=None,
        help="instead: time the default (search + fit) beside one ALS fit on DATA, wall and CPU seconds",
    )
    args = p.parse_args(argv)
    data_dir = Path(os.environ.get("MLSCALE_DATA_DIR", "../shared/data"))
    if args.time_default:
        return time_default(args.time_default, data_dir, args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "recommend-quality.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    rows = args.rows.split(",")
    for i in (int(x) for x in args.protocols.split(",")):
        label, data, proto = PROTOCOLS[i]
        for row in rows:
            notes: dict[str, Any] = {}
            start = time.perf_counter()
            report = evaluate_protocol(data, proto, _fitter(row, args, notes), data_dir=data_dir)
            entry = {
                "ndcg": report.mean(),
                "popularity_ndcg": report.mean("ndcg", "popularity"),
                "ratio": report.mean() / report.mean("ndcg", "popularity"),
                "fit_seconds": report.fit_seconds,
                "wall_seconds": time.perf_counter() - start,
                **notes,
            }
            results.setdefault(label, {})[row] = entry
            print(
                f"{label:24} {row:12} ndcg@10 {entry['ndcg']:.4f} ({entry['ratio']:.2f}x pop) "
                f"fit {sum(entry['fit_seconds']):.1f}s {notes}",
                flush=True,
            )
            path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(markdown(results))
    return 0


def time_default(data: str, data_dir: Path, threads: int) -> int:
    """Wall and CPU seconds of ``auto_model`` (search + fit) and of one ALS fit, in one process."""
    from mlscale.apps.recommend.ingest import ingest_matrix
    from mlscale.data import open_interactions

    table = open_interactions(data, data_dir).read_all()
    matrix = ingest_matrix(table.to_batches())
    for name in ("default (search + fit)", "one ALS fit (constructor defaults)"):
        wall, cpu = time.perf_counter(), time.process_time()
        if name.startswith("default"):
            auto_model(table, matrix, threads=threads)
        else:
            ImplicitRecommender(threads=threads).fit(matrix)
        load = Path("/proc/loadavg").read_text().split()[0]
        print(f"{name:36} wall {time.perf_counter() - wall:6.1f}s  cpu {time.process_time() - cpu:6.1f}s  load {load}")
    return 0


def markdown(results: dict[str, Any]) -> str:
    labels = [lab for lab, _, _ in PROTOCOLS if lab in results]
    lines = ["| NDCG@10 (x popularity) | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    first = results[labels[0]]
    any_row = next(iter(first.values()))
    pop = " | ".join(f"{next(iter(results[lab].values()))['popularity_ndcg']:.3f} (1.00)" for lab in labels)
    del any_row
    lines.append(f"| popularity | {pop} |")
    for row in ROWS:
        cells = []
        for lab in labels:
            e = results[lab].get(row)
            cells.append("" if e is None else f"{e['ndcg']:.3f} ({e['ratio']:.2f})")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
