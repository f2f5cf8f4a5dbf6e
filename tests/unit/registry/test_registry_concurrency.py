"""Concurrent publishers in separate processes never share a version number."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np

from mlscale.registry import FileStore

_PER_PROCESS = 4


def _publisher(root: str, worker: int, start: Any, results: Any) -> None:
    store = FileStore(root)
    start.wait(timeout=60)
    for i in range(_PER_PROCESS):
        manifest = store.publish(
            "recommend",
            "ml100k",
            arrays={"factors": np.full((64, 8), worker * 100 + i, dtype=np.float32)},
            params={"worker": worker, "i": i},
            engine="local",
            data_fingerprint="x",
        )
        results.put((worker, i, manifest.version))


def test_two_processes_publishing_get_distinct_versions(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=_publisher, args=(str(tmp_path), w, start, results)) for w in (1, 2)]
    for p in procs:
        p.start()
    start.set()
    got = [results.get(timeout=120) for _ in range(2 * _PER_PROCESS)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    versions = sorted(v for _, _, v in got)
    assert versions == list(range(1, 2 * _PER_PROCESS + 1))
    store = FileStore(tmp_path)
    for worker, i, version in got:
        loaded = store.load(f"recommend/ml100k@{version}")
        assert loaded.manifest.params == {"worker": worker, "i": i}
        assert float(loaded.arrays["factors"][0, 0]) == worker * 100 + i
    leftovers = [p.name for p in (tmp_path / "recommend" / "ml100k").iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []
