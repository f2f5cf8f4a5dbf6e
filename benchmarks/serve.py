"""Serving benchmark: ``mlscale serve`` vs a plain FastAPI endpoint vs nginx serving a static file.

Single-user top-10 on the MovieLens-100k model, measured with ``wrk`` on
loopback: each server pinned to CPU 0 (``taskset``), ``wrk`` to CPU 1, users
rotated over every user of the model (a Lua script), so nothing is served from
a cache. The three candidates answer the same URLs with bodies of the same size:

- ``mlscale``: ``mlscale serve`` with one worker;
- ``fastapi``: the endpoint a user would write, ``async def`` calling
  ``model.recommend([user], 10)`` per request, on uvicorn (with uvloop and
  httptools when installed);
- ``nginx``: one worker serving a static copy of an mlscale answer.

All servers run at once (idle ones cost nothing) and the candidates take turns
for ``--rounds`` interleaved rounds, so that on a machine shared with other
work each round compares like with like; medians are reported. Then
``mlscale`` alone at fewer connections (latency at a given throughput: ``wrk``
is closed-loop, so fewer connections means less queueing), and the memory of
``mlscale serve --workers 1`` and ``--workers 2`` on MovieLens-100k and on a
synthetic 1M-user model (RSS, PSS and USS per process; the model files are
mapped, so their pages are shared).

Run: ``python -m benchmarks.serve [--duration 10] [--out DIR]``. Needs ``wrk``
and ``nginx`` (``apt-get install -y wrk nginx``; installed automatically when
running as root with apt-get), FastAPI and uvicorn for the baseline, psutil for
the memory figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "main", "run"]

REPO = Path(__file__).resolve().parents[1]
PATH = "/v1/models/ml/recommend/"


def add_parser(sub: Any) -> None:
    """Add ``serve`` to ``python -m benchmarks``."""
    p = sub.add_parser("serve", help="mlscale serve vs FastAPI vs nginx static, with wrk")
    _arguments(p)
    p.set_defaults(handler=run)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default: 10)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every candidate (default: 3)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections, head to head (default: 64)")
    p.add_argument(
        "--sweep",
        default="16,32",
        help="connection counts for mlscale's latency sweep (default: 16,32)",
    )
    p.add_argument(
        "--big-users",
        type=int,
        default=1_000_000,
        help="users of a synthetic model for the memory figures (default: 1000000; 0: skip)",
    )
    p.add_argument("--data-dir", type=Path, default=None, help="data sets folder (default: MLSCALE_DATA_DIR)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="where the JSON goes")


# -- tools ---------------------------------------------------------------------------------


def _need_tools() -> None:
    missing = [t for t in ("wrk", "nginx", "taskset") if shutil.which(t) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {', '.join(missing)} with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk", "nginx"], check=False)
        missing = [t for t in ("wrk", "nginx", "taskset") if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: install them (apt-get install -y wrk nginx util-linux)")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs 2 CPUs: the server on one, wrk on the other")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _process(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None, cpu: str = "0") -> Iterator[int]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", cpu, *cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_ready(url: str, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{url} never answered; log:\n{log.read_text()[-3000:]}")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, lua: Path, connections: int, duration: int) -> dict[str, Any]:
    """One wrk run on CPU 1: requests/s, latency percentiles (ms), errors."""
    cmd = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(lua),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.MULTILINE)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {
        "connections": connections,
        "rps": round(rps),
        "p50_ms": pct.get("50"),
        "p90_ms": pct.get("90"),
        "p99_ms": pct.get("99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sock.group(1).strip() if sock else "",
    }


# -- candidates --------------------------------------------------------------------------


_FASTAPI = '''
"""The baseline: a plain FastAPI endpoint calling the model per request."""
import os
from fastapi import FastAPI
from mlscale.apps.recommend import from_artifact
from mlscale.registry import open_store

model = from_artifact(open_store(os.environ["BENCH_REGISTRY"]).load("recommend/ml"))
app = FastAPI()


@app.get("/v1/models/ml/recommend/{user}")
async def recommend(user: int, k: int = 10) -> dict:
    recs = model.recommend([user], k)
    ok = recs.valid[0]
    return {
        "model": "recommend/ml",
        "version": 1,
        "results": [
            {"user": user, "strategy": str(recs.strategy[0]), "items": recs.items[0][ok].tolist(),
             "scores": [round(s, 6) for s in recs.scores[0][ok].tolist()]}
        ],
    }
'''

_FASTPATH = '''
"""FastAPI again, but calling mlscale's serving predictor per request (no batching): isolates the server."""
import os
from fastapi import FastAPI
from fastapi.responses import Response
import msgspec
from mlscale.apps import get_application
from mlscale.apps.recommend.predictor import RecommendRequest
from mlscale.registry import open_store

predictor = get_application("recommend").predictor(open_store(os.environ["BENCH_REGISTRY"]).load("recommend/ml"))
app = FastAPI()


@app.get("/v1/models/ml/recommend/{user}")
async def recommend(user: int, k: int = 10) -> Response:
    out = predictor.recommend_batch([RecommendRequest(users=[user], k=k)])[0]
    return Response(msgspec.json.encode(out), media_type="application/json")
'''

_NGINX = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests 10000000;
  server {{
    listen 127.0.0.1:{port};
    default_type application/json;
    root {dir}/www;
    location / {{ try_files /answer.json =404; }}
  }}
}}
"""


def _train(registry: Path, data_dir: Path) -> None:
    from mlscale.cli import main as mlscale

    data = str(data_dir / "movielens-100k" / "u.data")
    # ALS outright: the serving figures are of a factor model (the no-flag default may pick EASE)
    argv = ["train", "recommend", "--data", data, "--name", "ml", "--model", "als"]
    status = mlscale([*argv, "--registry", str(registry), "--quiet"])
    if status != 0:
        raise SystemExit("training the MovieLens-100k model failed")


def _publish_big(registry: Path, users: int, items: int = 20_000, factors: int = 64) -> None:
    """A recommender artifact with random factors: big enough to see whether workers share it."""
    import numpy as np

    from mlscale.registry import open_store

    rng = np.random.default_rng(0)
    arrays = {
        "user_factors": rng.standard_normal((users, factors), dtype=np.float32),
        "item_factors": rng.standard_normal((items, factors), dtype=np.float32),
        "user_ids": np.arange(users, dtype=np.int64),
        "item_ids": np.arange(items, dtype=np.int64),
        "seen_indptr": np.zeros(users + 1, dtype=np.int32),
        "seen_indices": np.zeros(0, dtype=np.int32),
        "seen_data": np.zeros(0, dtype=np.float32),
        "item_popularity": np.ones(items, dtype=np.int64),
    }
    open_store(registry).publish(
        "recommend",
        "big",
        arrays=arrays,
        params={"factors": factors},
        engine="synthetic",
        data_fingerprint="random",
        extra={"fold_in_weight": 1.0},
    )


def _mlscale_cmd(registry: Path, port: int, workers: int, model: str = "ml") -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from mlscale.cli import main; sys.exit(main())",
        "serve",
        "--registry",
        str(registry),
        "--model",
        f"{model}=recommend/{model}",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def _memory(pid: int) -> dict[str, Any]:
    """RSS / PSS / USS (MiB) of the supervisor and each worker, and the model files' share."""
    import psutil

    def one(proc: psutil.Process) -> dict[str, Any]:
        info = proc.memory_full_info()
        mapped_rss = mapped_pss = 0
        with contextlib.suppress(psutil.Error):
            for m in proc.memory_maps(grouped=True):
                if "/registry/" in m.path:
                    mapped_rss += m.rss
                    mapped_pss += m.pss
        mib = 1 << 20
        return {
            "pid": proc.pid,
            "rss_mib": round(info.rss / mib, 1),
            "pss_mib": round(info.pss / mib, 1),
            "uss_mib": round(info.uss / mib, 1),
            "model_files_rss_kib": mapped_rss >> 10,
            "model_files_pss_kib": mapped_pss >> 10,
        }

    root = psutil.Process(pid)
    supervisor = next(p for p in [root, *root.children(recursive=True)] if "serve" in " ".join(p.cmdline()))
    workers = [one(p) for p in supervisor.children()]
    sup = one(supervisor)
    return {
        "supervisor": sup,
        "workers": workers,
        "total_pss_mib": round(sup["pss_mib"] + sum(w["pss_mib"] for w in workers), 1),
    }


def _mean_batch(url: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics") as resp:
        text = resp.read().decode()
    labels = r'\{model="ml",action="recommend"\} (\S+)'
    batches = sum(float(v) for v in re.findall(rf"^mlscale_batch_requests_count{labels}", text, re.M))
    reqs = sum(float(v) for v in re.findall(rf"^mlscale_batch_requests_sum{labels}", text, re.M))
    return round(reqs / max(batches, 1), 1)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def run(args: argparse.Namespace) -> int:
    """Run the whole comparison; prints a table and writes ``serve.json``."""
    from benchmarks._harness import host_info

    _need_tools()
    data_dir = args.data_dir or Path(os.environ.get("MLSCALE_DATA_DIR", str(REPO.parent / "shared" / "data")))
    work = Path(tempfile.mkdtemp(prefix="mlscale-bench-serve-"))
    registry = work / "registry"
    _train(registry, data_dir)
    from mlscale.apps.recommend import from_artifact
    from mlscale.registry import open_store

    users = from_artifact(open_store(registry).load("recommend/ml")).user_ids_.tolist()
    lua = work / "users.lua"
    lua.write_text(
        "local users = {" + ",".join(map(str, users)) + "}\nlocal i = 0\n"
        f'request = function()\n  i = i % #users + 1\n  return wrk.format("GET", "{PATH}" .. users[i])\nend\n'
    )
    env = dict(os.environ, BENCH_REGISTRY=str(registry), PYTHONPATH=str(work))
    (work / "plain_fastapi.py").write_text(textwrap.dedent(_FASTAPI))
    (work / "fastpath_fastapi.py").write_text(textwrap.dedent(_FASTPATH))
    results: dict[str, Any] = {
        "host": host_info(),
        "duration_s": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "runs": {},
        "sweep": {},
    }

    # Every server runs at once on CPU 0 (idle ones cost nothing) and the candidates take turns, round after
    # round: on a machine shared with other work, each round's ratios compare like with like.
    urls: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        port = _free_port()
        log = work / "mlscale.log"
        stack.enter_context(_process(_mlscale_cmd(registry, port, 1), log, env))
        _wait_ready(f"http://127.0.0.1:{port}/readyz", log)
        urls["mlscale"] = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{urls['mlscale']}{PATH}{users[0]}") as resp:
            answer = resp.read()
        results["response_bytes"] = len(answer)
        try:
            import fastapi  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:
            results["skipped"] = {"fastapi": "pip install fastapi uvicorn[standard]"}
        else:
            for name, module in (("fastapi", "plain_fastapi"), ("fastapi+predictor", "fastpath_fastapi")):
                port = _free_port()
                log = work / f"{module}.log"
                cmd = [sys.executable, "-m", "uvicorn", f"{module}:app", "--port", str(port)]
                stack.enter_context(_process([*cmd, "--log-level", "warning", "--no-access-log"], log, env))
                _wait_ready(f"http://127.0.0.1:{port}{PATH}{users[0]}", log)
                urls[name] = f"http://127.0.0.1:{port}"
        port = _free_port()
        (work / "www").mkdir()
        (work / "www" / "answer.json").write_bytes(answer)
        # nginx's workers drop root for an unprivileged user, who must be able to read the file.
        for path in (work, work / "www", work / "www" / "answer.json"):
            path.chmod(0o755)
        conf = work / "nginx.conf"
        conf.write_text(_NGINX.format(dir=work, port=port))
        log = work / "nginx.log"
        stack.enter_context(_process(["nginx", "-c", str(conf), "-e", str(work / "nginx-error.log")], log))
        _wait_ready(f"http://127.0.0.1:{port}{PATH}1", log)
        urls["nginx"] = f"http://127.0.0.1:{port}"

        for url in urls.values():
            wrk(url, lua, args.connections, 2)  # warm-up
        for round_ in range(args.rounds):
            for name, url in urls.items():
                results["runs"].setdefault(name, []).append(wrk(url, lua, args.connections, args.duration))
                print(f"round {round_ + 1}: {name} {results['runs'][name][-1]['rps']} req/s", file=sys.stderr)
            for c in args.sweep.split(","):
                results["sweep"].setdefault(c, []).append(wrk(urls["mlscale"], lua, int(c), args.duration))
        results["mlscale_mean_batch"] = _mean_batch(urls["mlscale"])

    runs = results["runs"]
    results["candidates"] = {
        name: {
            "rps_median": _median([r["rps"] for r in rs]),
            "rps_max": max(r["rps"] for r in rs),
            "p50_ms_median": _median([r["p50_ms"] for r in rs]),
            "p99_ms_median": _median([r["p99_ms"] for r in rs]),
            "errors": sum(r["non_2xx"] + (1 if r["socket_errors"] else 0) for r in rs),
        }
        for name, rs in runs.items()
    }
    results["ratios"] = {
        other: _median([m["rps"] / o["rps"] for m, o in zip(runs["mlscale"], runs[other], strict=True)])
        for other in runs
        if other != "mlscale"
    }

    with contextlib.suppress(ImportError):
        import psutil  # noqa: F401

        models = ["ml"]
        if args.big_users:
            _publish_big(registry, args.big_users)
            models.append("big")
        for model in models:
            for workers in (1, 2):
                port = _free_port()
                log = work / f"mlscale-{model}-{workers}.log"
                with _process(_mlscale_cmd(registry, port, workers, model), log, env, cpu="0,1") as pid:
                    _wait_ready(f"http://127.0.0.1:{port}/readyz", log, timeout=300)
                    for user in users[:200]:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/{model}/recommend/{user}") as r:
                            r.read()
                    results[f"memory_{model}_{workers}_workers"] = _memory(pid)

    _report(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve.json").write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _report(r: dict[str, Any]) -> None:
    size, rounds = r["response_bytes"], r["rounds"]
    print(
        f"\nsingle-user top-10, MovieLens-100k, {size} B answers, server on 1 core, wrk -c{r['connections']} on "
        f"the other; {rounds} interleaved rounds of {r['duration_s']} s (median, max)"
    )
    print(f"{'candidate':<18} {'req/s':>8} {'max':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'mlscale is':>11}")
    for name, v in r["candidates"].items():
        ratio = f"{r['ratios'][name]:.2f}x" if name in r["ratios"] else ""
        print(
            f"{name:<18} {v['rps_median']:>8.0f} {v['rps_max']:>8} {v['p50_ms_median']:>8.2f} "
            f"{v['p99_ms_median']:>8.2f} {v['errors']:>7} {ratio:>11}"
        )
    for name, why in r.get("skipped", {}).items():
        print(f"{name:<18} skipped: {why}")
    print(f"mean requests per model call: {r['mlscale_mean_batch']}")
    print("\nmlscale by connections (each round):")
    for c, rs in r["sweep"].items():
        cells = "; ".join(f"{x['rps']} req/s p99 {x['p99_ms']:.2f} ms" for x in rs)
        print(f"  c={c:<3} {cells}")
    print("\nmemory (MiB; model files: the registry arrays mapped by each worker):")
    for key, mem in r.items():
        if not key.startswith("memory_"):
            continue
        _, model, workers, _ = key.split("_")
        for w in mem["workers"]:
            files = f"model files RSS {w['model_files_rss_kib'] >> 10} / PSS {w['model_files_pss_kib'] >> 10}"
            print(
                f"  {model:<4} {workers} worker(s), pid {w['pid']}: RSS {w['rss_mib']} PSS {w['pss_mib']} "
                f"USS {w['uss_mib']}; {files}"
            )
        total, sup = mem["total_pss_mib"], mem["supervisor"]["pss_mib"]
        print(f"  {model:<4} {workers} worker(s): total PSS {total} (supervisor {sup})")


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.serve``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.split("\n")[0])
    _arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
