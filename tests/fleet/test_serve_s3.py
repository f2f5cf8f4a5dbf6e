"""``mlscale serve --registry s3://...``: a real server process on an object-store registry."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlscale.registry import Manifest, ObjectStore

Publish = Callable[..., Manifest]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_serve_answers_from_s3_and_picks_up_a_promotion(
    bucket_uri: str, publish_model: Publish, tmp_path: Path
) -> None:
    store = ObjectStore(bucket_uri, cache_dir=tmp_path / "publisher")
    publish_model(store, seed=0)
    publish_model(store, seed=1)
    store.promote("recommend/demo@1", "production")
    log = tmp_path / "serve.log"
    env = {**os.environ, "MLSCALE_CACHE_DIR": str(tmp_path / "server-cache")}
    cmd = [sys.executable, "-m", "mlscale.cli", "serve", "--registry", bucket_uri, "--port", "0"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--model", "demo=recommend/demo@production", "--poll-interval", "0.3"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        base = f"http://127.0.0.1:{found.group(1)}"
        assert _get(f"{base}/v1/models/demo")["version"] == 1
        answer = _get(f"{base}/v1/models/demo/recommend/3?k=5")["results"][0]
        assert answer["user"] == 3
        assert len(answer["items"]) == 5
        assert (tmp_path / "server-cache").is_dir()  # loaded through the host cache

        store.promote("recommend/demo@2", "production")
        promoted = time.monotonic()
        while _get(f"{base}/v1/models/demo")["version"] != 2:
            assert time.monotonic() - promoted < 20, log.read_text()
            time.sleep(0.05)
        assert _get(f"{base}/v1/models/demo/recommend/3?k=5")["results"][0]["user"] == 3
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in log.read_text()
