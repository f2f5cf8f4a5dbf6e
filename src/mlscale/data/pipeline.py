"""An ordered, bounded map over a thread pool: parse blocks on every core, keep their order.

:func:`ordered_map` runs ``fn`` on the items of an iterable in worker threads
and yields the results in input order, with at most ``ahead`` items in flight,
so memory stays bounded by a few blocks however long the input. It pays off
when ``fn`` releases the GIL (Arrow's CSV parser and NumPy do). An exception
raised by ``fn`` comes out at that item's place in the order, and the work not
yet started is cancelled when the consumer stops early.

>>> list(ordered_map(lambda x: x * x, range(5), workers=2))
[0, 1, 4, 9, 16]
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["default_workers", "ordered_map"]

T = TypeVar("T")
R = TypeVar("R")


# Each block in flight holds its text and its parse (a few times the text), beside the ingest's memory
# budget: a cap keeps that bounded on a big machine (4 x 4 MiB blocks: tens of MiB).
_MAX_WORKERS = 4


def default_workers() -> int:
    """Worker threads for CPU-bound parsing: the cores this process may use (at most 4)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_WORKERS))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int, ahead: int | None = None) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads, in order, at most ``ahead`` items in flight.

    ``workers <= 1`` runs in the calling thread (no pool). ``ahead`` defaults
    to ``workers + 1`` so a result is ready while the consumer works on the
    previous one.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    limit = max(1, ahead if ahead is not None else workers + 1)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlscale-parse")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
