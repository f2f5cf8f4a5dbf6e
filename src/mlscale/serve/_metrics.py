"""Prometheus metrics shared by every worker process, at a few dozen nanoseconds an update.

Each process writes its samples into its own memory-mapped file of doubles in
a folder the supervisor owns (``<dir>/w-<pid>.bin``, with the sample names in
``w-<pid>.json``); updating a sample is one store into shared memory, with no
lock and no system call. A scrape, whichever worker gets it, reads every file:
counters and histograms are summed over processes (a dead worker's counts are
kept, so totals never go down), gauges are shown per live worker.

>>> m = Metrics(None, worker="1")
>>> hits = m.counter("demo_hits_total", "Hits.", ("route",))
>>> hits.inc(("/x",))
>>> 'demo_hits_total{route="/x"} 1' in m.render().decode()
True
"""

from __future__ import annotations

import json
import mmap
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["Counter", "Gauge", "Histogram", "Metrics", "mark_dead"]

_SLOTS = 16_384
Kind = Literal["counter", "gauge", "histogram"]

#: Latency buckets (seconds): fine below 10 ms, where a fast service lives.
LATENCY_BUCKETS = (
    0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


@dataclass(frozen=True, slots=True)
class _Family:
    name: str
    kind: Kind
    help: str
    labelnames: tuple[str, ...]
    buckets: tuple[float, ...] = ()


class _Store:
    """One process's samples: a shared array of doubles and the key of each slot."""

    def __init__(self, directory: Path | None, tag: str) -> None:
        self.keys: list[list[Any]] = []
        self.directory = directory
        if directory is None:
            self.mm = mmap.mmap(-1, _SLOTS * 8)
            self.key_path: Path | None = None
        else:
            path = directory / f"w-{tag}.bin"
            with open(path, "w+b") as f:
                f.truncate(_SLOTS * 8)
                self.mm = mmap.mmap(f.fileno(), _SLOTS * 8)
            self.key_path = directory / f"w-{tag}.json"
        self.values = memoryview(self.mm).cast("d")
        self.full = False

    def allocate(self, key: list[Any], width: int) -> int:
        base = len(self.keys)
        if base + width > _SLOTS:
            self.full = True
            return -1
        for i in range(width):
            self.keys.append([*key, i])
        if self.key_path is not None:
            tmp = self.key_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.keys))
            tmp.replace(self.key_path)
        return base


class Counter:
    """A monotonically increasing count per label values."""

    __slots__ = ("_children", "_family", "_store")

    def __init__(self, family: _Family, store: _Store) -> None:
        self._family = family
        self._store = store
        self._children: dict[tuple[str, ...], int] = {}

    def _slot(self, labels: tuple[str, ...]) -> int:
        slot = self._children.get(labels)
        if slot is None:
            slot = self._store.allocate([self._family.name, list(labels)], 1)
            self._children[labels] = slot
        return slot

    def inc(self, labels: tuple[str, ...] = (), amount: float = 1.0) -> None:
        """Add ``amount`` to the sample of ``labels``."""
        slot = self._children.get(labels)
        if slot is None:
            slot = self._slot(labels)
        if slot >= 0:
            self._store.values[slot] += amount


class Gauge(Counter):
    """A value that goes up and down (shown per worker)."""

    __slots__ = ()

    def set(self, labels: tuple[str, ...], value: float) -> None:
        """Set the sample of ``labels`` to ``value``."""
        slot = self._children.get(labels)
        if slot is None:
            slot = self._slot(labels)
        if slot >= 0:
            self._store.values[slot] = value


class Histogram:
    """Counts of observations per bucket, their sum and count, per label values."""

    __slots__ = ("_bounds", "_children", "_family", "_store", "_width")

    def __init__(self, family: _Family, store: _Store) -> None:
        self._family = family
        self._store = store
        self._bounds = list(family.buckets)
        # One slot per bucket, one for +Inf, one for the sum.
        self._width = len(self._bounds) + 2
        self._children: dict[tuple[str, ...], int] = {}

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        """Record one observation of ``value``."""
        base = self._children.get(labels)
        if base is None:
            base = self._store.allocate([self._family.name, list(labels)], self._width)
            self._children[labels] = base
        if base >= 0:
            values = self._store.values
            values[base + bisect_left(self._bounds, value)] += 1.0
            values[base + self._width - 1] += value


class Metrics:
    """The metrics of one process, and the Prometheus text of all processes sharing ``directory``."""

    def __init__(self, directory: Path | None, *, worker: str) -> None:
        self.directory = directory
        self.worker = worker
        self._families: dict[str, _Family] = {}
        self._store = _Store(directory, worker)

    def _family(self, family: _Family) -> _Family:
        self._families[family.name] = family
        return family

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        """Declare a counter (its name should end in ``_total``)."""
        return Counter(self._family(_Family(name, "counter", help, tuple(labelnames))), self._store)

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        """Declare a gauge; its samples carry a ``worker`` label."""
        return Gauge(self._family(_Family(name, "gauge", help, tuple(labelnames))), self._store)

    def histogram(
        self, name: str, help: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        """Declare a histogram with the given upper bounds."""
        fam = _Family(name, "histogram", help, tuple(labelnames), tuple(float(b) for b in buckets))
        return Histogram(self._family(fam), self._store)

    # -- reading -----------------------------------------------------------------

    def _snapshots(self) -> Iterable[tuple[str, bool, list[list[Any]], Sequence[float]]]:
        own = self._store
        yield self.worker, True, list(own.keys), own.values.tolist()[: len(own.keys)]
        if self.directory is None:
            return
        for key_file in sorted(self.directory.glob("*.json")):
            stem = key_file.stem
            alive, tag = stem.startswith("w-"), stem[2:]
            if alive and tag == self.worker:
                continue
            try:
                keys = json.loads(key_file.read_text())
                raw = (key_file.with_suffix(".bin")).read_bytes()
            except (OSError, ValueError):
                continue  # a worker that is starting or being cleaned up
            values = memoryview(raw).cast("d").tolist()[: len(keys)]
            yield tag, alive, keys, values

    def render(self) -> bytes:
        """Prometheus text exposition (version 0.0.4) of every process's samples."""
        sums: dict[tuple[str, tuple[str, ...], int], float] = {}
        gauges: dict[tuple[str, tuple[str, ...], str], float] = {}
        for tag, alive, keys, values in self._snapshots():
            for (name, labels, i), value in zip(keys, values, strict=False):
                fam = self._families.get(name)
                if fam is None:
                    continue
                if fam.kind == "gauge":
                    if alive:
                        gauges[(name, tuple(labels), tag)] = value
                    continue
                k = (name, tuple(labels), i)
                sums[k] = sums.get(k, 0.0) + value
        lines: list[str] = []
        for fam in self._families.values():
            lines.append(f"# HELP {fam.name} {fam.help}")
            lines.append(f"# TYPE {fam.name} {fam.kind}")
            if fam.kind == "gauge":
                for (name, labels, tag), value in sorted(gauges.items()):
                    if name == fam.name:
                        lines.append(f"{name}{_labels(fam.labelnames, labels, ('worker', tag))} {_num(value)}")
            elif fam.kind == "counter":
                for (name, labels, _), value in sorted(sums.items()):
                    if name == fam.name:
                        lines.append(f"{name}{_labels(fam.labelnames, labels)} {_num(value)}")
            else:
                lines.extend(self._render_histogram(fam, sums))
        return ("\n".join(lines) + "\n").encode()

    @staticmethod
    def _render_histogram(fam: _Family, sums: dict[tuple[str, tuple[str, ...], int], float]) -> list[str]:
        series: dict[tuple[str, ...], list[float]] = {}
        width = len(fam.buckets) + 2
        for (name, labels, i), value in sums.items():
            if name == fam.name:
                series.setdefault(labels, [0.0] * width)[i] = value
        out = []
        for labels, values in sorted(series.items()):
            running = 0.0
            for bound, count in zip([*fam.buckets, float("inf")], values[:-1], strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else _num(bound)
                out.append(f"{fam.name}_bucket{_labels(fam.labelnames, labels, ('le', le))} {_num(running)}")
            out.append(f"{fam.name}_sum{_labels(fam.labelnames, labels)} {_num(values[-1])}")
            out.append(f"{fam.name}_count{_labels(fam.labelnames, labels)} {_num(running)}")
        return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values, strict=False)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{_escape(extra[1])}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def mark_dead(directory: Path, worker: str) -> None:
    """Keep a dead worker's counts (totals never go down) but stop showing its gauges."""
    for suffix in (".bin", ".json"):
        src = directory / f"w-{worker}{suffix}"
        if src.exists():
            src.replace(directory / f"d-{worker}{suffix}")
