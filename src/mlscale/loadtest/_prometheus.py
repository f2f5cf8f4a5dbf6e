"""Scrape a Prometheus ``/metrics`` page for the server-side view of a step (private).

Only what the report needs: counters and histogram sums/counts, summed over
labels, read before and after a step so the report shows that step's deltas.
"""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlsplit

__all__ = ["deltas", "scrape"]

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)")


def scrape(url: str, timeout: float = 2.0) -> dict[str, float] | None:
    """Totals of every sample name on the page; None when there is no such page."""
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/metrics")
        resp = conn.getresponse()
        if resp.status != 200:
            return None
        text = resp.read().decode("utf-8", errors="replace")
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m or (m.group(2) and 'le="' in m.group(2)):
            continue  # histogram buckets are left out: _sum and _count carry the means
        try:
            totals[m.group(1)] = totals.get(m.group(1), 0.0) + float(m.group(3))
        except ValueError:
            continue
    return totals


def deltas(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float]:
    """Server-side figures for the interval: mean batch size and queue time where the server exports them."""
    if not before or not after:
        return {}
    d = {k: after[k] - before.get(k, 0.0) for k in after}
    out: dict[str, float] = {}
    for name in (
        "mlscale_batch_rows",
        "mlscale_batch_requests",
        "mlscale_queue_seconds",
        "mlscale_batch_duration_seconds",
    ):
        s, c = d.get(f"{name}_sum"), d.get(f"{name}_count")
        if s is not None and c:
            out[f"{name}_mean"] = s / c
            out[f"{name}_count"] = c
    rejected = {k: v for k, v in d.items() if "rejected" in k and v}
    out.update(rejected)
    return out
