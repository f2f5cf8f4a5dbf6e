"""A serving fleet on one machine: separate network hosts made of Linux network namespaces.

Used by the fleet tests (``tests/fleet/test_fleet.py``) and the fleet benchmark
(``python -m benchmarks fleet``). Each "host" is a namespace with its own
loopback, one veth link into a bridge that lives in a namespace of its own, and
one address in 10.x.y.0/24; nothing gets an address in the root namespace, and
:meth:`FleetLab.close` removes every namespace (and so every link) it made.

Hosts: ``s3`` (moto's S3-compatible server), ``lb`` (nginx, round robin),
``gen`` (the load generator), ``ops`` (where promotions are made from: the
"sixth place"), ``srv1``..``srvN`` (``mlscale serve`` on the s3 registry, each
with its own host cache). The test process cannot reach the hosts itself (no
address in the root namespace), so it drives them through :class:`Agent`: a
Python process in a namespace that runs code sent over a pipe.

nginx (open source) has no active health checks: ``/readyz`` is not polled.
Readiness is enforced passively instead: a host that refuses connections, or
answers 502/503 (a draining ``mlscale serve`` answers 503), is retried on the
next host (``proxy_next_upstream``) and taken out for ``fail_timeout`` after
``max_fails`` failures. Only idempotent requests (GET) are retried that way;
a POST in flight on a dying host fails (nginx's ``non_idempotent`` is left off,
because a feedback POST has side effects).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Agent", "FleetLab", "Host", "netns_unavailable"]

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
SECRET = "fleetlab-secret-do-not-print-9fK2"
ACCESS_KEY = "AKIAFLEETLAB00000001"
S3_PORT = 5000
SERVE_PORT = 8000

_AGENT = r"""
import io, json, os, sys, traceback
out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # what the code prints goes to the log, never into the reply channel
scope = {}
for line in sys.stdin:
    msg = json.loads(line)
    scope.update(msg["vars"])
    scope["result"] = None
    try:
        exec(msg["code"], scope)
        out.write(json.dumps({"ok": True, "result": scope["result"]}) + "\n")
    except BaseException as err:
        out.write(json.dumps({"ok": False, "error": traceback.format_exc()}) + "\n")
"""


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here (a reason to skip), or ``None`` when they can."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns); CI runs as root"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    probe = f"mlsprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Host:
    """One network namespace with one address."""

    name: str
    netns: str
    address: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def popen(self, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside the host, its output in ``log``, in a process group of its own."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to every process group started on this host (SIGKILL: the host "dies")."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
        self.procs = [p for p in self.procs if p.poll() is None]


class Agent:
    """A Python process inside a host that runs the code it is sent (the test's hands there)."""

    def __init__(self, host: Host, env: dict[str, str], log: Path) -> None:
        self.host = host
        self._log = open(log, "ab")  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, sys.executable, "-c", _AGENT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,
        )
        self._pending = 0

    def send(self, code: str, **variables: Any) -> None:
        """Start running ``code`` (it sets ``result``); collect with :meth:`receive`."""
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps({"code": code, "vars": variables}) + "\n").encode())
        self._proc.stdin.flush()
        self._pending += 1

    def receive(self) -> Any:
        """The ``result`` of the oldest code sent; raises with the remote traceback on failure."""
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        self._pending -= 1
        if not line:
            raise RuntimeError(f"the agent on {self.host.name} died (see its log)")
        reply = json.loads(line)
        if not reply["ok"]:
            raise RuntimeError(f"on {self.host.name}:\n{reply['error']}")
        return reply["result"]

    def call(self, code: str, **variables: Any) -> Any:
        """Run ``code`` and return its ``result``."""
        self.send(code, **variables)
        return self.receive()

    def close(self) -> None:
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._log.close()


class FleetLab:
    """The namespaces, the object store, the balancer and the serving hosts (see the module docstring)."""

    def __init__(self, workdir: Path, *, serving_hosts: int = 3, poll_interval: float = 0.5) -> None:
        self.workdir = workdir
        self.tag = secrets.token_hex(2)
        self.subnet = f"10.{200 + int(self.tag[:2], 16) % 50}.{int(self.tag[2:], 16)}"
        self.poll_interval = poll_interval
        self.bridge_ns = f"mls{self.tag}-br"
        self.hosts: dict[str, Host] = {}
        self._made: list[str] = []
        self._agents: list[Agent] = []
        self._links = 0
        self.bucket = "fleet-registry"
        self.registry = f"s3://{self.bucket}/prod"
        self.names = ["s3", "lb", "gen", "ops", *(f"srv{i}" for i in range(1, serving_hosts + 1))]
        self.ops: Agent | None = None
        self.gen: Agent | None = None

    # -- namespaces --------------------------------------------------------------------------------

    def _netns(self, name: str) -> str:
        netns = f"mls{self.tag}-{name}"
        _ip("netns", "add", netns)
        self._made.append(netns)
        return netns

    def add_host(self, name: str) -> Host:
        """A new namespace wired into the bridge, with the next free address."""
        netns = self._netns(name)
        self._links += 1
        address = f"{self.subnet}.{10 + self._links}"
        inside, peer = f"v{self.tag}{self._links}", f"b{self.tag}{self._links}"
        _ip("link", "add", inside, "netns", netns, "type", "veth", "peer", "name", peer, "netns", self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "set", peer, "master", "br0", "up")
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", inside)
        _ip("-n", netns, "link", "set", inside, "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        host = Host(name, netns, address)
        self.hosts[name] = host
        return host

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every process: the standard AWS chain pointing at the s3 host."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=f"http://{self.hosts['s3'].address}:{S3_PORT}",
            AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE="/nonexistent/aws-config",
            AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
            PYTHONUNBUFFERED="1",
        )
        env.pop("MLSCALE_API_TOKEN", None)
        env.update(extra)
        return env

    def start(self) -> FleetLab:
        """Make every host and start the store and the agents (the serving hosts come with publish)."""
        if NGINX is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        _ip("netns", "add", self.bridge_ns)
        self._made.append(self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        for name in self.names:
            self.add_host(name)
        s3 = self.hosts["s3"]
        s3.popen(
            [sys.executable, "-m", "moto.server", "-H", s3.address, "-p", str(S3_PORT)],
            self.workdir / "s3.log",
            self.env(),
        )
        self.ops = self.agent("ops")
        self.gen = self.agent("gen")
        self.ops.call(_WAIT_HTTP, url=f"http://{s3.address}:{S3_PORT}/", timeout=60.0)
        self.ops.call("import boto3; boto3.client('s3').create_bucket(Bucket=bucket)", bucket=self.bucket)
        return self

    def agent(self, name: str) -> Agent:
        agent = Agent(self.hosts[name], self.env(), self.workdir / f"agent-{name}.log")
        self._agents.append(agent)
        return agent

    # -- the registry -------------------------------------------------------------------------------

    def publish(self, seed: int) -> int:
        """Publish a small real recommender from the ops host; its version number."""
        assert self.ops is not None
        return int(self.ops.call(_PUBLISH, registry=self.registry, seed=seed, cache=str(self.workdir / "ops-cache")))

    def promote(self, version: int, alias: str = "production") -> None:
        assert self.ops is not None
        self.ops.call(_PROMOTE, registry=self.registry, ref=f"recommend/demo@{version}", alias=alias)

    # -- serving hosts and the balancer ---------------------------------------------------------

    def serving(self) -> list[Host]:
        return [h for n, h in self.hosts.items() if n.startswith("srv")]

    def start_serving(self, host: Host, *, cache: bool = True, workers: int = 1) -> None:
        """``mlscale serve`` on ``host`` at ``recommend/demo@production`` (``cache=False``: an empty cache)."""
        cache_dir = self.workdir / f"{host.name}-cache"
        if not cache:
            shutil.rmtree(cache_dir, ignore_errors=True)
        argv = [sys.executable, "-m", "mlscale.cli", "serve", "--registry", self.registry]
        argv += ["--host", "0.0.0.0", "--port", str(SERVE_PORT), "--workers", str(workers)]
        argv += ["--model", "demo=recommend/demo@production", "--poll-interval", str(self.poll_interval)]
        host.popen(argv, self.workdir / f"{host.name}.log", self.env(MLSCALE_CACHE_DIR=str(cache_dir)))

    def wait_ready(self, hosts: list[Host], timeout: float = 90.0) -> dict[str, float]:
        """Seconds until each host's ``/readyz`` answered 200, polled from the ops host."""
        assert self.ops is not None
        urls = {h.name: f"http://{h.address}:{SERVE_PORT}/readyz" for h in hosts}
        got: dict[str, float] = self.ops.call(_WAIT_ALL, urls=urls, timeout=timeout)
        return got

    def versions(self) -> dict[str, int | None]:
        """The version each serving host serves now (``None``: no answer)."""
        assert self.ops is not None
        urls = {h.name: f"http://{h.address}:{SERVE_PORT}/v1/models/demo" for h in self.serving()}
        got: dict[str, int | None] = self.ops.call(_VERSIONS, urls=urls)
        return got

    def start_balancer(self, hosts: list[Host] | None = None) -> str:
        """nginx on the lb host, round robin over ``hosts`` (default: every serving host); its URL."""
        assert NGINX is not None
        lb = self.hosts["lb"]
        conf_dir = self.workdir / f"nginx-{secrets.token_hex(2)}"
        conf_dir.mkdir()
        servers = "\n".join(
            f"    server {h.address}:{SERVE_PORT} max_fails=1 fail_timeout=3s;" for h in (hosts or self.serving())
        )
        (conf_dir / "nginx.conf").write_text(_NGINX_CONF.format(dir=conf_dir, servers=servers, listen=lb.address))
        lb.kill(signal.SIGQUIT)  # a previous balancer, if any
        lb.popen([NGINX, "-p", str(conf_dir), "-c", str(conf_dir / "nginx.conf")], conf_dir / "out.log", self.env())
        url = f"http://{lb.address}"
        assert self.ops is not None
        self.ops.call(_WAIT_HTTP, url=url + "/healthz", timeout=30.0)
        return url

    # -- load -------------------------------------------------------------------------------------

    def start_load(self, url: str, *, rate: float, duration: float, warmup: float = 0.5, p99_ms: float = 50) -> None:
        """Open-loop load from the gen host (collect with :meth:`load_result`)."""
        assert self.gen is not None
        self.gen.send(_LOAD, url=url, rate=rate, duration=duration, warmup=warmup, p99=f"p99={p99_ms:g}ms")

    def load_result(self) -> dict[str, Any]:
        """The load test report (``LoadReport.as_dict``) of the load started last."""
        assert self.gen is not None
        report: dict[str, Any] = self.gen.receive()
        return report

    def knee(self, url: str, *, start: float, max_rate: float, duration: float = 2.0, p99_ms: float = 50) -> Any:
        """A knee search from the gen host; the report as a dict."""
        assert self.gen is not None
        return self.gen.call(_KNEE, url=url, rate=start, max_rate=max_rate, duration=duration, p99=f"p99={p99_ms:g}ms")

    def ladder(self, url: str, rates: list[float], *, duration: float = 2.0) -> list[dict[str, Any]]:
        """Fixed-rate steps at every rate (no early stop), from the gen host: one dict per step."""
        assert self.gen is not None
        steps: list[dict[str, Any]] = self.gen.call(_LADDER, url=url, rates=rates, duration=duration)
        return steps

    # -- teardown ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process, then remove every namespace made (links go with them)."""
        for agent in self._agents:
            with contextlib.suppress(Exception):
                agent.close()
        for host in self.hosts.values():
            host.kill(signal.SIGKILL)
        for netns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False, timeout=30)
        self._made.clear()

    def __enter__(self) -> FleetLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def fleet(workdir: Path, **kwargs: Any) -> Iterator[FleetLab]:
    """A started :class:`FleetLab`, always removed afterwards."""
    lab = FleetLab(workdir, **kwargs)
    try:
        yield lab.start()
    finally:
        lab.close()


_WAIT_HTTP = r"""
import time, urllib.request
deadline = time.monotonic() + timeout
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            break
    except urllib.error.HTTPError:
        break  # it answers: that is all we wait for
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
"""

_WAIT_ALL = r"""
import time, urllib.request
start = time.monotonic()
result = {}
while len(result) < len(urls):
    for name, u in urls.items():
        if name in result:
            continue
        try:
            with urllib.request.urlopen(u, timeout=2) as r:
                if r.status == 200:
                    result[name] = round(time.monotonic() - start, 3)
        except OSError:
            pass
    if time.monotonic() - start > timeout:
        raise TimeoutError(f"not ready after {timeout}s: {sorted(set(urls) - set(result))}")
    time.sleep(0.05)
"""

_VERSIONS = r"""
import json, urllib.request
result = {}
for name, u in urls.items():
    try:
        with urllib.request.urlopen(u, timeout=2) as r:
            result[name] = json.loads(r.read())["version"]
    except OSError:
        result[name] = None
"""

_PUBLISH = r"""
import numpy as np
from mlscale.apps.recommend import ImplicitRecommender, publish_model
from mlscale.apps.recommend.matrix import InteractionMatrix
from mlscale.registry import ObjectStore
rng = np.random.default_rng(seed)
users = rng.integers(0, 500, 20000)
items = (users % 20) * 10 + rng.integers(0, 10, 20000)
model = ImplicitRecommender(factors=16, iterations=3, threads=1, seed=seed).fit(
    InteractionMatrix.from_arrays(users, items))
store = ObjectStore(registry, cache_dir=cache)
result = publish_model(store, "demo", model, metrics={}, engine="local", data_fingerprint=f"seed-{seed}").version
"""

_PROMOTE = r"""
from mlscale.registry import open_store
open_store(registry).promote(ref, alias)
"""

_STEP = r"""
from mlscale.loadtest import PlainScenario, Slo, StepSpec, run_loadtest
def _spec(rate, duration, warmup):
    return StepSpec(rate=rate, duration=duration, warmup=warmup, arrival="poisson", timeout=2.0,
                    max_connections=256, seed=0, closed_loop=0)
"""

_LOAD = (
    _STEP
    + r"""
report = run_loadtest(url, PlainScenario(""), _spec(rate, duration, warmup), Slo.parse([p99, "errors=0%"]),
                      mode="fixed", processes=1, metrics_url="")
result = report.as_dict()
"""
)

_KNEE = (
    _STEP
    + r"""
report = run_loadtest(url, PlainScenario(""), _spec(rate, duration, 0.5), Slo.parse([p99, "errors=0.1%"]),
                      mode="knee", processes=1, metrics_url="", knee_max_rate=max_rate, knee_refine=2)
result = report.as_dict()
"""
)

_LADDER = r"""
from mlscale.loadtest import PlainScenario, StepSpec
from mlscale.loadtest.generator import LoadGenerator
result = []
with LoadGenerator(url, PlainScenario("").requests(None, 1), processes=1) as gen:
    for rate in rates:
        s = gen.run(StepSpec(rate=rate, duration=duration, warmup=0.5, timeout=2.0, max_connections=256))
        result.append({"offered": rate, "achieved": round(s.achieved_rate, 1), "p99_ms": s.percentile_ms(99),
                       "error_rate": s.error_rate, "saturated": s.generator_saturated})
"""

_NGINX_CONF = """
worker_processes 1;
user root;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream fleet {{
{servers}
    keepalive 64;
  }}
  server {{
    listen {listen}:80 backlog=4096;
    location / {{
      proxy_pass http://fleet;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 3;
      proxy_connect_timeout 1s;
      proxy_read_timeout 5s;
    }}
    location = /healthz {{ return 200 "ok"; }}
  }}
}}
"""
