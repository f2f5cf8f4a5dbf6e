"""Child process of a benchmark: ``python -m benchmarks._worker SPEC_JSON``.

``SPEC`` names a ``module:function`` that takes the params dict and returns a
dict of metrics including ``seconds`` (the measured work, timed by the function
itself). The result is printed as one ``@@BENCH@@`` line; a MemoryError is
reported as ``{"status": "memory-error"}`` with exit status 3, anything else
as ``{"status": "failed", "error": ...}`` with exit status 1. With
``"profile": PATH`` the function's timed blocks (:func:`~benchmarks._harness.stopwatch`)
run under cProfile and the stats go to PATH.
"""

from __future__ import annotations

import cProfile
import importlib
import json
import sys
import traceback
from collections.abc import Callable
from typing import Any

from benchmarks._harness import emit, set_profiler

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Run the spec in ``argv[0]``; returns the exit status."""
    spec = json.loads(argv[0])
    module, _, name = spec["target"].partition(":")
    func: Callable[[dict[str, Any]], dict[str, Any]] = getattr(importlib.import_module(module), name)
    params: dict[str, Any] = spec["params"]
    profile_path: str | None = spec.get("profile")
    prof = cProfile.Profile() if profile_path else None
    set_profiler(prof)
    try:
        result = func(params)
        if prof is not None and profile_path:
            prof.dump_stats(profile_path)
    except MemoryError:
        emit({"status": "memory-error", "error": "MemoryError"})
        return 3
    except Exception as exc:
        traceback.print_exc()
        emit({"status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    emit({"status": "ok", **result})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
