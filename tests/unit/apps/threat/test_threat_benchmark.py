"""The threat benchmark runs end to end on 1e4 flows, so it cannot rot (local candidates)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]


@pytest.mark.slow
def test_threat_benchmark_local_candidates(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.threat", "--rows", "1e4", "--only", "local-score", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "threat-10k.json").read_text())
    cands = result["candidates"]
    assert set(cands) == {"local-train", "local-score"}  # scoring needs the trained model
    assert all(c["status"] == "ok" for c in cands.values())
    assert cands["local-score"]["metrics"]["flows"] == 10_000
    assert cands["local-train"]["metrics"]["ips"] > 100
    assert result["goals"][0]["goal"].startswith("scoring >= 1,000,000 flows/s per core")
    assert "goal:" in proc.stdout
