"""Console benchmark: paging the suspicious list of N synthetic scored flows from disk.

Writes N rank-sorted scored flows (the columns of ``mlscale threat score``)
as Parquet in chunks, then times, in this process, the console's
:class:`~mlscale.console.hunt.ScoredRun`: opening it and the first page
("first paint" server side), pages at random depths through the rank cursor,
and filtered pages (protocol, port, score threshold, one IP, a CIDR). The
baseline, side by side, is the naive way: read the whole file and filter it
in memory. Peak RSS of each is measured (``ru_maxrss``; the baseline runs last
because the peak only grows).

``python -m benchmarks.console --rows 10M`` (default 1M). Timings on a shared
machine are noisy: compare the ratio, measured in one run.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlscale.console.hunt import INDEX_ROWS

__all__ = ["main", "write_scored"]


def write_scored(path: Path, rows: int, seed: int = 0, chunk: int = 1 << 20) -> None:
    """N scored flows, sorted by rank (and score), written chunk by chunk (bounded memory)."""
    rng = np.random.default_rng(seed)
    hosts = np.array([f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(5000)])
    ext = np.array(
        [f"{rng.integers(1, 224)}.{rng.integers(0, 256)}.{rng.integers(0, 256)}.{i % 256}" for i in range(20000)]
    )
    protos = np.array(["tcp", "udp", "icmp"])
    writer = None
    t0 = np.datetime64("2026-01-01T00:00:00", "us")
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        rank = np.arange(done + 1, done + n + 1, dtype=np.int64)
        table = pa.table(
            {
                "rank": rank,
                "ts": pa.array(t0 + rng.integers(0, 7 * 86400 * 10**6, n).astype("timedelta64[us]")),
                "src_ip": pa.array(hosts[rng.integers(0, len(hosts), n)]),
                "src_port": pa.array(rng.integers(1024, 65536, n).astype(np.int32)),
                "dst_ip": pa.array(ext[rng.integers(0, len(ext), n)]),
                "dst_port": pa.array(rng.choice(np.array([53, 80, 443, 22, 8080], np.int32), n)),
                "proto": pa.array(protos[rng.integers(0, 3, n)]),
                "src_bytes": pa.array(rng.integers(40, 10**6, n)),
                "dst_bytes": pa.array(rng.integers(0, 10**6, n)),
                "score": pa.array(-20.0 + 20.0 * rank / rows),
                "src_word": pa.array([f"w{x}" for x in rng.integers(0, 500, n)]).dictionary_encode(),
                "src_prob": pa.array(rng.random(n)),
                "dst_word": pa.array([f"w{x}" for x in rng.integers(0, 500, n)]).dictionary_encode(),
                "dst_prob": pa.array(rng.random(n)),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=INDEX_ROWS)
        done += n
    assert writer is not None
    writer.close()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ms(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.console", description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="1M", help="scored flows (1M, 10M...; default 1M)")
    p.add_argument("--pages", type=int, default=20, help="random-depth pages to time (default 20)")
    p.add_argument("--write", type=Path, default=None, help=argparse.SUPPRESS)  # the writer child process
    args = p.parse_args(argv)
    text = args.rows.upper()
    rows = int(float(text.rstrip("KM")) * {"K": 10**3, "M": 10**6}.get(text[-1:], 1))
    if args.write is not None:
        write_scored(args.write, rows)
        return 0
    from mlscale.console.hunt import Filters, ScoredRun, parse_filters

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "run.parquet")
        start = time.perf_counter()
        # written by a child process, so that this one's peak RSS is the console's alone
        subprocess.run(
            [sys.executable, "-m", "benchmarks.console", "--rows", args.rows, "--write", str(path)], check=True
        )
        print(f"wrote {rows:,} scored flows in {time.perf_counter() - start:.1f}s ({path.stat().st_size / 1e6:.0f} MB)")
        rss0 = _rss_mb()
        run: list[ScoredRun] = []
        first = _ms(lambda: run.append(ScoredRun(path, Path(tmp, "state"))))
        first += _ms(lambda: run[0].page(Filters(), limit=50))
        sr = run[0]
        rng = np.random.default_rng(1)
        deep = [
            _ms(lambda a=int(a): sr.page(Filters(), after=a, limit=50)) for a in rng.integers(0, rows - 50, args.pages)
        ]
        pf = pq.ParquetFile(path)  # one IP from the middle, reading one group (the RSS is the console's)
        ip = str(pf.read_row_group(pf.metadata.num_row_groups // 2, columns=["src_ip"]).column(0)[0])
        filtered = {}
        for name, q in {
            "proto=udp": {"proto": "udp"},
            "port=22": {"port": "22"},
            "max_score=-19.9 (top 0.5%)": {"max_score": "-19.9"},
            f"ip={ip}": {"ip": ip},
            "ip=192.0.2.1 (absent: every group read)": {"ip": "192.0.2.1"},
            "ip=10.0.0.0/16": {"ip": "10.0.0.0/16"},
        }.items():
            f = parse_filters(q)
            filtered[name] = statistics.median(_ms(lambda f=f: sr.page(f, limit=50)) for _ in range(3))
        rss_console = _rss_mb()
        base_first = _ms(lambda: pq.read_table(path).slice(0, 50).to_pylist())

        def naive_filter() -> None:
            t = pq.read_table(path)
            t.filter(pc.equal(t.column("proto"), "udp")).slice(0, 50).to_pylist()

        base_filter = _ms(naive_filter)
        rss_base = _rss_mb()
    print(f"\nconsole: {rows:,} rows (shared 2-core machine: timings are noisy)")
    print("| what | console ms | read-all baseline ms | ratio |\n|---|---|---|---|")
    print(f"| open + first page | {first:.1f} | {base_first:.1f} | {base_first / first:.1f}x |")
    print(
        f"| page at a random depth, median of {args.pages} (max) "
        f"| {statistics.median(deep):.1f} ({max(deep):.1f}) | | |"
    )
    for name, ms in filtered.items():
        extra = f" | {base_filter:.1f} | {base_filter / ms:.1f}x |" if name == "proto=udp" else " | | |"
        print(f"| first page, {name} | {ms:.1f}{extra}")
    print(f"\npeak RSS: {rss0:.0f} MB before opening, {rss_console:.0f} MB after the console's queries, "
          f"{rss_base:.0f} MB after the read-all baseline")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
