"""The seeded synthetic workloads, generated once and cached under ``bench-out/data``.

The log comes from :mod:`mlscale.apps.recommend.synthetic` with the default profile
(MovieLens-100k shape); the file name carries rows and seed, so a cached file is
reused only for the same workload. Writes are atomic (``write_csv`` renames a
finished temporary file), so an interrupted run never leaves a half file.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from benchmarks._harness import REPO_ROOT

__all__ = ["DEFAULT_OUT", "ensure_csv", "ensure_warmup"]

#: Default folder of results, cached data and scratch files (git-ignored).
DEFAULT_OUT = REPO_ROOT / "bench-out"


def ensure_csv(rows: int, seed: int, data_dir: Path) -> Path:
    """The CSV log of ``rows`` rows for ``seed`` (header ``user,item,rating,timestamp``).

    Generated on first use (progress on stderr), then reused.
    """
    from mlscale.apps.recommend.profile import default_profile
    from mlscale.apps.recommend.synthetic import generate
    from mlscale.data.writers import write_csv

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"interactions-{rows}-seed{seed}.csv"
    if path.exists():
        return path
    print(f"  generating {rows:,} synthetic rows (seed {seed}) -> {path}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    write_csv(
        generate(default_profile(), rows, seed=seed),
        path,
        progress=sys.stderr.isatty(),
        total=rows,
    )
    print(f"  generated in {time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)
    return path


def ensure_warmup(path: Path, lines: int = 1000) -> Path:
    """A small file with the header and first ``lines`` rows of ``path``, for warm-up runs."""
    dest = path.with_name(f"{path.stem}-head{lines}{path.suffix}")
    if not dest.exists():
        with path.open("rb") as src:
            head = b"".join(src.readline() for _ in range(lines + 1))
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.write_bytes(head)
        tmp.replace(dest)
    return dest
