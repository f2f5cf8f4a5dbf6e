"""Training the vision CNN with PyTorch on one machine (CPU by default, CUDA when present).

:func:`fit` carves a stratified validation split from the training data,
computes the normalisation on the training part, and runs AdamW with a
one-cycle schedule; each step reads its batch from the data set (images are
decoded a batch at a time), augments it with torch ops (random crop after
zero padding, horizontal flip), and after each epoch the validation accuracy
decides early stopping; the best epoch's weights are kept. Everything random
is seeded by ``params.seed``. :func:`train_loop` is the same loop for one
process among several (the Spark engine runs it under DDP).
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlscale.apps.vision._deps import require
from mlscale.apps.vision.data import ImageDataset
from mlscale.apps.vision.model import VisionMeta, VisionModel
from mlscale.apps.vision.net import build_net
from mlscale.apps.vision.params import VisionParams
from mlscale.errors import DataError

__all__ = ["augment", "evaluate", "fit", "normalisation", "prepare", "resolve_device", "split_indices", "train_loop"]

Log = Callable[[str], None]
_EVAL_BATCH = 1024


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def split_indices(
    targets: NDArray[np.int64], val_fraction: float, seed: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Stratified split of ``range(len(targets))`` into (train, validation), sorted.

    >>> tr, va = split_indices(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.25, seed=0)
    >>> len(tr), len(va), sorted(np.array([0, 0, 0, 0, 1, 1, 1, 1])[va].tolist())
    (6, 2, [0, 1])
    """
    rng = np.random.default_rng(seed)
    val: list[NDArray[np.int64]] = []
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        take = round(len(members) * val_fraction)
        take = min(max(take, 1), len(members) - 1) if len(members) > 1 else 0
        val.append(rng.permutation(members)[:take])
    val_idx = np.sort(np.concatenate(val)).astype(np.int64) if val else np.zeros(0, np.int64)
    mask = np.ones(len(targets), bool)
    mask[val_idx] = False
    return np.flatnonzero(mask).astype(np.int64), val_idx


def normalisation(
    dataset: ImageDataset, indices: NDArray[np.int64], *, seed: int, sample: int = 10_000
) -> tuple[float, float]:
    """Mean and standard deviation of the pixels (scaled to [0, 1]) of up to ``sample`` training images."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.permutation(indices)[:sample])
    total, total_sq, count = 0.0, 0.0, 0
    for x, _, _ in dataset.batches(1024, pick):
        v = x.astype(np.float64) / 255.0
        total += float(v.sum())
        total_sq += float((v * v).sum())
        count += v.size
    if not count:
        raise DataError(f"{dataset.where}: no readable training images")
    mean = total / count
    std = max(float(np.sqrt(max(total_sq / count - mean * mean, 0.0))), 1e-3)
    return mean, std


def resolve_device(name: str) -> Any:
    """``auto`` -> CUDA when available, else CPU; other names as torch spells them."""
    torch = require("torch")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DataError("device 'cuda' asked for, but torch sees no CUDA GPU", hint="use --device cpu or auto")
    return torch.device(name)


def augment(x: Any, padding: int, generator: Any) -> Any:
    """Random crop after zero-padding by ``padding`` pixels, and a horizontal flip of half the images.

    ``x`` is ``N x C x H x W`` with 0 as background; ``generator`` a ``torch.Generator`` on ``x``'s device.
    """
    torch = require("torch")
    n, _, h, w = x.shape
    if padding:
        padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    flip = torch.rand(n, generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def _to_input(x: NDArray[np.uint8], device: Any) -> Any:
    torch = require("torch")
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device).float().div_(255.0)


def _score(
    net: Any, dataset: ImageDataset, indices: NDArray[np.int64], meta: VisionMeta, device: Any
) -> tuple[float, float, int]:
    torch = require("torch")
    net.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    with torch.inference_mode():
        for x, y, _ in dataset.batches(_EVAL_BATCH, indices):
            inputs = (_to_input(x, device) - meta.mean) / meta.std
            logits = net(inputs)
            target = torch.from_numpy(y).to(device)
            loss_sum += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(1) == target).sum())
            seen += len(y)
    return (loss_sum / seen if seen else float("nan")), (correct / seen if seen else float("nan")), seen


def train_loop(
    net: Any,
    dataset: ImageDataset,
    train_idx: NDArray[np.int64],
    val_idx: NDArray[np.int64],
    meta: VisionMeta,
    params: VisionParams,
    device: Any,
    *,
    rank: int = 0,
    world: int = 1,
    progress: bool | None = None,
    log: Log | None = _stderr,
) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Train ``net`` (plain, or wrapped in DDP) on this process's share; return the history and the best weights.

    Every process shuffles the same way (seeded by epoch) and takes every
    ``world``-th image from ``rank``; each evaluates the whole validation split,
    so all agree on when to stop.
    """
    torch = require("torch")
    tqdm = require("tqdm").tqdm
    inner = getattr(net, "module", net)
    per_rank = len(train_idx) // world
    steps = max(1, -(-per_rank // params.batch_size))
    opt = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=params.lr, total_steps=params.epochs * steps)
    gen = torch.Generator(device=device)
    gen.manual_seed(params.seed * 1000 + rank)
    best_acc, best_epoch, best_state = -1.0, 0, copy.deepcopy(inner.state_dict())
    history: list[dict[str, float]] = []
    show = (sys.stderr.isatty() if progress is None else progress) and rank == 0
    for epoch in range(1, params.epochs + 1):
        start = time.perf_counter()
        perm = np.random.default_rng([params.seed, epoch]).permutation(train_idx)[: per_rank * world]
        mine = perm[rank::world]
        net.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        bar = tqdm(total=steps, desc=f"epoch {epoch}/{params.epochs}", disable=not show, file=sys.stderr, leave=False)
        for step in range(steps):
            x, y, _ = dataset.read(mine[step * params.batch_size : (step + 1) * params.batch_size])
            if not len(y):
                bar.update(1)
                continue
            inputs = _to_input(x, device)
            if params.augment:
                inputs = augment(inputs, params.crop_padding, gen)
            inputs = (inputs - meta.mean) / meta.std
            target = torch.from_numpy(y).to(device)
            logits = net(inputs)
            loss = torch.nn.functional.cross_entropy(logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == target).sum()
            seen += len(y)
            if show and step % 20 == 0:
                bar.set_postfix(loss=f"{float(loss_sum) / seen:.3f}", acc=f"{int(correct) / seen:.1%}")
            bar.update(1)
        bar.close()
        val_loss, val_acc, _ = _score(inner, dataset, val_idx, meta, device)
        row = {
            "epoch": float(epoch),
            "train_loss": float(loss_sum) / max(seen, 1),
            "train_accuracy": int(correct) / max(seen, 1),
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "seconds": time.perf_counter() - start,
        }
        history.append(row)
        if log is not None and rank == 0:
            log(
                f"epoch {epoch}/{params.epochs}: loss {row['train_loss']:.4f} acc {row['train_accuracy']:.2%} | "
                f"val loss {val_loss:.4f} acc {val_acc:.2%} | {row['seconds']:.1f} s"
            )
        if val_acc > best_acc:
            best_acc, best_epoch, best_state = val_acc, epoch, copy.deepcopy(inner.state_dict())
        elif params.patience and epoch - best_epoch >= params.patience:
            if log is not None and rank == 0:
                log(
                    f"early stop: no better validation accuracy for {params.patience} epochs (best: epoch {best_epoch})"
                )
            break
    return history, best_state


def prepare(dataset: ImageDataset, params: VisionParams) -> tuple[NDArray[np.int64], NDArray[np.int64], VisionMeta]:
    """The split and the metadata (labels, size, normalisation) every trainer starts from."""
    params.validate()
    if len(dataset) < 2:
        raise DataError(f"{dataset.where}: {len(dataset)} image(s); need at least 2 to train")
    train_idx, val_idx = split_indices(dataset.targets, params.val_fraction, params.seed)
    mean, std = normalisation(dataset, train_idx, seed=params.seed)
    h, w, c = dataset.shape
    meta = VisionMeta(dataset.labels, c, h, w, mean, std, params.width, params.dropout)
    _ = meta.spec
    return train_idx, val_idx, meta


def fit(
    dataset: ImageDataset,
    params: VisionParams,
    *,
    threads: int = 0,
    progress: bool | None = None,
    log: Log | None = _stderr,
) -> VisionModel:
    """Train a CNN on ``dataset`` with ``params`` on this machine; returns it in eval mode, on the CPU.

    ``threads``: torch's CPU threads (0: leave torch's setting alone).
    """
    torch = require("torch")
    train_idx, val_idx, meta = prepare(dataset, params)
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(params.device)
    torch.manual_seed(params.seed)
    net = build_net(meta.spec).to(device)
    history, best = train_loop(net, dataset, train_idx, val_idx, meta, params, device, progress=progress, log=log)
    net.load_state_dict(best)
    net = net.cpu().eval()
    return VisionModel(net, meta, params, history, dataset.skipped)


def evaluate(model: VisionModel, dataset: ImageDataset, *, batch_size: int = _EVAL_BATCH) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on every readable image of ``dataset``."""
    if tuple(dataset.labels) != tuple(model.meta.labels):
        raise DataError(f"{dataset.where}: its classes {list(dataset.labels)} differ from the model's")
    device = next(model.net.parameters()).device
    loss, acc, n = _score(model.net, dataset, np.arange(len(dataset), dtype=np.int64), model.meta, device)
    return {"accuracy": acc, "loss": loss, "images": float(n), "skipped": float(dataset.skipped)}
