"""Large catalogues: single-user top-10 through ``mlscale serve``, approximate index vs exact, and faiss direct.

For each catalogue size (default 10k, 100k, 1M items x 64 factors, 100k users,
synthetic factors from :mod:`mlscale.apps.recommend.synthetic_catalogue`) the
same model is published twice, once without an index (the exact path) and
once with the default index (``--ann-kind ivf``, tuned to recall@10 >= 0.95),
and both are served by one ``mlscale serve`` worker pinned to CPU 0 while
``wrk`` on CPU 1 asks for ``GET /v1/models/{name}/recommend/{user}``, users
rotated over 5,000 of the model's users (a Lua script), as in
``benchmarks/serve.py``. The ceiling is faiss itself called in a loop, one
query at a time on one thread, with the same index and settings.

Reported per size: requests/s and p50/p99 of both paths and their ratio,
faiss direct queries/s and mlscale's share of it, recall@10 measured at build
time, build time and index size. A plot of requests/s against catalogue size
goes beside the JSON.

Run: ``python -m benchmarks.ann [--sizes 10k,100k,1M] [--duration 10]``. Needs
``wrk`` and ``taskset`` and the ``recommend`` extra (faiss). On a shared
machine the figures are noisy: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "main", "run"]

REPO = Path(__file__).resolve().parents[1]


def add_parser(sub: Any) -> None:
    """Add ``ann`` to ``python -m benchmarks``."""
    p = sub.add_parser("ann", help="approximate index vs exact top-k through mlscale serve, and faiss direct")
    _arguments(p)
    p.set_defaults(handler=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default="10k,100k,1M", help="catalogue sizes (default: 10k,100k,1M)")
    p.add_argument("--users", default="100k", help="users of each model (default: 100k)")
    p.add_argument("--factors", type=int, default=64, help="factors (default: 64)")
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default: 10)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default: 16)")
    p.add_argument("--registry", type=Path, default=None, help="reuse models published here (default: a temp dir)")
    p.add_argument(
        "--probe",
        default=None,
        metavar="ITEMS",
        help="instead: build one catalogue of ITEMS in-process (e.g. 10M) and report build time, peak memory, "
        "recall and per-query latency of faiss, the serving predictor and the exact path (no wrk, no publish)",
    )
    p.add_argument("--probe-nlist", type=int, default=None, help="IVF lists of the probe (default: the index's)")
    p.add_argument("--probe-sample", type=int, default=1000, help="users the probe tunes recall on (default: 1000)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="where the JSON and plot go")


def _publish(registry: Path, items: int, users: int, factors: int) -> dict[str, Any]:
    """Publish ``x<items>`` (no index) and ``a<items>`` (ivf index) unless already there; the index facts."""
    from benchmarks._harness import rows_label
    from mlscale.apps.recommend import ann
    from mlscale.apps.recommend._artifact import publish_model
    from mlscale.apps.recommend.synthetic_catalogue import SyntheticCatalogue, synthetic_model
    from mlscale.errors import ModelNotFoundError
    from mlscale.registry import open_store

    store = open_store(registry)
    label = rows_label(items).lower()  # registry names are lower case
    with contextlib.suppress(ModelNotFoundError):
        return dict(store.resolve(f"recommend/a{label}").extra[ann.META_KEY])
    model = synthetic_model(SyntheticCatalogue(items=items, users=users, factors=factors))
    for name, kind in ((f"x{label}", "none"), (f"a{label}", "ivf")):
        ann.attach_index(model, ann.AnnParams(kind=kind))  # type: ignore[arg-type]
        publish_model(store, name, model, metrics={}, engine="synthetic", data_fingerprint=f"synthetic:{items}")
    assert model.ann_ is not None
    return dict(model.ann_.meta)


def _faiss_direct(registry: Path, label: str, n_queries: int = 3000) -> dict[str, Any]:
    """faiss alone, one query at a time on one thread, and mlscale's predictor called the same way."""
    import numpy as np

    from mlscale.apps import get_application
    from mlscale.apps.recommend.predictor import RecommendRequest
    from mlscale.registry import open_store

    loaded = open_store(registry).load(f"recommend/a{label}")
    predictor: Any = get_application("recommend").predictor(loaded)
    model = predictor.model
    index = model.ann_
    rows = np.arange(min(n_queries, model.n_users))
    queries = np.ascontiguousarray(model.user_factors_[rows], dtype=np.float32)
    index.search(queries[:10], 10, threads=1)
    start = time.perf_counter()
    for i in range(rows.size):
        index.search(queries[i : i + 1], 10, threads=1)
    faiss_s = (time.perf_counter() - start) / rows.size
    users = model.user_ids_[rows].tolist()
    predictor.recommend_batch([RecommendRequest(users=[users[0]])])
    start = time.perf_counter()
    for u in users:
        predictor.recommend_batch([RecommendRequest(users=[u])])
    predictor_s = (time.perf_counter() - start) / rows.size
    return {
        "faiss_us": round(faiss_s * 1e6, 1),
        "faiss_qps": round(1 / faiss_s),
        "predictor_us": round(predictor_s * 1e6, 1),
        "predictor_qps": round(1 / predictor_s),
    }


def probe(args: argparse.Namespace) -> int:
    """One large catalogue in-process: what building and querying it costs (``ann-probe-<items>.json``)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from benchmarks._harness import host_info, parse_rows, rows_label, rss_peak_kib
    from mlscale.apps.recommend import ann
    from mlscale.apps.recommend.predictor import RecommendPredictor, RecommendRequest
    from mlscale.apps.recommend.synthetic_catalogue import SyntheticCatalogue, synthetic_model

    items, users = parse_rows(args.probe), parse_rows(args.users)
    start = time.perf_counter()
    model = synthetic_model(SyntheticCatalogue(items=items, users=users, factors=args.factors), threads=0)
    synth_s = time.perf_counter() - start
    rss_model = rss_peak_kib()
    ann.attach_index(model, ann.AnnParams(kind="ivf", nlist=args.probe_nlist, sample_users=args.probe_sample))
    assert model.ann_ is not None
    meta = {k: v for k, v in model.ann_.meta.items() if k != "params"}
    model.threads = 1
    predictor = RecommendPredictor(model, model_ref="recommend/probe", version=1)
    ids = model.user_ids_[:1000].tolist()

    def per_query(fn: Any, n: int) -> float:
        fn(0)
        t = time.perf_counter()
        for i in range(n):
            fn(i)
        return (time.perf_counter() - t) / n * 1e6

    q = np.ascontiguousarray(model.user_factors_[:1000])
    with threadpool_limits(1):  # one core, as a serving worker
        faiss_us = per_query(lambda i: model.ann_.search(q[i : i + 1], 10), 1000)  # type: ignore[union-attr]
        index_us = per_query(lambda i: predictor.recommend_batch([RecommendRequest(users=[ids[i]])]), 1000)
        model.ann_ = None
        exact_us = per_query(lambda i: predictor.recommend_batch([RecommendRequest(users=[ids[i]])]), 20)
    result = {
        "host": host_info(),
        "items": items,
        "users": users,
        "factors": args.factors,
        "synth_seconds": round(synth_s, 1),
        "model_peak_rss_mib": rss_model >> 10,
        "peak_rss_mib": rss_peak_kib() >> 10,
        "index": meta,
        "faiss_direct_us": round(faiss_us, 1),
        "predictor_index_us": round(index_us, 1),
        "predictor_exact_us": round(exact_us, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"ann-probe-{rows_label(items).lower()}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "host"}, indent=2))
    print(f"results: {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run every size; prints a table and writes ``ann.json`` and ``ann.png``."""
    from benchmarks._harness import host_info, parse_rows, rows_label

    if args.probe:
        return probe(args)
    from benchmarks.serve import _free_port, _need_tools, _process, _wait_ready, wrk

    _need_tools()
    sizes = [parse_rows(s) for s in args.sizes.split(",") if s.strip()]
    users = parse_rows(args.users)
    work = Path(tempfile.mkdtemp(prefix="mlscale-bench-ann-"))
    registry = args.registry or work / "registry"
    results: dict[str, Any] = {
        "host": host_info(),
        "duration_s": args.duration,
        "connections": args.connections,
        "factors": args.factors,
        "users": users,
        "sizes": {},
    }
    for items in sizes:
        label = rows_label(items).lower()
        start = time.perf_counter()
        meta = _publish(registry, items, users, args.factors)
        print(f"{label}: models ready in {time.perf_counter() - start:.0f}s", file=sys.stderr)
        direct = _faiss_direct(registry, label)
        lua = work / f"users-{label}.lua"
        ids = ",".join(str(u) for u in range(1, min(users, 5000) + 1))
        row: dict[str, Any] = {"build": {k: v for k, v in meta.items() if k != "curve"}, "direct": direct}
        port = _free_port()
        log = work / f"serve-{label}.log"
        cmd = [
            sys.executable,
            "-c",
            "import sys; from mlscale.cli import main; sys.exit(main())",
            "serve",
            "--registry",
            str(registry),
            "--model",
            f"x{label}=recommend/x{label}",
            "--model",
            f"a{label}=recommend/a{label}",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        with _process(cmd, log, dict(os.environ)):
            _wait_ready(f"http://127.0.0.1:{port}/readyz", log, timeout=600)
            for name, path in (("index", f"a{label}"), ("exact", f"x{label}")):
                lua.write_text(
                    f"local users = {{{ids}}}\nlocal i = 0\nrequest = function()\n  i = i % #users + 1\n"
                    f'  return wrk.format("GET", "/v1/models/{path}/recommend/" .. users[i])\nend\n'
                )
                url = f"http://127.0.0.1:{port}"
                wrk(url, lua, args.connections, 2)  # warm-up
                row[name] = wrk(url, lua, args.connections, args.duration)
        row["index_vs_exact_rps"] = round(row["index"]["rps"] / max(1, row["exact"]["rps"]), 1)
        row["serve_vs_faiss_direct"] = round(direct["faiss_qps"] / max(1, row["index"]["rps"]), 2)
        results["sizes"][label] = row
        print(_line(label, row), file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ann.json").write_text(json.dumps(results, indent=2) + "\n")
    _plot(results, args.out / "ann.png")
    print(_table(results))
    print(f"results: {args.out / 'ann.json'}, plot: {args.out / 'ann.png'}")
    return 0


def _line(label: str, row: dict[str, Any]) -> str:
    i, e, d = row["index"], row["exact"], row["direct"]
    return (
        f"{label}: index {i['rps']:,} req/s p99 {i['p99_ms']} ms | exact {e['rps']:,} req/s p99 {e['p99_ms']} ms | "
        f"faiss direct {d['faiss_qps']:,} q/s | recall@10 {row['build']['recall_at_k']}"
    )


def _table(results: dict[str, Any]) -> str:
    head = (
        "| items | recall@10 | index req/s | index p99 ms | exact req/s | exact p99 ms | index/exact | "
        "faiss direct q/s | faiss/serve | build s | index MiB |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for label, r in results["sizes"].items():
        m = r["build"]
        lines.append(
            f"| {label} | {m['recall_at_k']} | {r['index']['rps']:,} | {r['index']['p99_ms']} | "
            f"{r['exact']['rps']:,} | {r['exact']['p99_ms']} | {r['index_vs_exact_rps']}x | "
            f"{r['direct']['faiss_qps']:,} | {r['serve_vs_faiss_direct']}x | "
            f"{m['build_seconds'] + m['tune_seconds']:.0f} | {m['bytes'] / 2**20:.0f} |"
        )
    return "\n".join(lines)


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(results["sizes"])
    items = [results["sizes"][s]["build"]["items"] for s in sizes]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("index", "exact"):
        a.plot(items, [results["sizes"][s][name]["rps"] for s in sizes], marker="o", label=name)
        b.plot(items, [results["sizes"][s][name]["p99_ms"] for s in sizes], marker="o", label=name)
    a.plot(items, [results["sizes"][s]["direct"]["faiss_qps"] for s in sizes], marker="x", label="faiss direct")
    for ax, title in ((a, "requests/s (one core)"), (b, "p99 ms")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("items")
        ax.set_title(title)
        ax.legend()
    fig.suptitle("single-user top-10 through mlscale serve (noisy, shared 2-core machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ann", description=__doc__)
    _arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
