"""The load tester ranks servers correctly: nginx serving a static file outlasts mlscale serve."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlscale.apps import get_application
from mlscale.cli import main
from mlscale.loadtest import PlainScenario, Slo, StepSpec, run_loadtest

pytestmark = pytest.mark.slow

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _wait(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


@pytest.fixture(scope="module")
def mlscale_server(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory, unused_port_factory: Any
) -> Iterator[str]:
    registry = tmp_path_factory.mktemp("registry")
    assert (
        main(
            [
                "train",
                "recommend",
                "--data",
                "movielens-100k",
                "--data-dir",
                str(shared_data),
                "--name",
                "ml",
                "--registry",
                str(registry),
                "--quiet",
            ]
        )
        == 0
    )
    port = unused_port_factory()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlscale.cli",
            "serve",
            "--model",
            "ml=recommend/ml",
            "--port",
            str(port),
            "--workers",
            "1",
            "--registry",
            str(registry),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/readyz")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def nginx_static(tmp_path_factory: pytest.TempPathFactory, unused_port_factory: Any) -> Iterator[str]:
    if NGINX is None:
        pytest.skip("nginx is not installed (./run test installs it when run as root)")
    root = tmp_path_factory.mktemp("nginx")
    (root / "recs.json").write_text(
        '{"results":[{"user":1,"items":[' + ",".join(f'{{"item":{i},"score":0.{i:04d}}}' for i in range(10)) + "]}]}"
    )
    port = unused_port_factory()
    conf = root / "nginx.conf"
    temp = {name: root / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    # As root, nginx's workers would drop to www-data, which cannot read pytest's private temp folders.
    user = "user root root;" if os.geteuid() == 0 else ""
    conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {temp["body"]}; proxy_temp_path {temp["proxy"]};
  fastcgi_temp_path {temp["fastcgi"]}; uwsgi_temp_path {temp["uwsgi"]}; scgi_temp_path {temp["scgi"]};
  keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; root {root}; default_type application/json; }}
}}
""")
    proc = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait(f"http://127.0.0.1:{port}/recs.json", timeout=20)
        yield f"http://127.0.0.1:{port}/recs.json"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_nginx_static_knee_is_above_the_mlscale_server_knee(
    mlscale_server: str, nginx_static: str, shared_data: Path
) -> None:
    slo = Slo.parse(["p99=50ms", "errors=0.1%"])
    spec = StepSpec(rate=250, duration=2, warmup=0.5, timeout=2)
    knee_args: dict[str, Any] = {
        "mode": "knee",
        "processes": 1,
        "knee_factor": 2,
        "knee_max_rate": 16_000,
        "knee_refine": 2,
    }
    scenario = get_application("recommend").scenario({}, data="movielens-100k", data_dir=shared_data, model="ml")
    ours = run_loadtest(mlscale_server, scenario, spec, slo, **knee_args)
    static = run_loadtest(nginx_static, PlainScenario(), spec, slo, **knee_args)
    assert ours.knee is not None
    assert static.knee is not None
    assert ours.knee.knee_rps is not None
    assert static.knee.knee_rps is not None
    assert static.knee.knee_rps > ours.knee.knee_rps, (static.summary(), ours.summary())
