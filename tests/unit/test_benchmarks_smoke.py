"""Smoke tests of the benchmarks: each runs end to end on 1e4 rows, so they cannot rot.

The harness's own records (peak RSS, MemoryError, a kill, a timeout) are
checked with the probe targets of ``benchmarks._probes``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    # benchmarks/ is a top-level folder of the repository, not part of the installed package.
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("benchmarks._harness")


def _bench(out: Path, *args: str) -> tuple[dict[str, Any], str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args, "--rows", "1e4", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / f"{args[0]}-10k.json").read_text()), proc.stdout


@pytest.mark.slow
def test_ingest_benchmark_runs_every_candidate(tmp_path: Path) -> None:
    result, stdout = _bench(tmp_path, "ingest")
    cands = result["candidates"]
    # pandas2+scipy runs only with --pandas2-python; the polars rows are skipped where polars is missing.
    assert set(cands) == {"mlscale", "pandas+scipy", "polars+scipy", "floor-polars", "floor-pyarrow"}
    ran = {n: c for n, c in cands.items() if c["status"] != "skipped"}
    assert {"mlscale", "pandas+scipy", "floor-pyarrow"} <= set(ran)
    assert all(c["status"] == "ok" for c in ran.values())
    assert all(c["peak_rss_mib"] > 10 and c["seconds"] > 0 for c in ran.values())
    assert all("not installed" in c["error"] for n, c in cands.items() if n not in ran)
    assert result["checks"]["same_shape_and_nnz"] is True
    assert cands["mlscale"]["metrics"]["nnz"] > 9000
    assert result["speed_ratio"] > 0
    goals = {g["goal"] for g in result["goals"]}
    assert "mlscale peak RSS <= 1.5 x CSR size + 256 MiB" in goals
    assert "mlscale faster than pandas+scipy" in goals
    assert all(load >= 0 for load in result["loadavg_1m"])
    assert "pandas+scipy" in stdout
    assert "goal:" in stdout


@pytest.mark.slow
def test_train_benchmark_fits_the_same_model_both_ways(tmp_path: Path) -> None:
    result, stdout = _bench(tmp_path, "train", "--iterations", "1", "--loop-sample", "50")
    cands = result["candidates"]
    assert set(cands) == {"implicit", "mlscale"}
    assert all(c["status"] == "ok" for c in cands.values())
    # Same matrix, weighting and seed: mlscale must run exactly implicit's fit.
    assert result["checks"]["same_nnz"] is True
    assert result["checks"]["item_factor_checksum_rel_diff"] < 1e-6
    assert cands["implicit"]["metrics"]["recommend_users"] == 50
    assert cands["implicit"]["metrics"]["recommend_extrapolated"] is True
    assert cands["mlscale"]["metrics"]["recommend_users"] == cands["mlscale"]["metrics"]["shape"][0]
    assert result["time_ratio"] > 0
    assert "recommend users/s" in stdout


def test_peak_rss_is_the_childs_own(harness: ModuleType) -> None:
    small = harness.run_candidate("small", "benchmarks._probes:allocate", {"mib": 1}, timeout=60)
    big = harness.run_candidate("big", "benchmarks._probes:allocate", {"mib": 200}, timeout=60)
    assert small.ok
    assert big.ok
    assert big.peak_rss_kib - small.peak_rss_kib > 150 * 1024
    assert big.metrics["size"] == 200 << 20


@pytest.mark.parametrize(
    ("target", "params", "timeout", "status"),
    [
        ("fail", {"kind": "memory"}, 60, "memory-error"),
        ("fail", {"kind": "other"}, 60, "failed"),
        ("die", {}, 60, "killed"),
        ("sleep", {"seconds": 30}, 1, "timeout"),
    ],
)
def test_a_child_that_cannot_finish_is_recorded(
    harness: ModuleType, target: str, params: dict[str, Any], timeout: float, status: str
) -> None:
    out = harness.run_candidate("probe", f"benchmarks._probes:{target}", params, timeout=timeout)
    assert out.status == status
    assert not out.ok
    assert out.error
    assert out.process_seconds < 20


def test_summary_takes_the_median_and_worst_memory(harness: ModuleType) -> None:
    runs = [harness.Outcome("c", "ok", 100 * 1024, 1.0, {"seconds": s}) for s in (3.0, 1.0, 2.0)] + [
        harness.Outcome("c", "timeout", 500 * 1024, 9.0, {}, "killed")
    ]
    summary = harness.summarise("c", runs)
    assert summary.seconds == 2.0
    assert summary.peak_rss_mib == 500
    assert summary.status == "ok (3/4 runs)"
    failed = harness.summarise("d", runs[3:])
    assert failed.seconds is None
    assert failed.status == "timeout"


def test_row_counts_parse(harness: ModuleType) -> None:
    assert harness.parse_rows("10M") == 10_000_000
    assert harness.parse_rows("1e4") == 10_000
    assert harness.rows_label(100_000_000) == "100M"
    with pytest.raises(ValueError, match="row count"):
        harness.parse_rows("ten")
