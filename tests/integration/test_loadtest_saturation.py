"""The load tester owns up to its own saturation: against a deliberately slow server (loopback)."""

from __future__ import annotations

from typing import Any

import pytest

from mlscale.loadtest import PlainScenario, Slo, StepSpec, run_loadtest

pytestmark = pytest.mark.slow


def test_late_sends_and_client_timeouts_are_reported_as_saturation(fake_server: Any) -> None:
    # 4 connections to a server answering after 0.4 s carry 10/s: 60/s offered must queue in the
    # generator (send lag) and time out client-side; neither may pass for an unsaturated run.
    spec = StepSpec(rate=60, duration=2, arrival="constant", timeout=0.6, max_connections=4)
    with fake_server(delay=0.4) as url:
        report = run_loadtest(url, PlainScenario(), spec, Slo(), processes=1)
    step = report.steps[0][0]
    assert step.errors.get("timeout", 0) > 0
    assert step.percentile_ms(99, "send_lag") > 100
    assert step.saturated
    assert not step.generator_saturated  # the generator's CPU was idle: it was waiting for connections
    assert any("requests waited to be sent" in r for r in step.saturation)
    assert any("timed out client-side" in r for r in step.saturation)
    summary = report.summary()
    assert "load not applied as offered" in summary
    assert "timed out client-side" in summary
    assert report.as_dict()["steps"][0]["generator"]["saturated"] is True


def test_an_easy_run_is_not_saturated(fake_server: Any) -> None:
    with fake_server(delay=0.001) as url:
        spec = StepSpec(rate=50, duration=1, warmup=0.3, arrival="constant")
        report = run_loadtest(url, PlainScenario(), spec, Slo(), processes=1)
    step = report.steps[0][0]
    assert not step.saturated, step.saturation
