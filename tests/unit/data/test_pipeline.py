from __future__ import annotations

import threading
import time

import pytest

from mlscale.data.pipeline import default_workers, ordered_map


def test_results_come_in_input_order_from_several_threads() -> None:
    names: set[str] = set()

    def slow_square(x: int) -> int:
        names.add(threading.current_thread().name)
        time.sleep(0.002 * (x % 3))  # later items often finish first
        return x * x

    assert list(ordered_map(slow_square, range(40), workers=3)) == [x * x for x in range(40)]
    assert len(names) > 1
    assert all(n.startswith("mlscale-parse") for n in names)


def test_an_error_comes_out_at_its_place() -> None:
    def fail_at_5(x: int) -> int:
        if x == 5:
            raise ValueError("item 5")
        return x

    out: list[int] = []
    with pytest.raises(ValueError, match="item 5"):
        out.extend(ordered_map(fail_at_5, range(20), workers=2))
    assert out == [0, 1, 2, 3, 4]


def test_in_flight_items_are_bounded() -> None:
    pulled: list[int] = []

    def source() -> object:
        for x in range(100):
            pulled.append(x)
            yield x

    it = ordered_map(lambda x: x, source(), workers=2, ahead=3)  # type: ignore[arg-type]
    assert next(it) == 0
    assert len(pulled) <= 4  # never reads far ahead of the consumer
    it.close()  # the consumer stops early: the pool shuts down
    assert len(pulled) <= 4


def test_one_worker_runs_in_the_calling_thread() -> None:
    seen = list(ordered_map(lambda _: threading.current_thread(), range(3), workers=1))
    assert seen == [threading.current_thread()] * 3
    assert default_workers() >= 1
