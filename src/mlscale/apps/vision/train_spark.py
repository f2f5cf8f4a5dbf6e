"""Training the vision CNN data-parallel with Spark's own ``TorchDistributor`` (DDP over gloo).

:func:`fit_distributed` starts ``num_processes`` training processes through
``pyspark.ml.torch.distributor.TorchDistributor``: on the driver with
``local_mode=True`` (what the tests use: two processes), or as a barrier stage
on the cluster's executors otherwise (then ``data`` must be a path every
executor can read). Each process opens the data itself, takes the same
seeded split and normalisation as :func:`~mlscale.apps.vision.train_local.fit`,
and runs the same :func:`~mlscale.apps.vision.train_local.train_loop` on every
``world``-th image, its gradients averaged by DDP; rank 0 sends the best
weights back as safetensors bytes (never a pickle of the model), and the
driver builds the same :class:`~mlscale.apps.vision.model.VisionModel` as the
local trainer, hence the same artifact.

The effective batch is ``num_processes x batch_size``; the learning rate is
not scaled, which keeps the recipe of the local trainer (see the README for
the measured accuracy of both).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from mlscale.apps.vision._deps import require
from mlscale.apps.vision.codec import load_weights
from mlscale.apps.vision.model import VisionMeta, VisionModel
from mlscale.apps.vision.params import VisionParams
from mlscale.errors import EngineError

__all__ = ["fit_distributed"]


def _worker(spec: str, data_dir: str, params_dict: dict[str, Any], on_error: str, threads: int) -> dict[str, Any]:
    """One DDP process (runs under torchrun, started by TorchDistributor); rank 0's result is returned."""
    import torch
    import torch.distributed as dist

    from mlscale.apps.vision.codec import weights_bytes
    from mlscale.apps.vision.data import open_dataset
    from mlscale.apps.vision.net import build_net
    from mlscale.apps.vision.train_local import prepare, train_loop

    params = VisionParams.from_dict(params_dict)
    dist.init_process_group("gloo")
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        torch.set_num_threads(threads or max(1, (os.cpu_count() or 2) // world))
        dataset = open_dataset(spec, data_dir=Path(data_dir), on_error=on_error)
        train_idx, val_idx, meta = prepare(dataset, params)
        torch.manual_seed(params.seed)  # the same initial weights on every rank (DDP also broadcasts them)
        net = build_net(meta.spec)
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        history, best = train_loop(
            ddp, dataset, train_idx, val_idx, meta, params, torch.device("cpu"), rank=rank, world=world, progress=False
        )
        net.load_state_dict(best)
        result = (
            {
                "weights": weights_bytes(net),
                "meta": meta.to_dict(),
                "history": history,
                "skipped": dataset.skipped,
                "world": world,
            }
            if rank == 0
            else None
        )
        # Every torchrun process writes its return value to the same output file (pyspark's run script), in
        # whatever order they finish: each returns rank 0's result, so the file holds it whoever writes last.
        shared: list[Any] = [result]
        dist.broadcast_object_list(shared, src=0)
        out: dict[str, Any] = shared[0]
        return out
    finally:
        dist.destroy_process_group()


def fit_distributed(
    spec: str,
    params: VisionParams,
    *,
    data_dir: Path,
    num_processes: int = 2,
    local_mode: bool = True,
    session: Any = None,
    threads: int = 0,
) -> VisionModel:
    """Train like :func:`~mlscale.apps.vision.train_local.fit`, on ``num_processes`` DDP processes.

    ``session`` is the active ``SparkSession`` (TorchDistributor finds it
    itself when None); ``threads`` is each process's torch threads (0: the
    cores shared out among the processes). GPU training through the distributor is not wired:
    the processes train on the CPU.
    """
    params.validate()
    require("torch")
    distributor_mod = require("pyspark.ml.torch.distributor")
    if session is not None:
        _ = session.sparkContext  # TorchDistributor reads the active session; make sure it exists
    distributor = distributor_mod.TorchDistributor(num_processes=num_processes, local_mode=local_mode, use_gpu=False)
    try:
        # TorchDistributor (pyspark 4.x) never closes the pipe of its torchrun child's output: the pipe is freed
        # when its _execute_command returns, inside this call, with a ResourceWarning that is not ours to fix.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            out = distributor.run(_worker, str(spec), str(data_dir), params.to_dict(), params.on_error, threads)
    except Exception as err:  # a failed worker surfaces as RuntimeError/Py4J errors with the torchrun log
        lines = str(err).strip().splitlines()
        raise EngineError(f"distributed training failed: {lines[-1] if lines else repr(err)}") from None
    if not isinstance(out, dict) or "weights" not in out:
        raise EngineError("distributed training returned no weights from rank 0")
    meta = VisionMeta.from_dict(out["meta"])
    net = load_weights(out["weights"], meta, where="rank 0 weights")
    return VisionModel(net, meta, params, list(out["history"]), int(out["skipped"]))
