"""`./run demo`'s job, end to end: ingest, train + evaluate, promote, recommend, serve, load-test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlscale.cli import main

pytestmark = pytest.mark.slow


def test_demo_runs_end_to_end(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--work-dir", str(tmp_path), "--data-dir", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert "NDCG@10 lift over popularity" in out
    assert "[fold-in]" in out
    report = json.loads((tmp_path / "loadtest" / "report.json").read_text())
    assert report["steps"][0]["sent"] > 0
    assert report["steps"][0]["errors"] == {}
    assert (tmp_path / "loadtest" / "report.html").exists()
