"""``mlscale plan``: from one host's load-test report to hosts x workers."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from mlscale.cli import main
from mlscale.errors import ValidationError
from mlscale.loadtest import Slo
from mlscale.loadtest.plan import capacity_at, plan_fleet


def _step(achieved: float, p99: float, errors: float = 0.0, saturated: bool = False) -> dict[str, Any]:
    return {
        "achieved_rps": achieved,
        "latency_ms": {"p50": p99 / 3, "p99": p99},
        "error_rate": errors,
        "generator": {"saturated": saturated},
    }


REPORT = {
    "mode": "knee",
    "slo": {"latency_ms": {"p99": 50.0}, "max_error_rate": 0.001},
    "steps": [_step(100, 5), _step(200, 9), _step(400, 30), _step(800, 400, 0.05), _step(600, 45, saturated=True)],
}


def test_capacity_is_the_best_step_within_the_slo() -> None:
    assert capacity_at(REPORT, Slo.parse(["p99=50ms"])) == (400, 2)  # the saturated step is not trusted
    assert capacity_at(REPORT, Slo.parse(["p99=10ms"])) == (200, 1)
    with pytest.raises(ValidationError, match="no step of the load-test report met"):
        capacity_at(REPORT, Slo.parse(["p99=1ms"]))


def test_hosts_and_workers_with_headroom() -> None:
    plan = plan_fleet(REPORT, target_rps=1000, slo=Slo.parse(["p99=50ms"]), headroom=1.5)
    assert (plan.per_host_rps, plan.hosts, plan.workers) == (pytest.approx(266.7), 4, 4)
    bigger = plan_fleet(REPORT, target_rps=1000, slo=Slo.parse([]), workers_per_host=4, spare=1)
    assert (bigger.hosts, bigger.workers_per_host, bigger.workers) == (2, 4, 8)  # 1066 req/s per host, +1 spare
    assert plan_fleet(None, target_rps=90, slo=Slo.parse([]), capacity_rps=100, headroom=1).hosts == 1


def test_the_command_prints_and_writes_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    knee = tmp_path / "knee.json"
    knee.write_text(json.dumps(REPORT))
    out = tmp_path / "plan.json"
    args = ["plan", "--target-rps", "1000", "--slo", "p99=50ms", "--report", str(knee), "--json", str(out)]
    assert main([*args, "--memory-per-worker", "250"]) == 0
    text = capsys.readouterr().out
    assert "for 1,000 req/s: 4 host(s) x 1 worker(s)" in text
    assert "at most 250 MiB per host" in text
    assert json.loads(out.read_text())["plan"]["hosts"] == 4
    assert main(["plan", "--target-rps", "10", "--report", str(tmp_path / "missing.json")]) != 0
    assert "missing.json: no such file" in capsys.readouterr().err


class _Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:  # quiet
        pass


def test_check_load_tests_the_fleet_at_the_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        out = tmp_path / "plan.json"
        args = ["plan", "--target-rps", "40", "--capacity", "100", "--check", url, "--check-duration", "1.5"]
        # A loose SLO (this machine is shared), then one no server can meet: exit status 3.
        assert main([*args, "--slo", "p99=2s", "--json", str(out)]) == 0
        assert "the plan holds" in capsys.readouterr().out
        assert main([*args, "--slo", "p99=1us"]) == 3
        assert "MISSED the SLO" in capsys.readouterr().out
    finally:
        server.shutdown()
        server.server_close()
    check = json.loads(out.read_text())["check"]
    assert check["planned_hosts"] == 1
    assert check["error_rate"] == 0
    assert check["achieved_rps"] > 20
