"""``mlscale serve`` as a user runs it: real processes on 127.0.0.1, the MovieLens-100k model.

Covers what the prediction service promises: answers equal to the Python API,
micro-batching, hot swap under load with no failed request, 503 under
overload while staying up, a killed worker replaced, client errors as 4xx, and
the bearer token.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlscale.apps.recommend import from_artifact
from mlscale.cli import main
from mlscale.registry import open_store

TOKEN = "integration-token"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    token: str | None = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            hdrs = dict(headers or {})
            if self.token and "Authorization" not in hdrs:
                hdrs["Authorization"] = f"Bearer {self.token}"
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def json(self, path: str, body: Any = None) -> Any:
        raw = None if body is None else json.dumps(body).encode()
        status, _, data = self.request("GET" if body is None else "POST", path, raw)
        assert status == 200, data
        return json.loads(data)

    def metrics(self) -> str:
        status, _, data = self.request("GET", "/metrics")
        assert status == 200
        return data.decode()


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _start(tmp: Path, registry: Path, *args: str, token: str | None = None) -> Server:
    log = tmp / f"serve-{time.monotonic_ns()}.log"
    env = dict(os.environ)
    env.pop("MLSCALE_API_TOKEN", None)
    if token:
        env["MLSCALE_API_TOKEN"] = token
    cmd = [sys.executable, "-c", "import sys; from mlscale.cli import main; sys.exit(main())", "serve"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--registry", str(registry), "--host", "127.0.0.1", "--port", "0", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return Server(proc, int(found.group(1)), log, token)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    _stop(proc)
    raise AssertionError(f"the server did not start:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with contextlib.suppress(ProcessLookupError):  # workers left behind by a failed test
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


@pytest.fixture(scope="module")
def registry(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-it-registry")
    data = str(shared_data / "movielens-100k" / "u.data")
    for extra in ([], ["--factors", "32", "--seed", "7"]):  # versions 1 and 2
        args = ["train", "recommend", "--data", data, "--name", "ml", "--registry", str(root), "--quiet"]
        assert main([*args, "--threads", "2", "--iterations", "5", *extra]) == 0
    assert main(["models", "promote", "recommend/ml@1", "--alias", "production", "--registry", str(root)]) == 0
    return root


@pytest.fixture(scope="module")
def server(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = _start(
        tmp_path_factory.mktemp("serve-a"),
        registry,
        "--model",
        "ml=recommend/ml@production",
        "--workers",
        "2",
        "--poll-interval",
        "0.2",
    )
    yield srv
    assert _stop(srv.proc) == 0, srv.log.read_text()[-3000:]


@pytest.fixture(scope="module")
def guarded(registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One worker, a small queue, a token: for overload and security."""
    srv = _start(
        tmp_path_factory.mktemp("serve-b"),
        registry,
        "--model",
        "recommend/ml@1",
        "--max-queue",
        "1000",
        "--max-body",
        "64k",
        token=TOKEN,
    )
    yield srv
    assert _stop(srv.proc) == 0, srv.log.read_text()[-3000:]


def test_answers_equal_the_python_api(server: Server, registry: Path) -> None:
    store = open_store(registry)
    version = server.json("/v1/models/ml")["version"]
    model = from_artifact(store.load(f"recommend/ml@{version}"))
    users = model.user_ids_[::50].tolist()
    expected = model.recommend(users, 10).to_lists()
    for user, want in zip(users, expected, strict=True):
        got = server.json(f"/v1/models/ml/recommend/{user}")["results"][0]
        assert got["user"] == user
        assert got["strategy"] == "model"
        assert got["items"] == [i for i, _ in want]
        assert got["scores"] == pytest.approx([s for _, s in want], abs=1e-5)
    batch = server.json("/v1/models/ml/recommend", {"users": users, "k": 5, "exclude": [50, 100]})
    want5 = model.recommend(users, 5, exclude=[50, 100]).to_lists()
    assert [r["items"] for r in batch["results"]] == [[i for i, _ in row] for row in want5]
    cold = server.json("/v1/models/ml/recommend", {"recent_items": [1, 2, 3], "k": 5})["results"][0]
    assert cold["strategy"] == "fold-in"
    assert cold["user"] is None
    assert server.request("GET", "/readyz")[0] == 200


def test_a_burst_is_served_in_fewer_model_calls(server: Server) -> None:
    before = server.metrics()
    n = 48
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def one(user: int) -> None:
        barrier.wait()
        statuses.append(server.request("GET", f"/v1/models/ml/recommend/{user}?k=5")[0])

    threads = [threading.Thread(target=one, args=(u,)) for u in range(1, n + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # And pipelined on one connection: parsed in one read, answered by one batch.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"".join(b"GET /v1/models/ml/recommend/%d HTTP/1.1\r\nhost: t\r\n\r\n" % u for u in range(1, 33)))
        data = b""
        while data.count(b"HTTP/1.1 200") < 32:
            chunk = sock.recv(65536)
            assert chunk, data[-500:]
            data += chunk
    after = server.metrics()
    assert statuses == [200] * n
    labels = {"model": "ml", "action": "recommend"}
    calls = _metric(after, "mlscale_batch_requests_count", **labels) - _metric(
        before, "mlscale_batch_requests_count", **labels
    )
    requests = _metric(after, "mlscale_batch_requests_sum", **labels) - _metric(
        before, "mlscale_batch_requests_sum", **labels
    )
    assert requests == n + 32
    assert calls < requests, (calls, requests)
    assert calls <= n + 2  # the 32 pipelined requests took at most a few calls


def test_hot_swap_under_load_fails_no_request(server: Server, registry: Path) -> None:
    assert server.json("/v1/models/ml")["version"] == 1
    stop = threading.Event()
    failures: list[str] = []
    versions: list[int] = []

    def load() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        user = 1
        while not stop.is_set():
            user = user % 900 + 1
            try:
                conn.request("GET", f"/v1/models/ml/recommend/{user}")
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    failures.append(f"{resp.status} {body[:200]!r}")
                else:
                    versions.append(json.loads(body)["version"])
            except (OSError, http.client.HTTPException) as err:
                failures.append(repr(err))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.close()

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        args = ["models", "promote", "recommend/ml@2", "--alias", "production", "--registry", str(registry)]
        assert main(args) == 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and versions[-200:].count(2) < 200:
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert failures == []
    assert 1 in versions
    assert 2 in versions
    assert versions[-100:] == [2] * 100  # every worker moved on
    assert server.json("/v1/models/ml")["version"] == 2
    text = server.metrics()
    assert _metric(text, "mlscale_model_swaps_total", model="ml", outcome="ok") == 2  # one per worker
    served = re.findall(r"^mlscale_model_version\{[^}]*\} (\d+)$", text, re.MULTILINE)
    assert served == ["2", "2"]


def test_a_killed_worker_is_replaced(server: Server) -> None:
    def workers() -> set[str]:
        return set(re.findall(r'mlscale_model_version\{[^}]*worker="(\d+)"', server.metrics()))

    pids = workers()
    assert len(pids) == 2
    victim = int(sorted(pids)[0])
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    now = pids
    while time.monotonic() < deadline:
        now = workers()
        if len(now) == 2 and str(victim) not in now:
            break
        time.sleep(0.1)
    assert len(now) == 2
    assert str(victim) not in now
    assert _metric(server.metrics(), "mlscale_worker_restarts_total") == 1
    for user in range(1, 21):
        assert server.request("GET", f"/v1/models/ml/recommend/{user}")[0] == 200


def test_client_errors_are_4xx_never_500(server: Server) -> None:
    cases: list[tuple[str, str, bytes | None, int, str | None]] = [
        ("POST", "/v1/models/ml/recommend", b"{not json", 400, None),
        ("POST", "/v1/models/ml/recommend", b'{"users": [1], "k": "10"}', 422, "k"),
        ("POST", "/v1/models/ml/recommend", b'{"users": [1], "k": 0}', 422, "k"),
        ("POST", "/v1/models/ml/recommend", b'{"users": [1], "k": 1683}', 422, "k"),
        ("POST", "/v1/models/ml/recommend", b'{"users": "1"}', 422, "users"),
        ("POST", "/v1/models/ml/recommend", b'{"users": [1], "include": 5}', 422, "include"),
        ("POST", "/v1/models/ml/recommend", b'{"users": [1]}' + b" " * (2 << 20), 413, None),
        ("POST", "/v1/models/unknown/recommend", b'{"users": [1]}', 404, "name"),
        ("GET", "/v1/models/unknown", None, 404, "name"),
        ("GET", "/v1/models/ml/recommend/not-a-user", None, 422, "user"),
        ("PUT", "/v1/models/ml/recommend", b"{}", 405, None),
    ]
    for method, path, body, want, field in cases:
        status, _, raw = server.request(method, path, body)
        assert status == want, (method, path, raw[:300])
        if field is not None:
            assert json.loads(raw)["error"]["field"] == field
    text = server.metrics()
    assert _metric(text, "mlscale_http_requests_total", code="500") == 0


def test_overload_answers_503_fast_and_stays_up(guarded: Server) -> None:
    # 40 clients at once, each asking for all 943 users (943 rows; the queue holds 1000): one computes, one
    # may wait, the others must be refused at once, not after the queue.
    body = json.dumps({"users": list(range(1, 944)), "k": 10}).encode()
    head = (
        f"POST /v1/models/ml/recommend HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {TOKEN}\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    n = 40
    socks = [socket.create_connection(("127.0.0.1", guarded.port), timeout=30) for _ in range(n)]
    barrier = threading.Barrier(n)
    results: list[tuple[int, float, str | None]] = []

    def one(sock: socket.socket) -> None:
        barrier.wait()
        start = time.monotonic()
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        took = time.monotonic() - start
        status = int(data.split(b" ", 2)[1])
        retry = re.search(rb"retry-after: (\d+)", data.split(b"\r\n\r\n")[0], re.IGNORECASE)
        results.append((status, took, retry.group(1).decode() if retry else None))

    threads = [threading.Thread(target=one, args=(s,)) for s in socks]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for s in socks:
            s.close()
    assert len(results) == n
    assert {s for s, _, _ in results} <= {200, 503}
    refused = [r for r in results if r[0] == 503]
    served = [r for r in results if r[0] == 200]
    assert len(refused) >= n // 2
    assert served
    assert all(retry is not None and int(retry) >= 1 for _, _, retry in refused)
    refused_times = sorted(t for _, t, _ in refused)
    assert refused_times[len(refused_times) // 2] < max(t for _, t, _ in served)  # not after the queue
    assert guarded.request("GET", "/healthz")[0] == 200
    assert guarded.request("GET", "/v1/models/ml/recommend/1")[0] == 200
    assert _metric(guarded.metrics(), "mlscale_rejected_total", model="ml") == len(refused)


def test_bearer_token(guarded: Server) -> None:
    path = "/v1/models/ml/recommend/1"
    assert guarded.request("GET", path, headers={"Authorization": "Bearer wrong"})[0] == 401
    status, headers, _ = guarded.request("GET", path, headers={"Authorization": ""})
    assert status == 401
    assert "bearer" in headers["www-authenticate"].lower()
    assert guarded.request("GET", path)[0] == 200
    assert guarded.request("GET", "/readyz", headers={"Authorization": ""})[0] == 200


def test_serve_refuses_an_unknown_model(registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["serve", "--registry", str(registry), "--model", "recommend/nope", "--port", "0"])
    assert status == 66
    assert "nope" in capsys.readouterr().err


def test_sigterm_drains_requests_in_flight(registry: Path, tmp_path: Path) -> None:
    srv = _start(tmp_path, registry, "--model", "recommend/ml@1")
    try:
        body = json.dumps({"users": list(range(1, 944)), "k": 500}).encode()
        with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as sock:
            head = f"POST /v1/models/ml/recommend HTTP/1.1\r\nhost: t\r\ncontent-length: {len(body)}\r\n\r\n"
            sock.sendall(head.encode() + body)
            time.sleep(0.01)
            os.killpg(srv.proc.pid, signal.SIGTERM)
            data = b""
            while b"\r\n\r\n" not in data or len(data) < 1000:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:300]
        assert srv.proc.wait(20) == 0
    finally:
        _stop(srv.proc)
