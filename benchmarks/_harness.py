"""The machinery shared by the benchmarks: child processes, peak RSS, results and tables.

Every candidate runs in its own fresh interpreter (``python -m
benchmarks._worker SPEC``), so the peak RSS that :func:`os.wait4` reports when
it exits is that candidate's alone. The child times only the measured work
itself and prints one result line (``@@BENCH@@ {json}``); the parent adds the
exit status and ``ru_maxrss``. A child that runs out of memory, is killed or
passes ``timeout`` is recorded as such instead of stopping the run.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import json
import math
import os
import platform
import pstats
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MARKER",
    "REPO_ROOT",
    "Outcome",
    "Summary",
    "cpu_ratio",
    "emit",
    "fmt_num",
    "format_table",
    "host_info",
    "now_iso",
    "parse_rows",
    "print_profiles",
    "rows_arg",
    "rows_label",
    "rss_now_kib",
    "rss_peak_kib",
    "run_candidate",
    "run_candidates",
    "runs_text",
    "set_profiler",
    "stopwatch",
    "summarise",
    "warm_page_cache",
    "write_result",
]

#: Prefix of the one result line a worker prints on stdout.
MARKER = "@@BENCH@@ "
REPO_ROOT = Path(__file__).resolve().parents[1]
_KIB = 1024
_MIB = 1 << 20
_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}


# -- sizes --------------------------------------------------------------------------


def parse_rows(text: str) -> int:
    """Parse a row count: ``10M``, ``100k``, ``1e4``, ``1_000``.

    >>> parse_rows("10M"), parse_rows("1e4"), parse_rows("2500")
    (10000000, 10000, 2500)
    """
    s = text.strip().lower().replace("_", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?(?:e\d+)?)([kmgb]?)", s)
    if not m:
        raise ValueError(f"expected a row count such as 10M, 1e4 or 2500, got {text!r}")
    value = float(m.group(1)) * _SUFFIXES[m.group(2)]
    if value < 1 or value != int(value):
        raise ValueError(f"expected a whole number of rows >= 1, got {text!r}")
    return int(value)


def rows_arg(text: str) -> int:
    """:func:`parse_rows` for argparse (a bad value is a usage error)."""
    try:
        return parse_rows(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def rows_label(rows: int) -> str:
    """Short label of a row count, for file names and tables.

    >>> rows_label(10_000_000), rows_label(10_000), rows_label(12_345)
    ('10M', '10k', '12345')
    """
    for suffix, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if rows >= scale and rows % scale == 0:
            return f"{rows // scale}{suffix}"
    return str(rows)


# -- inside a worker ----------------------------------------------------------------


def _status_kib(key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def rss_now_kib() -> int:
    """The calling process's current resident set size in KiB (Linux; 0 elsewhere)."""
    return _status_kib("VmRSS:")


def rss_peak_kib() -> int:
    """The calling process's peak resident set size so far in KiB (Linux; 0 elsewhere)."""
    return _status_kib("VmHWM:")


@dataclass
class _Lap:
    seconds: float = 0.0
    cpu_seconds: float = 0.0


# Set by the worker when it runs under ``--profile``: only timed blocks are profiled.
_profiler: cProfile.Profile | None = None


def set_profiler(profiler: cProfile.Profile | None) -> None:
    """Profile every later :func:`stopwatch` block with ``profiler`` (None: stop)."""
    global _profiler
    _profiler = profiler


@contextlib.contextmanager
def stopwatch() -> Iterator[_Lap]:
    """Time a block: wall ``.seconds`` and this process's ``.cpu_seconds`` (all threads).

    CPU time is less disturbed than wall time when other work shares the cores.

    >>> with stopwatch() as lap:
    ...     _ = sum(range(1000))
    >>> lap.seconds >= 0
    True
    """
    lap = _Lap()
    prof = _profiler
    if prof is not None:
        prof.enable()
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield lap
    finally:
        lap.seconds = time.perf_counter() - start
        lap.cpu_seconds = time.process_time() - cpu
        if prof is not None:
            prof.disable()


def emit(result: Mapping[str, Any]) -> None:
    """Print a worker's result line (the parent reads the last one), with the worker's own peak RSS."""
    sys.stdout.write(MARKER + json.dumps({**dict(result), "vm_hwm_kib": rss_peak_kib()}) + "\n")
    sys.stdout.flush()


# -- in the parent ------------------------------------------------------------------


@dataclass
class Outcome:
    """One run of one candidate in its own process."""

    candidate: str
    status: str  # ok | skipped (a library is missing) | memory-error | killed | timeout | failed
    peak_rss_kib: int
    process_seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    #: The machine's 1-minute load average when the run started (how shared the cores were).
    loadavg_1m: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_candidate(
    candidate: str,
    target: str,
    params: Mapping[str, Any],
    *,
    timeout: float,
    profile: Path | None = None,
    python: str | None = None,
) -> Outcome:
    """Run ``target`` (``module:function``) with ``params`` in a fresh interpreter.

    ``python`` is that interpreter (default: this one), for a baseline that
    lives in another environment (an older pandas, say).

    The peak RSS is the child's ``ru_maxrss`` from :func:`os.wait4`. A child
    still running after ``timeout`` seconds is killed and recorded as
    ``timeout``; one killed by a signal (the OOM killer sends SIGKILL) as
    ``killed``; one that raised MemoryError as ``memory-error``.
    """
    spec = {"target": target, "params": dict(params), "profile": str(profile) if profile else None}
    cmd = [python or sys.executable, "-m", "benchmarks._worker", json.dumps(spec)]
    load = os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO_ROOT, env=_child_env())
        timed_out = False
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() - start > timeout:
                    proc.kill()
                    timed_out = True
                    _, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.02)
        except BaseException:
            proc.kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
            raise
        elapsed = time.monotonic() - start
        # wait4 reaped the child; tell Popen so it does not try again.
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    lines = [ln[len(MARKER) :] for ln in stdout.splitlines() if ln.startswith(MARKER)]
    metrics: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    code = proc.returncode
    tail = "\n".join(stderr.strip().splitlines()[-15:])
    if timed_out:
        state, error = "timeout", f"still running after {timeout:.0f}s: killed"
    elif code == 0 and metrics.get("status", "ok") == "ok":
        state, error = "ok", ""
    elif code == 0 and metrics.get("status") == "skipped":
        state, error = "skipped", str(metrics.get("error", ""))
    elif metrics.get("status") == "memory-error":
        state, error = "memory-error", "MemoryError"
    elif code < 0:
        name = signal.Signals(-code).name
        oom = " (out of memory?)" if code == -signal.SIGKILL else ""
        state, error = "killed", f"killed by {name}{oom}"
    else:
        state, error = "failed", metrics.get("error") or f"exit status {code}: {tail}"
    return Outcome(
        candidate=candidate,
        status=state,
        # Linux's exec records the forking parent's high-water mark into the child's ru_maxrss, so a big
        # parent (a test run) inflates it; the child's own VmHWM is exact. ru_maxrss remains for a child
        # that died before reporting (OOM-killed).
        peak_rss_kib=int(metrics.get("vm_hwm_kib") or usage.ru_maxrss),
        process_seconds=elapsed,
        metrics=metrics,
        error=error,
        loadavg_1m=round(load, 2),
    )


def run_candidates(
    candidates: Sequence[tuple[str, str]],
    params: Mapping[str, Any],
    *,
    repeat: int = 1,
    timeout: float = 3600.0,
    profile_dir: Path | None = None,
    log: bool = True,
    pythons: Mapping[str, str] | None = None,
) -> dict[str, list[Outcome]]:
    """Run each ``(name, target)`` ``repeat`` times, interleaved so drift hits all alike.

    ``pythons`` maps a candidate to the interpreter it runs under (default: this one).
    """
    runs: dict[str, list[Outcome]] = {name: [] for name, _ in candidates}
    for r in range(repeat):
        for name, target in candidates:
            if log:
                print(f"  running {name} ({r + 1}/{repeat}) ...", file=sys.stderr, flush=True)
            prof = profile_dir / f"{name}-{r}.prof" if profile_dir is not None else None
            python = (pythons or {}).get(name)
            outcome = run_candidate(name, target, params, timeout=timeout, profile=prof, python=python)
            if log:
                done = (
                    f"{outcome.metrics.get('seconds', float('nan')):.2f}s measured"
                    if outcome.ok
                    else f"{outcome.status}: {outcome.error}"
                )
                rss = outcome.peak_rss_kib * _KIB / _MIB
                print(f"    {done}, peak RSS {rss:,.0f} MiB", file=sys.stderr, flush=True)
            runs[name].append(outcome)
    return runs


@dataclass
class Summary:
    """A candidate's runs reduced to one row: median time, largest peak RSS."""

    candidate: str
    status: str
    seconds: float | None
    peak_rss_mib: float
    runs: int
    metrics: dict[str, Any]
    error: str = ""
    all_seconds: list[float] = field(default_factory=list)


def summarise(name: str, outcomes: Sequence[Outcome]) -> Summary:
    """Median measured seconds over the successful runs; the worst status otherwise."""
    good = [o for o in outcomes if o.ok]
    peak = max((o.peak_rss_kib for o in outcomes), default=0) * _KIB / _MIB
    if not good:
        bad = outcomes[-1]
        return Summary(name, bad.status, None, peak, len(outcomes), bad.metrics, bad.error)
    secs = [float(o.metrics["seconds"]) for o in good]
    median = statistics.median(secs)
    # The metrics of the run nearest the median represent the candidate.
    rep = min(good, key=lambda o: abs(float(o.metrics["seconds"]) - median))
    status = "ok" if len(good) == len(outcomes) else f"ok ({len(good)}/{len(outcomes)} runs)"
    return Summary(name, status, median, peak, len(outcomes), rep.metrics, "", secs)


def cpu_ratio(numerator: Summary | None, denominator: Summary | None) -> float | None:
    """Ratio of two candidates' CPU seconds (representative runs); None when one is missing."""
    if numerator is None or denominator is None:
        return None
    a, b = numerator.metrics.get("cpu_seconds"), denominator.metrics.get("cpu_seconds")
    return float(a) / float(b) if a and b else None


def runs_text(summary: Summary) -> str:
    """Every run's measured seconds, for a table cell (``5.8 / 6.5 / 3.9``)."""
    return " / ".join(f"{s:.3g}" for s in summary.all_seconds) or "-"


def host_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS and Python of this machine, and its load now."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / (1 << 20), 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }


def warm_page_cache(path: Path) -> float:
    """Read a file once so every candidate finds it in the page cache; returns seconds."""
    start = time.perf_counter()
    with path.open("rb", buffering=0) as fh:
        while fh.read(64 << 20):
            pass
    return time.perf_counter() - start


def print_profiles(folder: Path, top: int = 30) -> None:
    """Print the top functions (cumulative time) of every ``.prof`` file in ``folder``."""
    for prof in sorted(folder.glob("*.prof")):
        print(f"\n== cProfile of {prof.stem}, timed part only (times inflated by profiling) ==")
        pstats.Stats(str(prof), stream=sys.stdout).sort_stats("cumulative").print_stats(top)


def write_result(path: Path, result: Mapping[str, Any]) -> Path:
    """Write a result document as JSON (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=1, default=_jsonable) + "\n")
    tmp.replace(path)
    return path


def _jsonable(value: object) -> object:
    if isinstance(value, Summary | Outcome):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def now_iso() -> str:
    """The current UTC time, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def fmt_num(value: float | None, digits: int = 2) -> str:
    """A number for a table; ``-`` for missing or not finite."""
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table, columns left-aligned.

    >>> print(format_table(["a", "bb"], [["1", "2"]]))
    a  bb
    -  --
    1  2
    """
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return "\n".join(lines)


def add_common_args(p: argparse.ArgumentParser, candidates: Iterable[str]) -> None:
    """The flags every size-sweeping benchmark (ingest, train) shares."""
    p.add_argument("--repeat", type=int, default=1, help="runs per candidate, interleaved (median)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds before a candidate is killed")
    p.add_argument("--only", choices=sorted(candidates), action="append", help="run only these candidates")
    p.add_argument("--profile", action="store_true", help="run under cProfile; print the top functions")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench-out", help="results folder (default bench-out)")
    p.add_argument("--data-dir", type=Path, default=None, help="cached data (default OUT/data)")
    p.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")


def run_sizes(args: argparse.Namespace, run_one: Callable[[int, argparse.Namespace], Mapping[str, Any]]) -> int:
    """Run ``run_one`` for every ``--rows`` (default 10M); 1 when ``--check`` and a goal was missed."""
    status = 0
    for rows in args.rows or [10_000_000]:
        result = run_one(rows, args)
        if args.check and not all(g["met"] for g in result["goals"]):
            status = 1
    return status
