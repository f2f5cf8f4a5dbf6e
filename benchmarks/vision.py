"""Vision benchmark: serving, batch inference and training of the vision app, each beside a baseline.

Three parts, each measured side by side in one run (ratios are what to read; on a shared
machine the absolute figures are noisy):

- ``serve``: ``mlscale serve`` (one worker, pinned to CPU 0) classifying single 28x28 PNG bodies
  (real Fashion-MNIST test images, rotated by a Lua script) under ``wrk`` on CPU 1, against a plain
  FastAPI endpoint on CPU 0 that decodes the PNG with Pillow and runs the torch model eagerly per
  request, and against ONNX Runtime alone in a tight loop (one thread, preprocessed input) at
  batch sizes 1, 8 and 32: the ceiling of this CPU. Reports requests/s, p50/p99 and the mean
  micro-batch of ``mlscale serve``.
- ``batch``: ``mlscale precompute vision`` (:func:`~mlscale.apps.vision.predict.predict_local`) over a
  folder of PNGs, images/s, beside ONNX Runtime alone on the already-decoded images; with
  ``--spark``, :func:`~mlscale.apps.vision.predict.predict_spark` on ``local[2]`` too.
- ``train``: seconds per epoch of :func:`~mlscale.apps.vision.train_local.fit` beside a plain
  PyTorch loop over the same in-memory tensors, same network, optimiser, schedule, batch size and
  augmentation (so the ratio is mlscale's overhead: batch reads, validation, bookkeeping); with
  ``--spark``, :func:`~mlscale.apps.vision.train_spark.fit_distributed` with 2 processes.

The served model is trained for one epoch on a subset (serving and inference speed depend on the
network's shape, not on its accuracy). On a CUDA machine torch and ONNX Runtime pick the GPU
themselves (``--device auto``, the CUDA execution provider when installed).

Run: ``python -m benchmarks vision [--parts serve,batch,train] [--duration 10] [--out DIR]``. Needs
``wrk`` and ``taskset`` for ``serve``, FastAPI and uvicorn for its baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

REPO = Path(__file__).resolve().parents[1]
PATH = "/v1/models/fm/classify"


def add_parser(sub: Any) -> None:
    """Add ``vision`` to ``python -m benchmarks``."""
    p = sub.add_parser("vision", help="vision: serve vs FastAPI+torch vs ONNX Runtime; batch; training")
    p.add_argument("--parts", default="serve,batch,train", help="comma-separated parts (default: %(default)s)")
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default: 10)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved wrk rounds (default: 3)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default: 32)")
    p.add_argument("--images", type=int, default=2000, help="images for batch inference (default: 2000)")
    p.add_argument("--train-images", type=int, default=6000, help="images per training epoch (default: 6000)")
    p.add_argument("--spark", action="store_true", help="also the Spark candidates (local[2])")
    p.add_argument("--data-dir", type=Path, default=None, help="data sets folder (default: MLSCALE_DATA_DIR)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="where the JSON goes")
    p.set_defaults(handler=run)


_FASTAPI = '''
"""The baseline: a plain FastAPI endpoint decoding the PNG and running the torch model eagerly per request."""
import io, os
import numpy as np
import torch
from fastapi import FastAPI, Request
from PIL import Image
from mlscale.apps.vision.codec import decode
from mlscale.registry import open_store

torch.set_num_threads(1)
model = decode(open_store(os.environ["BENCH_REGISTRY"]).load("vision/fm"))
labels = list(model.meta.labels)
mean, std = model.meta.mean, model.meta.std
app = FastAPI()


@app.post("/v1/models/fm/classify")
async def classify(request: Request, k: int = 3) -> dict:
    image = Image.open(io.BytesIO(await request.body())).convert("L").resize((28, 28))
    x = torch.from_numpy(np.asarray(image, np.float32) / 255.0)[None, None]
    with torch.inference_mode():
        probs = torch.softmax(model.net((x - mean) / std), dim=1)[0]
    p, idx = probs.topk(k)
    return {"model": "vision/fm", "version": 1,
            "predictions": [{"labels": [labels[i] for i in idx.tolist()], "probabilities": p.tolist()}]}
'''


def _lua(pngs: list[bytes]) -> str:
    def literal(data: bytes) -> str:
        return '"' + "".join(f"\\{b}" for b in data) + '"'

    return (
        "local bodies = {" + ",".join(literal(p) for p in pngs) + "}\nlocal i = 0\n"
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "image/png"\n'
        f'request = function()\n  i = i % #bodies + 1\n  return wrk.format("POST", "{PATH}?k=3", nil, bodies[i])\nend\n'
    )


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _ort_ceiling(art: Any, images: Any, sizes: tuple[int, ...] = (1, 8, 32), seconds: float = 3.0) -> dict[str, float]:
    from mlscale.apps.vision.model import preprocess
    from mlscale.apps.vision.predictor import OnnxClassifier

    clf = OnnxClassifier(art.onnx, art.meta, threads=1)
    x = preprocess(images, art.meta)
    out = {}
    for size in sizes:
        batch = x[:size]
        clf.logits(batch)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            clf.logits(batch)
            n += size
        out[str(size)] = round(n / (time.perf_counter() - start))
    return out


def _serve_part(args: argparse.Namespace, work: Path, registry: Path, art: Any, images: Any) -> dict[str, Any]:
    from benchmarks.serve import _free_port, _process, _wait_ready, wrk
    from mlscale.apps.vision.scenario import encode_png

    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            return {"skipped": f"needs {tool} (apt-get install -y wrk util-linux)"}
    pngs = [encode_png(x) for x in images[:200]]
    lua = work / "pngs.lua"
    lua.write_text(_lua(pngs))
    env = dict(os.environ, BENCH_REGISTRY=str(registry), PYTHONPATH=f"{work}:{REPO}")
    (work / "plain_fastapi.py").write_text(textwrap.dedent(_FASTAPI))
    result: dict[str, Any] = {"runs": {}, "connections": args.connections, "duration_s": args.duration}
    urls: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        port = _free_port()
        log = work / "mlscale.log"
        cli = "import sys; from mlscale.cli import main; sys.exit(main())"
        cmd = [sys.executable, "-c", cli, "serve", "--registry", str(registry), "--model", "fm=vision/fm"]
        cmd += ["--port", str(port), "--workers", "1"]
        stack.enter_context(_process(cmd, log, dict(env, OMP_NUM_THREADS="1")))
        _wait_ready(f"http://127.0.0.1:{port}/readyz", log)
        urls["mlscale"] = f"http://127.0.0.1:{port}"
        try:
            import fastapi  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:
            result["skipped"] = {"fastapi": "pip install fastapi uvicorn"}
        else:
            port = _free_port()
            log = work / "fastapi.log"
            cmd = [sys.executable, "-m", "uvicorn", "plain_fastapi:app", "--port", str(port)]
            cmd += ["--log-level", "warning", "--no-access-log"]
            stack.enter_context(_process(cmd, log, dict(env, OMP_NUM_THREADS="1")))
            _wait_ready(f"http://127.0.0.1:{port}/openapi.json", log)
            urls["fastapi+torch"] = f"http://127.0.0.1:{port}"
        for url in urls.values():
            wrk(url, lua, args.connections, 2)  # warm-up
        for round_ in range(args.rounds):
            for name, url in urls.items():
                result["runs"].setdefault(name, []).append(wrk(url, lua, args.connections, args.duration))
                print(f"round {round_ + 1}: {name} {result['runs'][name][-1]['rps']} req/s", file=sys.stderr)
        with urllib.request.urlopen(f"{urls['mlscale']}/metrics") as resp:
            text = resp.read().decode()
        import re

        lab = r'\{model="fm",action="classify"\} (\S+)'
        calls = sum(float(v) for v in re.findall(rf"^mlscale_batch_requests_count{lab}", text, re.M))
        reqs = sum(float(v) for v in re.findall(rf"^mlscale_batch_requests_sum{lab}", text, re.M))
        result["mlscale_mean_batch"] = round(reqs / max(calls, 1), 1)
    result["onnxruntime_images_per_s"] = _ort_ceiling(art, images)
    runs = result["runs"]
    result["candidates"] = {
        name: {
            "rps_median": _median([r["rps"] for r in rs]),
            "p50_ms_median": _median([r["p50_ms"] for r in rs]),
            "p99_ms_median": _median([r["p99_ms"] for r in rs]),
            "errors": sum(r["non_2xx"] + (1 if r["socket_errors"] else 0) for r in rs),
        }
        for name, rs in runs.items()
    }
    m = result["candidates"]["mlscale"]["rps_median"]
    ratios = {"vs_onnxruntime_batch32": round(m / result["onnxruntime_images_per_s"]["32"], 3)}
    if "fastapi+torch" in runs:
        ratios["vs_fastapi_torch"] = round(
            _median([a["rps"] / b["rps"] for a, b in zip(runs["mlscale"], runs["fastapi+torch"], strict=True)]), 2
        )
    result["ratios"] = ratios
    return result


def _batch_part(args: argparse.Namespace, work: Path, art: Any, images: Any, session: Any) -> dict[str, Any]:
    from mlscale.apps.vision.predict import predict_local, predict_spark
    from mlscale.apps.vision.scenario import encode_png

    folder = work / "images"
    folder.mkdir(exist_ok=True)
    for i, x in enumerate(images[: args.images]):
        (folder / f"{i:05d}.png").write_bytes(encode_png(x))
    out: dict[str, Any] = {"images": min(args.images, len(images))}
    local = predict_local(art.onnx, art.meta, folder, work / "local.parquet", threads=1)
    out["local_images_per_s"] = round(local.images_per_second)
    out["onnxruntime_alone_images_per_s"] = _ort_ceiling(art, images[: args.images], sizes=(256,))["256"]
    if session is not None:
        remote = predict_spark(session, art.onnx, art.meta, folder, work / "spark.parquet")
        remote = predict_spark(session, art.onnx, art.meta, folder, work / "spark.parquet")  # warm JVM and workers
        out["spark_local2_images_per_s"] = round(remote.images_per_second)
    out["ratio_local_vs_onnxruntime"] = round(out["local_images_per_s"] / out["onnxruntime_alone_images_per_s"], 3)
    return out


def _plain_epoch(train: Any, params: Any, meta: Any) -> float:
    """One epoch of a plain PyTorch loop: same net, optimiser, schedule, batch size and augmentation."""
    import numpy as np
    import torch

    from mlscale.apps.vision.net import build_net
    from mlscale.apps.vision.train_local import augment

    torch.manual_seed(0)
    net = build_net(meta.spec)
    x_all = torch.from_numpy(np.ascontiguousarray(train.images.transpose(0, 3, 1, 2))).float() / 255.0
    y_all = torch.from_numpy(train.targets)
    n = len(y_all)
    steps = -(-n // params.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=params.lr, total_steps=steps)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    net.train()
    perm = torch.randperm(n, generator=gen)
    for s in range(steps):
        idx = perm[s * params.batch_size : (s + 1) * params.batch_size]
        xb = (augment(x_all[idx], params.crop_padding, gen) - meta.mean) / meta.std
        loss = torch.nn.functional.cross_entropy(net(xb), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return time.perf_counter() - start


def _train_part(args: argparse.Namespace, data_dir: Path, session: Any) -> dict[str, Any]:
    import torch

    from mlscale.apps.vision.data import ArrayDataset, open_dataset
    from mlscale.apps.vision.params import VisionParams
    from mlscale.apps.vision.train_local import fit, prepare

    full = open_dataset("fashion-mnist", data_dir=data_dir)
    assert isinstance(full, ArrayDataset)
    n = args.train_images
    data = ArrayDataset(full.images[:n], full.targets[:n], full.labels, where="subset")
    params = VisionParams(epochs=1)
    torch.set_num_threads(1)
    train_idx, _, meta = prepare(data, params)
    train = ArrayDataset(data.images[train_idx], data.targets[train_idx], data.labels, where="train part")
    out: dict[str, Any] = {"images": n, "train_images": len(train_idx), "threads": 1}
    plain = _plain_epoch(train, params, meta)
    model = fit(data, params, threads=1, progress=False, log=None)
    out["plain_pytorch_s_per_epoch"] = round(plain, 2)
    out["mlscale_s_per_epoch"] = round(model.history[0]["seconds"], 2)  # training and validation
    out["overhead"] = round(model.history[0]["seconds"] / plain - 1, 3)
    if session is not None:
        from mlscale.apps.vision.train_spark import fit_distributed

        folder_spec = "fashion-mnist"
        start = time.perf_counter()
        dist = fit_distributed(folder_spec, VisionParams(epochs=1), data_dir=data_dir, session=session)
        out["torchdistributor_2proc_full_epoch_s"] = round(dist.history[0]["seconds"], 2)
        out["torchdistributor_2proc_total_s"] = round(time.perf_counter() - start, 2)
    return out


def run(args: argparse.Namespace) -> int:
    """Run the chosen parts; print the figures and write ``vision.json``."""
    from benchmarks._harness import host_info
    from mlscale.apps.vision.codec import publish, read_artifact
    from mlscale.apps.vision.data import ArrayDataset, open_dataset
    from mlscale.apps.vision.params import VisionParams
    from mlscale.apps.vision.train_local import fit
    from mlscale.registry import open_store

    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    data_dir = args.data_dir or Path(os.environ.get("MLSCALE_DATA_DIR", str(REPO.parent / "shared" / "data")))
    work = Path(tempfile.mkdtemp(prefix="mlscale-bench-vision-"))
    registry = work / "registry"
    test = open_dataset("fashion-mnist", data_dir=data_dir, split="test")
    assert isinstance(test, ArrayDataset)
    train = open_dataset("fashion-mnist", data_dir=data_dir)
    assert isinstance(train, ArrayDataset)
    sub = ArrayDataset(train.images[:2000], train.targets[:2000], train.labels, where="subset")
    model = fit(sub, VisionParams(epochs=1), threads=1, progress=False, log=None)
    store = open_store(registry)
    publish(store, "fm", model, metrics={}, engine="local", data_fingerprint="bench")
    art = read_artifact(store.load("vision/fm"))
    results: dict[str, Any] = {"host": host_info(), "parts": sorted(parts)}
    session = None
    engine = None
    if args.spark and parts & {"batch", "train"}:
        from mlscale.engines.spark import SparkEngine

        engine = SparkEngine(master="local[2]")
        session = engine.session
    try:
        if "serve" in parts:
            results["serve"] = _serve_part(args, work, registry, art, test.images)
        if "batch" in parts:
            results["batch"] = _batch_part(args, work, art, test.images, session)
        if "train" in parts:
            results["train"] = _train_part(args, data_dir, session)
    finally:
        if engine is not None:
            engine.close()
    print(json.dumps({k: v for k, v in results.items() if k != "host"}, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vision.json").write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0
