"""Micro-batching with admission control: many concurrent requests, one vectorised call.

Requests to one (model, action) join a bounded queue; a flush takes up to
``max_batch`` rows from its head and runs them in one call. With
``max_wait == 0`` (the default) a flush is scheduled for the next turn of the
event loop, so a lone request waits only microseconds, while under load the
requests that arrive while one batch computes form the next batch by
themselves. A positive ``max_wait`` holds a small queue up to that long to
build larger batches. Short batches (expected to take up to ``offload_after``
seconds, by the measured cost per row) run on the event loop itself, the
cheapest place; longer ones run in a thread of their own, so that the loop keeps reading requests,
refusing the excess at once and answering health checks while they compute.
One batch per (model, action) computes at a time.

Admission is decided when a request arrives, never later: if the queue is full,
or the estimated wait (queued rows times the measured cost per row) would
overrun the request's deadline, :class:`OverloadedError` is raised at once (the
server answers 503 with ``Retry-After``), so the requests that were admitted
keep their latency instead of every request getting slower. A request whose own
work (its cost times the measured cost per row) is more than
``max_request_seconds``, whatever deadline its client allows, is refused with
:class:`TooMuchWorkError` (413: retrying cannot help, splitting it does), so
that one request can never hold the batch slot long enough to stall the others.
The cost is an estimate (learnt from the batches run so far): a request near the
budget may be admitted or refused depending on the load.

A failing batch never fails a request that did not cause the failure: when
``run`` raises for a batch of several requests, the batch is bisected and each
half run again, until the request that raises is alone; only it gets the error.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlscale.errors import MlscaleError

__all__ = ["MAX_REQUEST_SECONDS", "BatchStats", "Batcher", "OverloadedError", "TooMuchWorkError"]

log = logging.getLogger("mlscale.serve")

Reply = Callable[[Any], None]

#: Most seconds of work one request may ask for (estimated from its cost): more
#: would hold the one batch slot of its action and stall every other request.
MAX_REQUEST_SECONDS = 1.0


class OverloadedError(MlscaleError):
    """The server cannot answer this request in time; retry after ``retry_after`` seconds."""

    http_status = 503

    def __init__(self, message: str, *, retry_after: int, reason: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason


class TooMuchWorkError(MlscaleError):
    """One request asks for more work than a request may: it must be split (413)."""

    http_status = 413


class BatchStats:
    """Hooks the batcher reports to (metrics); the default does nothing."""

    def batch(self, requests: int, rows: int, seconds: float) -> None:
        """A batch of ``requests`` (``rows`` rows) ran in ``seconds``."""

    def queued(self, seconds: float) -> None:
        """A request waited ``seconds`` in the queue before its batch started."""

    def rejected(self, reason: str) -> None:
        """A request was refused (``queue_full`` or ``deadline``)."""


class _Entry:
    __slots__ = ("cost", "deadline", "reply", "request", "since")

    def __init__(self, request: Any, cost: int, deadline: float, reply: Reply, since: float) -> None:
        self.request = request
        self.cost = cost
        self.deadline = deadline
        self.reply = reply
        self.since = since


class Batcher:
    """Coalesces the requests to one (model, action) into calls of ``run``.

    ``run`` gets a list of requests and returns one result per request (a
    value, or an exception instance for a request that failed alone).
    ``reply`` callbacks are called on the event loop with that result.
    """

    def __init__(
        self,
        run: Callable[[Sequence[Any]], Sequence[Any]],
        *,
        max_batch: int = 256,
        max_wait: float = 0.0,
        max_queue: int = 2048,
        offload_after: float = 0.002,
        stats: BatchStats | None = None,
        max_request_seconds: float = MAX_REQUEST_SECONDS,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait >= 0")
        self.run = run
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.stats = stats or BatchStats()
        self._queue: deque[_Entry] = deque()
        self._queued_rows = 0
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        # Running estimates of what a batch costs: fixed part and per row (seconds).
        self.per_batch = 1e-4
        self.per_row = 2e-5
        self.calls = 0
        self.offload_after = offload_after
        self._busy = False
        self._pool: ThreadPoolExecutor | None = None
        self.max_request_seconds = max_request_seconds
        self.closed = False

    @property
    def depth(self) -> int:
        """Rows waiting in the queue."""
        return self._queued_rows

    def alone(self, rows: int) -> float:
        """Seconds a request of ``rows`` rows takes on its own (no queue)."""
        return self.per_batch + rows * self.per_row

    def refuse_now(self, deadline: float, now: float) -> OverloadedError | None:
        """The refusal a request of the smallest cost would get now, without decoding it (fast path)."""
        if self.closed:
            return OverloadedError("the server is shutting down", retry_after=1, reason="shutdown")
        if self._queue and self._queued_rows >= self.max_queue:
            self.stats.rejected("queue_full")
            return OverloadedError(
                f"the queue is full ({self._queued_rows} rows waiting)",
                retry_after=self._retry_after(),
                reason="queue_full",
            )
        if now + self.estimate(1) > deadline:
            self.stats.rejected("deadline")
            return OverloadedError(
                "the request's deadline cannot be met at the current load",
                retry_after=self._retry_after(),
                reason="deadline",
            )
        return None

    def estimate(self, rows: int) -> float:
        """Seconds before a request of ``rows`` rows, arriving now, would be answered."""
        total = self._queued_rows + rows
        batches = math.ceil(total / self.max_batch)
        return batches * self.per_batch + total * self.per_row + self.max_wait

    def submit(self, request: Any, cost: int, deadline: float, reply: Reply, now: float | None = None) -> None:
        """Queue ``request`` (``cost`` rows) to be answered through ``reply`` before ``deadline``.

        Raises :class:`OverloadedError` at once when the queue is full or the
        deadline (``time.monotonic()`` seconds) cannot be met.
        """
        now = time.monotonic() if now is None else now
        if self.closed:
            raise OverloadedError("the server is shutting down", retry_after=1, reason="shutdown")
        own = self.alone(cost)
        if own > self.max_request_seconds:
            self.stats.rejected("too_much_work")
            raise TooMuchWorkError(
                f"this request asks for about {own:.2f} s of work ({cost} rows), more than the "
                f"{self.max_request_seconds:.2f} s one request may take, whatever its deadline",
                hint="split it into smaller requests (fewer users or records, a smaller k)",
            )
        if self._queue and self._queued_rows + cost > self.max_queue:
            self.stats.rejected("queue_full")
            raise OverloadedError(
                f"the queue is full ({self._queued_rows} rows waiting)",
                retry_after=self._retry_after(),
                reason="queue_full",
            )
        if now + self.estimate(cost) > deadline:
            self.stats.rejected("deadline")
            raise OverloadedError(
                "the request's deadline cannot be met at the current load",
                retry_after=self._retry_after(),
                reason="deadline",
            )
        self._queue.append(_Entry(request, cost, deadline, reply, now))
        self._queued_rows += cost
        if self._scheduled:
            if self._timer is not None and self._queued_rows >= self.max_batch:
                # A full batch need not wait for the timer.
                self._timer.cancel()
                self._timer = None
                asyncio.get_running_loop().call_soon(self._flush)
            return
        loop = asyncio.get_running_loop()
        self._scheduled = True
        if self.max_wait > 0 and self._queued_rows < self.max_batch:
            self._timer = loop.call_later(self.max_wait, self._flush)
        else:
            loop.call_soon(self._flush)

    def _retry_after(self) -> int:
        return max(1, math.ceil(self.estimate(0)))

    def _take(self, now: float) -> list[_Entry]:
        batch: list[_Entry] = []
        rows = 0
        queue = self._queue
        while queue:
            entry = queue[0]
            if batch and rows + entry.cost > self.max_batch:
                break
            queue.popleft()
            self._queued_rows -= entry.cost
            if entry.deadline < now:
                # Its client has given up by now: computing it would only delay the others.
                self.stats.rejected("deadline")
                entry.reply(OverloadedError("the request waited past its deadline", retry_after=1, reason="deadline"))
                continue
            batch.append(entry)
            rows += entry.cost
        return batch

    def _flush(self) -> None:
        self._scheduled = False
        self._timer = None
        if self._busy:
            return  # the batch computing in the thread schedules the next flush when it is done
        start = time.monotonic()
        batch = self._take(start)
        if batch:
            for entry in batch:
                self.stats.queued(start - entry.since)
            rows = sum(e.cost for e in batch)
            if self.per_batch + rows * self.per_row > self.offload_after:
                # A big batch computes in a thread, so that the loop keeps reading, refusing and answering.
                self._busy = True
                requests = [e.request for e in batch]
                future = asyncio.get_running_loop().run_in_executor(self._executor(), self._compute, requests)
                future.add_done_callback(lambda f: self._done(batch, rows, start, f))
                return
            self._finish(batch, rows, start, self._compute([e.request for e in batch]))
        self._again()

    def _again(self) -> None:
        if self._queue and not self._scheduled:
            # Let the loop read and write once before the next batch: new arrivals join it.
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlscale-batch")
        return self._pool

    def _compute(self, requests: list[Any]) -> Sequence[Any]:
        try:
            results: Sequence[Any] = self.run(requests)
            if len(results) != len(requests):
                raise RuntimeError(f"the predictor returned {len(results)} results for {len(requests)} requests")
        except Exception as exc:
            if len(requests) == 1:
                log.error("a request failed", exc_info=exc)
                return [exc]
            # Some request broke the whole call: bisect until it is alone, so its neighbours get their answers.
            half = len(requests) // 2
            return [*self._compute(requests[:half]), *self._compute(requests[half:])]
        return results

    def _done(self, batch: list[_Entry], rows: int, start: float, future: asyncio.Future[Sequence[Any]]) -> None:
        self._busy = False
        exc = future.exception()
        results: Sequence[Any] = [exc] * len(batch) if exc is not None else future.result()
        self._finish(batch, rows, start, results)
        self._again()

    def _finish(self, batch: list[_Entry], rows: int, start: float, results: Sequence[Any]) -> None:
        took = time.monotonic() - start
        self.calls += 1
        self._learn(len(batch), rows, took)
        self.stats.batch(len(batch), rows, took)
        for entry, result in zip(batch, results, strict=True):
            try:
                entry.reply(result)
            except Exception:
                log.exception("replying to a request failed")

    def _learn(self, requests: int, rows: int, took: float) -> None:
        # Exponential moving averages; the fixed part is learnt from small batches, per row from the rest.
        if rows <= 2:
            self.per_batch += 0.1 * (took - self.per_batch)
        else:
            per_row = max(0.0, took - self.per_batch) / rows
            self.per_row += 0.1 * (per_row - self.per_row)

    def close(self) -> None:
        """Release the batch thread (after the last batch)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def fail_all(self, error: BaseException) -> int:
        """Answer every queued request with ``error`` and refuse new ones (shutdown); returns how many.

        The batch computing in the thread, if any, still answers its requests when it ends.
        """
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        failed = 0
        while self._queue:
            entry = self._queue.popleft()
            failed += 1
            try:
                entry.reply(error)
            except Exception:
                log.exception("replying to a request failed")
        self._queued_rows = 0
        return failed
