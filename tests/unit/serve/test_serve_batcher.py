"""Micro-batching and admission control, on a real event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from mlscale.serve._batcher import Batcher, OverloadedError


class Recorder:
    """A predictor stand-in that records the batches it was given."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.delay = delay

    def __call__(self, batch: Sequence[int]) -> list[Any]:
        self.calls.append(list(batch))
        if self.delay:
            time.sleep(self.delay)
        return [x * 10 if x >= 0 else ValueError("negative") for x in batch]


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_requests_of_one_loop_turn_become_one_call() -> None:
    rec = Recorder()

    async def go() -> list[Any]:
        b = Batcher(rec, max_batch=100)
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(20)]
        for i, f in enumerate(futs):
            b.submit(i, 1, time.monotonic() + 5, f.set_result)
        return await asyncio.gather(*futs)

    results = _run(go())
    assert results == [i * 10 for i in range(20)]
    assert rec.calls == [list(range(20))]


def test_batches_are_bounded_in_rows() -> None:
    rec = Recorder()

    async def go() -> None:
        b = Batcher(rec, max_batch=8)
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(10)]
        for i, f in enumerate(futs):
            b.submit(i, 3, time.monotonic() + 5, f.set_result)
        await asyncio.gather(*futs)

    _run(go())
    assert [len(c) for c in rec.calls] == [2, 2, 2, 2, 2]  # 3 rows each, at most 8 rows a batch


def test_a_failing_request_and_a_crashing_batch() -> None:
    async def go(run: Any) -> list[Any]:
        b = Batcher(run)
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(3)]
        for i, f in zip([1, -1, 2], futs, strict=True):
            b.submit(i, 1, time.monotonic() + 5, f.set_result)
        return await asyncio.gather(*futs)

    out = _run(go(Recorder()))
    assert out[0] == 10
    assert out[2] == 20
    assert isinstance(out[1], ValueError)

    def crash(batch: Sequence[int]) -> list[int]:
        raise RuntimeError("bug")

    out = _run(go(crash))
    assert all(isinstance(r, RuntimeError) for r in out)


def test_full_queue_is_refused_at_once() -> None:
    async def go() -> tuple[int, list[OverloadedError]]:
        b = Batcher(Recorder(), max_queue=5)
        loop = asyncio.get_running_loop()
        admitted, refused = [], []
        for i in range(10):
            f = loop.create_future()
            try:
                b.submit(i, 1, time.monotonic() + 5, f.set_result)
                admitted.append(f)
            except OverloadedError as err:
                refused.append(err)
        await asyncio.gather(*admitted)
        return len(admitted), refused

    admitted, refused = _run(go())
    assert admitted == 5
    assert [e.reason for e in refused] == ["queue_full"] * 5
    assert all(e.retry_after >= 1 for e in refused)


def test_a_deadline_that_cannot_be_met_is_refused() -> None:
    async def go() -> None:
        b = Batcher(Recorder())
        b.per_row = 0.01  # as if measured: 10 ms a row
        with pytest.raises(OverloadedError) as err:
            b.submit(1, 50, time.monotonic() + 0.1, lambda r: None)
        assert err.value.reason == "deadline"
        f = asyncio.get_running_loop().create_future()
        b.submit(1, 1, time.monotonic() + 1.0, f.set_result)
        assert await f == 10

    _run(go())


def test_requests_past_their_deadline_are_dropped_before_computing() -> None:
    rec = Recorder(delay=0.05)

    async def go() -> list[Any]:
        b = Batcher(rec, max_batch=1)
        b.per_row = b.per_batch = 0.0
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(3)]
        now = time.monotonic()
        for i, f in enumerate(futs):
            b.submit(i, 1, now + 0.03, f.set_result)
        return await asyncio.gather(*futs)

    out = _run(go())
    assert out[0] == 0
    assert all(isinstance(r, OverloadedError) and r.reason == "deadline" for r in out[1:])
    assert rec.calls == [[0]]


def test_batch_wait_collects_later_arrivals() -> None:
    rec = Recorder()

    async def go() -> None:
        b = Batcher(rec, max_batch=100, max_wait=0.05)
        loop = asyncio.get_running_loop()
        futs = []
        for i in range(4):
            f = loop.create_future()
            b.submit(i, 1, time.monotonic() + 5, f.set_result)
            futs.append(f)
            await asyncio.sleep(0.005)
        await asyncio.gather(*futs)

    _run(go())
    assert rec.calls == [[0, 1, 2, 3]]


def test_full_batch_does_not_wait_for_the_timer() -> None:
    rec = Recorder()

    async def go() -> float:
        b = Batcher(rec, max_batch=4, max_wait=0.5)
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(4)]
        start = time.monotonic()
        for i, f in enumerate(futs):
            b.submit(i, 1, start + 5, f.set_result)
        await asyncio.gather(*futs)
        return time.monotonic() - start

    assert _run(go()) < 0.25
    assert rec.calls == [[0, 1, 2, 3]]


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(Recorder(), max_batch=0)


def test_big_batches_compute_in_a_thread_while_the_loop_refuses_the_excess() -> None:
    threads: list[str] = []

    def slow(batch: Sequence[int]) -> list[int]:
        threads.append(threading.current_thread().name)
        time.sleep(0.2)
        return [x * 10 for x in batch]

    async def go() -> tuple[list[Any], float]:
        b = Batcher(slow, max_queue=150, offload_after=0.001)  # 100 rows: 2 ms expected
        loop = asyncio.get_running_loop()
        big = loop.create_future()
        b.submit(1, 100, time.monotonic() + 5, big.set_result)
        await asyncio.sleep(0.05)  # the big batch is computing in its thread now
        queued = loop.create_future()
        b.submit(2, 100, time.monotonic() + 5, queued.set_result)  # waits for its turn
        start = time.monotonic()
        with pytest.raises(OverloadedError):
            b.submit(3, 100, time.monotonic() + 5, lambda r: None)  # refused while the other computes
        refused_in = time.monotonic() - start
        small = loop.create_future()
        out = [await big, await queued]
        b.submit(4, 1, time.monotonic() + 5, small.set_result)
        out.append(await small)
        b.close()
        return out, refused_in

    out, refused_in = _run(go())
    assert out == [10, 20, 40]
    assert refused_in < 0.05
    assert threads[0].startswith("mlscale-batch")
    assert threads[1].startswith("mlscale-batch")
    assert threads[2] == threading.main_thread().name  # one row: on the loop
