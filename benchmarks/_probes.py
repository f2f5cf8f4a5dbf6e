"""Tiny worker targets that exercise the harness itself (used by its tests).

They let a test check what the harness records for a child that allocates a
known amount of memory, raises, runs too long or is killed, without running a
real benchmark.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from benchmarks._harness import stopwatch

__all__ = ["allocate", "die", "fail", "sleep"]


def allocate(params: dict[str, Any]) -> dict[str, Any]:
    """Allocate and touch ``mib`` MiB, so the child's peak RSS is at least that."""
    with stopwatch() as lap:
        block = bytearray(int(params["mib"]) << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
    return {"seconds": lap.seconds, "size": len(block)}


def fail(params: dict[str, Any]) -> dict[str, Any]:
    """Raise MemoryError (``"memory"``) or RuntimeError (anything else)."""
    if params.get("kind") == "memory":
        raise MemoryError
    raise RuntimeError("probe failure")


def sleep(params: dict[str, Any]) -> dict[str, Any]:
    """Sleep ``seconds`` (to hit a timeout)."""
    with stopwatch() as lap:
        time.sleep(float(params["seconds"]))
    return {"seconds": lap.seconds}


def die(params: dict[str, Any]) -> dict[str, Any]:
    """Kill this process with SIGKILL, as the OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)
    return {"seconds": 0.0}
