"""``mlscale serve --console``: the console mounted at /ui/ beside the models, in every worker, behind the token."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlscale.cli import main

TOKEN = "console-token"


def _get(port: int, path: str, token: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.slow
def test_serve_mounts_the_console(shared_data: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    data = str(shared_data / "movielens-100k" / "u.data")
    args = ["train", "recommend", "--data", data, "--name", "ml", "--registry", str(registry), "--quiet"]
    assert main([*args, "--threads", "1", "--iterations", "2"]) == 0
    log = tmp_path / "serve.log"
    env = {**os.environ, "MLSCALE_API_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "mlscale.cli", "serve", "--registry", str(registry), "--port", "0", "--workers", "2"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--console"], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        port = 0
        deadline = time.monotonic() + 60
        while not port and time.monotonic() < deadline and proc.poll() is None:
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
            port = int(found.group(1)) if found else 0
            time.sleep(0.05)
        assert port, log.read_text()
        assert "console at http://" in log.read_text()
        status, page = _get(port, "/ui/")
        assert (status, b"<title>mlscale console</title>" in page) == (200, True)  # the page needs no token
        assert _get(port, "/ui/api/status")[0] == 401  # its API does
        status, body = _get(port, "/ui/api/status", TOKEN)
        assert status == 200
        assert json.loads(body)["mounted"] is True
        models = json.loads(_get(port, "/ui/api/models", TOKEN)[1])["models"]
        assert [m["ref"] for m in models] == ["recommend/ml"]
        assert _get(port, "/v1/models/ml/recommend/1?k=3", TOKEN)[0] == 200
        # the serving view reads this very server's /metrics (with the token it was started with)
        for _ in range(2):
            live = json.loads(_get(port, f"/ui/api/serving?url=http://127.0.0.1:{port}", TOKEN)[1])
        assert live["up"] is True
        assert live["requests_total"] >= 1
        assert {v["model"] for v in live["versions"]} == {"ml"}
        doc = json.loads(_get(port, "/openapi.json", TOKEN)[1])
        assert "/ui/api/models/promote" in doc["paths"]
        assert "/v1/models/{name}" in " ".join(doc["paths"])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, log.read_text()[-3000:]
