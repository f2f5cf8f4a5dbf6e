"""A running server's figures, read from its Prometheus ``/metrics``: requests/s, p50/p99, batches, 503s.

:func:`parse_prometheus` reads the text exposition into samples;
:func:`summarize` turns two scrapes ``seconds`` apart into the figures the
console shows (rates need two scrapes; percentiles come from the histogram
buckets' increase between them, or from their totals on the first scrape).

>>> text = 'mlscale_http_requests_total{route="/x",method="GET",code="200"} 10\\n'
>>> parse_prometheus(text)[0]
('mlscale_http_requests_total', {'route': '/x', 'method': 'GET', 'code': '200'}, 10.0)
"""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

__all__ = ["Sample", "fetch_metrics", "parse_prometheus", "summarize"]

Sample = tuple[str, dict[str, str], float]
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[Sample]:
    """(name, labels, value) of every sample line."""
    out: list[Sample] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            continue
        labels = dict(_LABEL.findall(m.group(3) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(4))))
        except ValueError:
            continue
    return out


def fetch_metrics(url: str, token: str | None, timeout: float = 2.0) -> str:
    """The text of ``url`` (a server's /metrics); raises OSError when it cannot be read."""
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # loopback or a URL the operator gave
        body: bytes = resp.read()
    return body.decode("utf-8", "replace")


def _total(samples: Sequence[Sample], name: str, **match: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in match.items()))


def _buckets(samples: Sequence[Sample], name: str, exclude_route: str | None = None) -> dict[float, float]:
    out: dict[float, float] = {}
    for n, lab, v in samples:
        if n != f"{name}_bucket" or (exclude_route and lab.get("route") == exclude_route):
            continue
        le = math.inf if lab.get("le") == "+Inf" else float(lab.get("le", "nan"))
        out[le] = out.get(le, 0.0) + v
    return out


def _quantile(buckets: dict[float, float], q: float) -> float | None:
    if not buckets:
        return None
    edges = sorted(buckets)
    total = buckets[edges[-1]]
    if total <= 0:
        return None
    target = q * total
    prev_edge, prev_count = 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= target:
            if math.isinf(edge):
                return prev_edge
            frac = 0.0 if count == prev_count else (target - prev_count) / (count - prev_count)
            return prev_edge + (edge - prev_edge) * frac
        prev_edge, prev_count = edge, count
    return prev_edge


def _delta(now: dict[float, float], before: dict[float, float] | None) -> dict[float, float]:
    if not before:
        return now
    return {k: v - before.get(k, 0.0) for k, v in now.items()}


def summarize(now: Sequence[Sample], before: Sequence[Sample] | None, seconds: float) -> dict[str, Any]:
    """The console's serving figures from a scrape (and the one ``seconds`` before, for rates)."""
    req_now = _total(now, "mlscale_http_requests_total")
    rej_now = _total(now, "mlscale_rejected_total")
    s503_now = sum(v for n, lab, v in now if n == "mlscale_http_requests_total" and lab.get("code") == "503")
    rate = None
    rej_rate = None
    if before is not None and seconds > 0:
        rate = max(0.0, req_now - _total(before, "mlscale_http_requests_total")) / seconds
        rej_rate = max(0.0, rej_now - _total(before, "mlscale_rejected_total")) / seconds
    lat = _delta(
        _buckets(now, "mlscale_http_request_duration_seconds"),
        _buckets(before, "mlscale_http_request_duration_seconds") if before else None,
    )
    batch = _buckets(now, "mlscale_batch_rows")
    batch_count = _total(now, "mlscale_batch_rows_count")
    batch_sum = _total(now, "mlscale_batch_rows_sum")
    p50 = _quantile(lat, 0.5)
    p99 = _quantile(lat, 0.99)
    versions = [
        {"model": lab.get("model"), "ref": lab.get("ref"), "version": int(v), "worker": lab.get("worker")}
        for n, lab, v in now
        if n == "mlscale_model_version"
    ]
    return {
        "requests_total": req_now,
        "requests_per_s": rate,
        "p50_ms": None if p50 is None else p50 * 1000,
        "p99_ms": None if p99 is None else p99 * 1000,
        "batches": batch_count,
        "mean_batch_rows": batch_sum / batch_count if batch_count else None,
        "batch_p99_rows": _quantile(batch, 0.99),
        "queue_rows": _total(now, "mlscale_queue_rows"),
        "rejected_total": rej_now,
        "rejected_per_s": rej_rate,
        "http_503_total": s503_now,
        "open_connections": _total(now, "mlscale_open_connections"),
        "worker_restarts": _total(now, "mlscale_worker_restarts_total"),
        "versions": versions,
    }


def unreachable(url: str, err: BaseException) -> str:
    """A clear line for a server that cannot be read."""
    if isinstance(err, urllib.error.HTTPError):
        return f"{url} answered {err.code} {err.reason}"
    reason = getattr(err, "reason", err)
    return f"cannot reach {url}: {reason} (is `mlscale serve` running there?)"
