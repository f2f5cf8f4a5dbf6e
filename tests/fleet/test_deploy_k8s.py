"""``mlscale deploy k8s``: the manifests validate against the Kubernetes schema (no cluster needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlscale.cli import main
from mlscale.deploy import K8sOptions, kubernetes_manifests, memory_from_report
from mlscale.errors import ValidationError

kv = pytest.importorskip("kubernetes_validate", reason="needs kubernetes-validate (the test extra)")
yaml = pytest.importorskip("yaml", reason="needs PyYAML (comes with kubernetes-validate)")

K8S_VERSION = "1.30.0"


def _load(out: Path) -> dict[str, Any]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))}


def test_the_written_manifests_validate_strictly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["deploy", "k8s", "--model", "demo=recommend/demo@production", "--replicas", "3", "--out", str(tmp_path)]
    assert main([*args, "--workers", "2", "--memory-per-worker", "300", "--namespace", "ml"]) == 0
    out = capsys.readouterr().out
    assert "kubectl create secret generic mlscale-registry --namespace ml" in out
    docs = _load(tmp_path)
    assert sorted(docs) == ["deployment.yaml", "hpa.yaml", "service.yaml"]
    for doc in docs.values():
        kv.validate(doc, K8S_VERSION, strict=True)  # raises on any schema violation

    deployment = docs["deployment.yaml"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 3
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "600Mi"}
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert container["command"][:2] == ["mlscale", "serve"]
    env = {e["name"]: e for e in container["env"]}
    for name in ("MLSCALE_REGISTRY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "mlscale-registry"
        assert "value" not in env[name]
    hpa = docs["hpa.yaml"]
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["spec"]["maxReplicas"] == 9
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    service = docs["service.yaml"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_validator_catches_a_broken_manifest() -> None:
    deployment = kubernetes_manifests(K8sOptions(model="recommend/demo", replicas=2))["deployment.yaml"]
    kv.validate(deployment, K8S_VERSION, strict=True)
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, K8S_VERSION, strict=True)


def test_memory_comes_from_a_report_or_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = {"steps": [{"server": {"process_resident_memory_bytes": 2 * 300 * (1 << 20)}}]}
    assert memory_from_report(report, workers=2) == pytest.approx(300)
    path = tmp_path / "knee.json"
    path.write_text(json.dumps(report))
    out = tmp_path / "k8s"
    base = ["deploy", "k8s", "--model", "recommend/demo", "--replicas", "1", "--out", str(out), "--workers", "2"]
    assert main([*base, "--report", str(path)]) == 0
    assert (
        _load(out)["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"]
        == "600Mi"
    )
    path.write_text(json.dumps({"steps": [{"server": {}}]}))
    assert main([*base, "--report", str(path)]) != 0
    assert "pass the measured figure with --memory-per-worker" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "field"),
    [({"replicas": 0}, "--replicas"), ({"name": "Bad_Name"}, "--name"), ({"max_replicas": 1, "replicas": 2}, "--max")],
)
def test_bad_options_name_the_flag(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        K8sOptions(model="recommend/demo", **change)
    assert (err.value.field or "").startswith(field)
