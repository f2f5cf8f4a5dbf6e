"""Threat-detection benchmark: scoring throughput and LDA training time on synthetic flows.

The workload is ``mlscale threat synth``'s flows (1,000 hosts, 7 days, 0.1%
attacks, seed 0), written once to Parquet; each candidate runs in its own
process and reads the same files. Candidates:

- ``local-train``: ``ThreatDetector(topics=20, passes=P).fit`` streaming the Parquet
  batches (the words and corpus, then the online LDA), published to a scratch registry;
- ``local-score``: that model loaded from the registry, every flow scored batch by batch
  on one core (BLAS limited to one thread); the figure is flows per CPU-second of
  :meth:`ThreatDetector.score` (words, lookups, probabilities), and end to end with
  the Parquet reads;
- ``spark-train``: the same training on Spark ``local[2]`` (words in ``mapInArrow``
  tasks, Spark ML LDA, the same artifact);
- ``spark-plain-lda`` (baseline): a plain Spark ML script on the *same words*
  (precomputed once into Parquet: one ``(ip, word)`` row per flow side):
  ``groupBy(ip)`` -> ``CountVectorizer`` -> ``LDA(k=20, optimizer="online")`` with the
  same minibatch share and iterations as ``spark-train``.

Goals: scoring at least 1,000,000 flows/s per core; training time is reported
beside the plain Spark ML script (ratio, no target).

``python -m benchmarks.threat --rows 10M`` (or through ``python -m benchmarks
threat`` once registered); ``--only`` picks candidates.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from benchmarks._data import DEFAULT_OUT
from benchmarks._harness import (
    Summary,
    fmt_num,
    format_table,
    host_info,
    now_iso,
    rows_arg,
    rows_label,
    run_candidate,
    run_candidates,
    runs_text,
    stopwatch,
    summarise,
    write_result,
)

__all__ = [
    "add_parser",
    "local_score_candidate",
    "local_train_candidate",
    "main",
    "prepare_flows",
    "run",
    "spark_plain_candidate",
    "spark_train_candidate",
]

NAME = "threat"
CANDIDATES = {
    "local-train": "benchmarks.threat:local_train_candidate",
    "local-score": "benchmarks.threat:local_score_candidate",
    "spark-train": "benchmarks.threat:spark_train_candidate",
    "spark-plain-lda": "benchmarks.threat:spark_plain_candidate",
}
SCORE_GOAL = 1_000_000.0
TOPICS = 20
BATCH_DOCS = 1024
MIN_SUBSAMPLING = 0.05


# -- children -----------------------------------------------------------------------


def prepare_flows(params: dict[str, Any]) -> dict[str, Any]:
    """Write the synthetic flows and, for the plain baseline, their words, as Parquet."""
    import numpy as np
    import pyarrow as pa

    from mlscale.apps.threat.schema import FLOW_SCHEMA
    from mlscale.apps.threat.synthetic import iter_flows
    from mlscale.apps.threat.words import flow_words
    from mlscale.data.writers import PartWriter

    dest = Path(params["dest"])
    rows = 0
    # One part per batch, each folder swapped in whole; words/ before flows/, which the cache check looks for.
    with (
        stopwatch() as lap,
        PartWriter(dest / "flows", rows_per_file=1 << 20, compression="snappy", schema=FLOW_SCHEMA) as flows,
        PartWriter(dest / "words", rows_per_file=1 << 20, compression="snappy") as words,
    ):
        for batch in iter_flows(int(params["rows"]), seed=int(params["seed"]), batch_rows=1 << 20):
            flows.write(batch)
            w = flow_words(batch)
            words.write(
                pa.record_batch(
                    {
                        "ip": pa.concat_arrays([batch.column("src_ip"), batch.column("dst_ip")]),
                        "word": pa.array(np.concatenate([w.src, w.dst])),
                    }
                )
            )
            rows += batch.num_rows
    return {"seconds": lap.seconds, "rows": rows}


def _batches(folder: str) -> Any:
    import pyarrow.dataset as pads

    return pads.dataset(folder, format="parquet").to_batches(
        batch_size=1 << 18, batch_readahead=1, fragment_readahead=1
    )


def local_train_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """Stream the Parquet flows into the corpus, fit the online LDA, publish the model."""
    from threadpoolctl import threadpool_limits

    from mlscale.apps.threat import ThreatDetector, publish_model
    from mlscale.registry import open_store

    det = ThreatDetector(topics=TOPICS, passes=int(params["passes"]), batch_size=BATCH_DOCS)
    with threadpool_limits(1), stopwatch() as total:
        with stopwatch() as corpus_lap:
            corpus = det.build_corpus(_batches(params["flows"]))
        with stopwatch() as lda_lap:
            det.fit_corpus(corpus)
    publish_model(
        open_store(params["registry"]), "bench", det, metrics={}, engine="local", data_fingerprint=params["flows"]
    )
    return {
        "seconds": total.seconds,
        "cpu_seconds": total.cpu_seconds,
        "corpus_seconds": corpus_lap.seconds,
        "lda_seconds": lda_lap.seconds,
        "ips": det.n_ips,
        "words": det.n_words,
        "pairs": int(corpus.counts.nnz),
    }


def local_score_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """Score every flow with the published model on one core."""
    import time

    import numpy as np
    from threadpoolctl import threadpool_limits

    from mlscale.apps.threat import from_artifact
    from mlscale.registry import open_store

    model = from_artifact(open_store(params["registry"]).load("threat/bench"))
    flows = 0
    score_cpu = 0.0
    lowest = np.inf
    with threadpool_limits(1), stopwatch() as total:
        for batch in _batches(params["flows"]):
            start = time.process_time()
            s = model.score(batch)
            score_cpu += time.process_time() - start
            flows += batch.num_rows
            lowest = min(lowest, float(s.score.min()))
    return {
        "seconds": total.seconds,
        "cpu_seconds": total.cpu_seconds,
        "flows": flows,
        "score_cpu_seconds": score_cpu,
        "flows_per_second_per_core": flows / score_cpu,
        "end_to_end_flows_per_second": flows / total.seconds,
        "lowest_score": lowest,
    }


def _spark(params: dict[str, Any]) -> Any:
    from mlscale.engines.spark import SparkEngine

    engine = SparkEngine(master="local[2]", conf={"spark.sql.shuffle.partitions": "4", "spark.driver.memory": "6g"})
    _ = engine.session  # started before the timer, in both Spark candidates
    return engine


def spark_train_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """mlscale's Spark training (words in Spark tasks, Spark ML LDA)."""
    from mlscale.apps.threat import ThreatDetector
    from mlscale.apps.threat.ingest import list_sources
    from mlscale.apps.threat.train_spark import fit_spark

    engine = _spark(params)
    try:
        sources = list_sources(Path(params["flows"]), "flows")
        det = ThreatDetector(topics=TOPICS, passes=int(params["passes"]), batch_size=BATCH_DOCS)
        with stopwatch() as lap:
            fit_spark(engine, sources, det)
    finally:
        engine.close()
    return {"seconds": lap.seconds, "cpu_seconds": lap.cpu_seconds, "ips": det.n_ips, "words": det.n_words}


def spark_plain_candidate(params: dict[str, Any]) -> dict[str, Any]:
    """A plain Spark ML LDA script on the same (ip, word) rows."""
    from pyspark.ml.clustering import LDA
    from pyspark.ml.feature import CountVectorizer
    from pyspark.sql import functions as f

    engine = _spark(params)
    try:
        spark = engine.session
        with stopwatch() as lap:
            words = spark.read.parquet(params["words"]).withColumn("token", f.col("word").cast("string"))
            docs = words.groupBy("ip").agg(f.collect_list("token").alias("tokens")).cache()
            n_docs = docs.count()
            vectors = CountVectorizer(inputCol="tokens", outputCol="features", vocabSize=1 << 22).fit(docs)
            features = vectors.transform(docs).select("ip", "features").cache()
            rate = min(1.0, max(BATCH_DOCS / max(1, n_docs), MIN_SUBSAMPLING))
            lda = LDA(
                k=TOPICS,
                maxIter=int(params["passes"]) * math.ceil(1.0 / rate),
                optimizer="online",
                subsamplingRate=rate,
                seed=0,
            )
            model = lda.fit(features)
            topics = model.topicsMatrix().toArray()
            theta = model.transform(features).select("topicDistribution").count()
    finally:
        engine.close()
    return {
        "seconds": lap.seconds,
        "cpu_seconds": lap.cpu_seconds,
        "ips": n_docs,
        "words": int(topics.shape[0]),
        "scored_docs": theta,
    }


# -- parent ----------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """Register ``threat`` and its options."""
    p = sub.add_parser(NAME, help="threat detection: scoring flows/s and LDA training, local and Spark")
    p.add_argument("--rows", type=rows_arg, action="append", help="flows (10M, 1e4...); repeatable")
    p.add_argument("--passes", type=int, default=3, help="LDA passes over the documents (default 3)")
    p.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    p.add_argument("--repeat", type=int, default=1, help="runs per candidate, interleaved (median)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds before a candidate is killed")
    p.add_argument("--only", choices=sorted(CANDIDATES), action="append", help="run only these candidates")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder (default bench-out)")
    p.add_argument("--data-dir", type=Path, default=None, help="cached data (default OUT/data)")
    p.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    p.set_defaults(handler=run)


def ensure_flows(rows: int, args: argparse.Namespace) -> Path:
    """The synthetic flows (and words) of the workload, written in a child process on first use."""
    data_dir: Path = args.data_dir or args.out / "data"
    dest = data_dir / f"threat-{rows}-seed{args.seed}"
    if (dest / "flows").is_dir():
        return dest
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"  writing {rows:,} synthetic flows -> {dest}", file=sys.stderr, flush=True)
    done = run_candidate(
        "prepare",
        "benchmarks.threat:prepare_flows",
        {"rows": rows, "seed": args.seed, "dest": str(dest)},
        timeout=args.timeout,
    )
    if not done.ok:
        raise SystemExit(f"could not write the flows: {done.status}: {done.error}")
    return dest


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for every ``--rows``; returns the exit status."""
    status = 0
    for rows in args.rows or [10_000_000]:
        result = run_one(rows, args)
        if args.check and not all(g["met"] for g in result["goals"]):
            status = 1
    return status


def run_one(rows: int, args: argparse.Namespace) -> dict[str, Any]:
    """One workload size: run the candidates, print the tables, write the JSON."""
    print(f"threat benchmark, {rows:,} flows, {args.passes} LDA passes", file=sys.stderr)
    data = ensure_flows(rows, args)
    registry = args.out / "tmp" / f"threat-registry-{rows_label(rows)}"
    shutil.rmtree(registry, ignore_errors=True)
    params = {
        "flows": str(data / "flows"),
        "words": str(data / "words"),
        "registry": str(registry),
        "passes": args.passes,
    }
    chosen = [(n, t) for n, t in CANDIDATES.items() if not args.only or n in args.only]
    if any(n == "local-score" for n, _ in chosen) and not any(n == "local-train" for n, _ in chosen):
        chosen.insert(0, ("local-train", CANDIDATES["local-train"]))
    try:
        runs = run_candidates(chosen, params, repeat=args.repeat, timeout=args.timeout)
    finally:
        shutil.rmtree(registry, ignore_errors=True)
    summaries = {name: summarise(name, outcomes) for name, outcomes in runs.items()}
    result = report(rows, args, summaries)
    result["runs"] = runs
    dest = write_result(args.out / f"{NAME}-{rows_label(rows)}.json", result)
    print(f"\nresults: {dest}")
    return result


def report(rows: int, args: argparse.Namespace, summaries: dict[str, Summary]) -> dict[str, Any]:
    """Print the tables and return the result document."""
    goals: list[dict[str, Any]] = []
    score = summaries.get("local-score")
    if score is not None:
        rate = score.metrics.get("flows_per_second_per_core") if score.status == "ok" else None
        goals.append(
            {
                "goal": "scoring >= 1,000,000 flows/s per core",
                "target": SCORE_GOAL,
                "value": round(rate) if rate else None,
                "met": bool(rate and rate >= SCORE_GOAL),
            }
        )
    plain = summaries.get("spark-plain-lda")
    base = plain.seconds if plain is not None and plain.status == "ok" else None
    rows_out = []
    for name, s in summaries.items():
        m = s.metrics
        rows_out.append(
            [
                name,
                s.status if s.status == "ok" else f"{s.status}: {s.error}"[:60],
                fmt_num(s.seconds),
                runs_text(s),
                fmt_num(m.get("cpu_seconds")),
                fmt_num(m.get("flows_per_second_per_core"), 0) if "flows_per_second_per_core" in m else "-",
                fmt_num(base / s.seconds if base and s.seconds else None, 2)
                if "train" in name or name == "spark-plain-lda"
                else "-",
                fmt_num(s.peak_rss_mib, 0),
            ]
        )
    print()
    print(
        format_table(
            ["candidate", "status", "seconds", "runs", "cpu s", "flows/s/core", "speed vs plain", "peak MiB"],
            rows_out,
        )
    )
    train = summaries.get("local-train")
    if train is not None and train.status == "ok":
        m = train.metrics
        print(
            f"\nlocal-train: corpus {m['corpus_seconds']:.1f}s + LDA {m['lda_seconds']:.1f}s; "
            f"{m['ips']:,} IP documents, {m['words']:,} words, {m['pairs']:,} (IP, word) pairs"
        )
    for g in goals:
        print(f"goal: {g['goal']}: {fmt_num(g['value'], 0)} -> {'met' if g['met'] else 'MISSED'}")
    return {
        "benchmark": NAME,
        "rows": rows,
        "passes": args.passes,
        "when": now_iso(),
        "host": host_info(),
        "goals": goals,
        "candidates": {
            name: {
                "status": s.status,
                "seconds": s.seconds,
                "peak_rss_mib": s.peak_rss_mib,
                "metrics": s.metrics,
                "error": s.error,
            }
            for name, s in summaries.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.threat [options]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.threat", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="benchmark", required=True)
    add_parser(sub)
    args = parser.parse_args([NAME, *(sys.argv[1:] if argv is None else argv)])
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
