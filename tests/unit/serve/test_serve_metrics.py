"""Metrics shared by processes through memory-mapped files, in Prometheus text."""

from __future__ import annotations

import doctest
from pathlib import Path

import mlscale.serve._metrics as metrics_module
from mlscale.serve._metrics import Counter, Gauge, Histogram, Metrics, mark_dead


def _declare(m: Metrics) -> tuple[Counter, Histogram, Gauge]:
    c = m.counter("t_requests_total", "Requests.", ("route", "code"))
    h = m.histogram("t_latency_seconds", "Latency.", ("route",), buckets=(0.01, 0.1))
    g = m.gauge("t_version", "Version.", ("model",))
    return c, h, g


def test_counts_are_summed_over_processes_and_kept_after_death(tmp_path: Path) -> None:
    a, b = Metrics(tmp_path, worker="101"), Metrics(tmp_path, worker="102")
    ca, ha, ga = _declare(a)
    cb, hb, gb = _declare(b)
    ca.inc(("/x", "200"))
    cb.inc(("/x", "200"), 2)
    cb.inc(("/y", "404"))
    ha.observe(("/x",), 0.005)
    hb.observe(("/x",), 0.05)
    hb.observe(("/x",), 5.0)
    ga.set(("ml",), 3)
    gb.set(("ml",), 4)
    text = a.render().decode()
    assert 't_requests_total{route="/x",code="200"} 3' in text
    assert 't_requests_total{route="/y",code="404"} 1' in text
    assert 't_latency_seconds_bucket{route="/x",le="0.01"} 1' in text
    assert 't_latency_seconds_bucket{route="/x",le="0.1"} 2' in text
    assert 't_latency_seconds_bucket{route="/x",le="+Inf"} 3' in text
    assert 't_latency_seconds_count{route="/x"} 3' in text
    assert 't_latency_seconds_sum{route="/x"} 5.055' in text
    assert 't_version{model="ml",worker="101"} 3' in text
    assert 't_version{model="ml",worker="102"} 4' in text
    assert "# TYPE t_latency_seconds histogram" in text
    mark_dead(tmp_path, "102")
    text = a.render().decode()
    assert 't_requests_total{route="/x",code="200"} 3' in text  # counts never go down
    assert 'worker="102"' not in text  # a dead worker's gauges are gone


def test_in_memory_metrics_and_label_escaping() -> None:
    m = Metrics(None, worker="1")
    c = m.counter("t_total", "Total.", ("path",))
    c.inc(('a"b\\c',))
    assert 't_total{path="a\\"b\\\\c"} 1' in m.render().decode()


def test_doctest() -> None:
    result = doctest.testmod(metrics_module)
    assert result.attempted > 0
    assert result.failed == 0
