from __future__ import annotations

from pathlib import Path

import pytest

from mlscale.cli import main
from mlscale.errors import ValidationError
from mlscale.loadtest import ScenarioSpec, Slo, StepResult, StepSpec, capacity_plan, find_knee, judge


def step(rate: float, p99_ms: float, errors: int = 0, lag_ms: float = 0.1, cpu: float = 0.3) -> StepResult:
    r = StepResult(spec=StepSpec(rate=rate, duration=1))
    r.sent = r.completed = r.ok = int(rate)
    for _ in range(99):
        r.latency.record_value(1000)
    r.latency.record_value(int(p99_ms * 1000) * 2)
    r.latency.record_value(int(p99_ms * 1000))
    r.send_lag.record_value(int(lag_ms * 1000))
    r.errors = {"http_503": errors} if errors else {}
    r.cpu = [cpu]
    return r


def test_slo_parse_and_defaults() -> None:
    slo = Slo.parse(["p99.9=200ms", "p50=0.5s", "errors=1%"])
    assert slo.latency_ms == {99.9: 200.0, 50.0: 500.0}
    assert slo.max_error_rate == 0.01
    assert Slo.parse([]).latency_ms == {99.0: 50.0}
    for bad in ["p99", "p99=fast", "q1=3ms", "errors=lots", "errors=150%"]:
        with pytest.raises(ValidationError, match="--slo"):
            Slo.parse([bad])


def test_judge_names_what_failed() -> None:
    slo = Slo.parse(["p99=50ms", "errors=1%"])
    assert judge(step(100, 10), slo).passed
    verdict = judge(step(100, 80, errors=5), slo)
    assert not verdict.passed
    assert any("p99" in r for r in verdict.reasons)
    assert any("errors" in r for r in verdict.reasons)


def test_generator_saturation_is_not_blamed_on_the_server() -> None:
    assert step(100, 10, lag_ms=20, cpu=0.99).generator_saturated
    assert not step(100, 10, lag_ms=20, cpu=0.2).generator_saturated  # late but idle: the machine, not us
    seen = []
    knee = find_knee(
        lambda rate: step(rate, 10, lag_ms=20, cpu=0.99) if rate > 200 else step(rate, 10),
        Slo(),
        start=100,
        on_step=lambda s, v: seen.append(s.offered_rate),
    )
    assert knee.limited_by_generator
    assert knee.knee_rps == 200
    assert seen == [100, 200, 400]


def test_knee_bisects_between_pass_and_fail() -> None:
    knee = find_knee(lambda rate: step(rate, 10 if rate <= 700 else 90), Slo(), start=100, refine=4)
    assert 650 <= (knee.knee_rps or 0) <= 700
    assert not knee.limited_by_generator


def test_capacity_plan() -> None:
    plan = capacity_plan(knee_rps=1000, target_rps=2500, headroom=1.25, requests_per_user_per_day=10, peak_factor=2)
    assert plan.replicas == 4  # ceil(2500 * 1.25 / 1000)
    assert plan.users_per_replica == 3_456_000  # 800 req/s * 86400 / (10 * 2)
    with pytest.raises(ValidationError):
        capacity_plan(knee_rps=0)


def test_malformed_scenario_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "syntax.toml": "[load\nrate = 1",
        "unknown.toml": "[load]\nspeed = 3\n",
        "type.toml": '[load]\nrate = "fast"\n',
        "section.toml": "[extra]\nx = 1\n",
        "negative.toml": "[load]\nduration = -1\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValidationError):
            ScenarioSpec.load(tmp_path / name)
        assert main(["loadtest", "http://127.0.0.1:9/", "--scenario", str(tmp_path / name)]) == 64
        assert str(tmp_path / name) in capsys.readouterr().err


def test_unknown_app_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loadtest", "http://127.0.0.1:9/", "--scenario", "recomend", "--model", "x"]) != 0
    err = capsys.readouterr().err
    assert "unknown application 'recomend'" in err
    assert "did you mean 'recommend'" in err
