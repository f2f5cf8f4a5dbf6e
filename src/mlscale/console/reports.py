"""Past load tests: the reports ``mlscale loadtest --report DIR`` wrote (report.json, PNGs, report.html).

:func:`list_reports` finds every ``report.json`` under a folder (newest
first); :func:`curve` is one report's latency-vs-rate points, what the console
draws to compare two runs on one plot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlscale.errors import DataError

__all__ = ["curve", "list_reports", "report_path"]

_MAX_DEPTH = 4


def list_reports(root: Path | None) -> list[dict[str, Any]]:
    """One summary per report under ``root`` (its id is its folder relative to ``root``)."""
    if root is None or not root.is_dir():
        return []
    out = []
    for path in root.rglob("report.json"):
        rel = path.parent.relative_to(root)
        if len(rel.parts) > _MAX_DEPTH:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        steps = data.get("steps") or []
        out.append(
            {
                "id": rel.as_posix() or ".",
                "url": data.get("url"),
                "mode": data.get("mode"),
                "passed": data.get("passed"),
                "generated_at": data.get("generated_at"),
                "steps": len(steps),
                "knee_rps": (data.get("knee") or {}).get("knee_rps"),
                "max_achieved_rps": max((s.get("achieved_rps") or 0 for s in steps), default=None),
                "files": sorted(p.name for p in path.parent.iterdir() if p.suffix in (".png", ".html", ".json")),
            }
        )
    out.sort(key=lambda r: str(r.get("generated_at") or ""), reverse=True)
    return out


def report_path(root: Path | None, report_id: str, name: str = "report.json") -> Path:
    """The file ``name`` of one report, refusing any path outside ``root``."""
    if root is None:
        raise DataError("no load-test report folder is configured", hint="start the console with --reports DIR")
    base = root.resolve()
    path = (base / report_id / name).resolve()
    if not path.is_relative_to(base) or not path.is_file():
        raise DataError(f"no report {report_id!r} with a file {name!r}")
    return path


def curve(root: Path | None, report_id: str) -> dict[str, Any]:
    """A report's steps as latency-vs-offered-rate points."""
    data = json.loads(report_path(root, report_id).read_text(encoding="utf-8"))
    points = []
    for s in sorted(data.get("steps") or [], key=lambda s: s.get("offered_rps") or 0):
        lat = s.get("latency_ms") or {}
        points.append(
            {
                "offered_rps": s.get("offered_rps"),
                "achieved_rps": s.get("achieved_rps"),
                "p50_ms": lat.get("p50"),
                "p99_ms": lat.get("p99"),
                "error_rate": s.get("error_rate"),
            }
        )
    return {"id": report_id, "url": data.get("url"), "mode": data.get("mode"), "slo": data.get("slo"), "points": points}
