"""Kubernetes manifests for ``mlscale serve`` on an object-store registry.

What is written, and why:

- **Deployment**: ``replicas`` pods, each ``mlscale serve`` with ``workers``
  processes; readiness on ``/readyz`` (models loaded and warm, not draining:
  the Service only sends traffic to ready pods), liveness on ``/healthz``, a
  startup probe so a slow first download is not taken for a hang; the
  termination grace outlasts the server's own drain. Requests: one CPU per
  worker and the measured memory per worker times the workers (the model is
  memory-mapped from the pod's cache, so workers share it and the request is
  an upper bound); the memory limit is 1.5x the request, and there is no CPU
  limit (throttling a latency-bound server costs more than it protects).
- **Service**: ClusterIP, port 80 to the pods' 8000.
- **HorizontalPodAutoscaler** (autoscaling/v2) on CPU utilisation, from
  ``replicas`` to ``max_replicas``.
- **Prometheus**: ``prometheus.io/scrape|port|path`` annotations on the pods.
- **Secret**: referenced, never written: ``MLSCALE_REGISTRY`` (the ``s3://`` URI),
  ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` come from it through
  ``secretKeyRef``, ``AWS_ENDPOINT_URL`` optionally (for a store other than AWS).
  :func:`secret_command` is the ``kubectl`` line that creates it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlscale._version import __version__
from mlscale.errors import ValidationError
from mlscale.registry import ModelRef

__all__ = ["K8sOptions", "kubernetes_manifests", "memory_from_report", "secret_command", "to_yaml"]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
PORT = 8000
#: Memory per worker assumed when none was measured (and said so in the output).
DEFAULT_MEMORY_MIB = 512.0


@dataclass(frozen=True)
class K8sOptions:
    """What the manifests are made from."""

    model: str
    replicas: int = 2
    name: str = "mlscale"
    image: str = f"mlscale:{__version__}"
    workers: int = 1
    memory_per_worker_mib: float | None = None
    max_replicas: int | None = None
    cpu_target: int = 70
    secret: str = "mlscale-registry"
    namespace: str | None = None
    poll_interval: float = 5.0
    grace: float = 10.0

    def __post_init__(self) -> None:
        for field, value in (("name", self.name), ("secret", self.secret), ("namespace", self.namespace)):
            if value is not None and not _DNS_LABEL.fullmatch(value):
                raise ValidationError(
                    f"{value!r} is not a Kubernetes name (1-63 characters a-z, 0-9 and '-')", field=f"--{field}"
                )
        for field, number, low in (("replicas", self.replicas, 1), ("workers", self.workers, 1)):
            if number < low:
                raise ValidationError(f"expected at least {low}, got {number}", field=f"--{field}")
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValidationError(
                f"expected at least --replicas ({self.replicas}), got {self.max_replicas}", field="--max-replicas"
            )
        if not 1 <= self.cpu_target <= 100:
            raise ValidationError(f"expected a percentage 1..100, got {self.cpu_target}", field="--cpu-target")
        if self.memory_per_worker_mib is not None and not self.memory_per_worker_mib > 0:
            raise ValidationError("expected a positive number of MiB", field="--memory-per-worker")
        spec = self.model.partition("=")[2] if "=" in self.model else self.model
        ModelRef.parse(spec)  # a bad reference fails here, not in the cluster

    @property
    def memory_mib(self) -> float:
        return self.memory_per_worker_mib or DEFAULT_MEMORY_MIB


def memory_from_report(report: Mapping[str, Any], workers: int = 1) -> float | None:
    """Resident MiB per worker from a load-test report's server figures, when they hold it.

    Reads ``process_resident_memory_bytes`` (the Prometheus name) scraped
    from ``/metrics`` into each step's ``server`` figures, summed over the
    workers, so divided by ``workers``. ``None`` when no step has it.
    """
    best = 0.0
    for step in report.get("steps", []) or []:
        server = step.get("server") if isinstance(step, Mapping) else None
        if isinstance(server, Mapping):
            value = server.get("process_resident_memory_bytes")
            if isinstance(value, int | float) and value > best:
                best = float(value)
    return best / workers / (1 << 20) if best else None


def _labels(opts: K8sOptions) -> dict[str, str]:
    return {"app.kubernetes.io/name": opts.name, "app.kubernetes.io/component": "serve"}


def _meta(opts: K8sOptions) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": opts.name, "labels": _labels(opts)}
    if opts.namespace:
        meta["namespace"] = opts.namespace
    return meta


def _secret_env(name: str, secret: str, key: str, *, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def kubernetes_manifests(opts: K8sOptions) -> dict[str, dict[str, Any]]:
    """File name -> Kubernetes object: ``deployment.yaml``, ``service.yaml``, ``hpa.yaml``."""
    memory = math.ceil(opts.memory_mib * opts.workers)
    probe = {"port": "http"}
    container = {
        "name": "serve",
        "image": opts.image,
        "command": [
            "mlscale",
            "serve",
            "--host",
            "0.0.0.0",  # inside the pod: the Service decides who reaches it
            "--port",
            str(PORT),
            "--workers",
            str(opts.workers),
            "--model",
            opts.model,
            "--poll-interval",
            f"{opts.poll_interval:g}",
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [
            _secret_env("MLSCALE_REGISTRY", opts.secret, "registry"),
            _secret_env("AWS_ACCESS_KEY_ID", opts.secret, "AWS_ACCESS_KEY_ID"),
            _secret_env("AWS_SECRET_ACCESS_KEY", opts.secret, "AWS_SECRET_ACCESS_KEY"),
            _secret_env("AWS_ENDPOINT_URL", opts.secret, "AWS_ENDPOINT_URL", optional=True),
            {"name": "MLSCALE_CACHE_DIR", "value": "/var/cache/mlscale"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", **probe},
            "periodSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", **probe},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "startupProbe": {
            "httpGet": {"path": "/healthz", **probe},
            "periodSeconds": 2,
            "failureThreshold": 60,
        },
        "resources": {
            "requests": {"cpu": str(opts.workers), "memory": f"{memory}Mi"},
            "limits": {"memory": f"{math.ceil(memory * 1.5)}Mi"},
        },
        "volumeMounts": [{"name": "model-cache", "mountPath": "/var/cache/mlscale"}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(opts),
        "spec": {
            "replicas": opts.replicas,
            "selector": {"matchLabels": _labels(opts)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": _labels(opts),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": math.ceil(opts.grace) + 5,
                    "containers": [container],
                    "volumes": [{"name": "model-cache", "emptyDir": {}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(opts),
        "spec": {
            "type": "ClusterIP",
            "selector": _labels(opts),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(opts),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": opts.name},
            "minReplicas": opts.replicas,
            "maxReplicas": opts.max_replicas or opts.replicas * 3,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": opts.cpu_target},
                    },
                }
            ],
        },
    }
    return {"deployment.yaml": deployment, "service.yaml": service, "hpa.yaml": hpa}


def secret_command(opts: K8sOptions) -> str:
    """The ``kubectl`` line that creates the Secret the pods read (values left to the user's shell)."""
    namespace = f" --namespace {opts.namespace}" if opts.namespace else ""
    return (
        f"kubectl create secret generic {opts.secret}{namespace} "
        '--from-literal=registry="s3://BUCKET/PREFIX" '
        '--from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" '
        '--from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"'
    )


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML of plain JSON data; strings are JSON-quoted (valid YAML), so nothing is re-typed.

    >>> print(to_yaml({"a": [1, {"b": "x"}], "c": {}, "d": True}), end="")
    a:
      - 1
      - b: "x"
    c: {}
    d: true
    """
    pad = " " * indent
    if isinstance(value, Mapping):
        if not value:
            return f"{pad}{{}}\n"
        out = []
        for key, item in value.items():
            if isinstance(item, Mapping | list) and item:
                out.append(f"{pad}{_scalar(key)}:\n{to_yaml(item, indent + 2)}")
            else:
                out.append(f"{pad}{_scalar(key)}: {_inline(item)}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return f"{pad}[]\n"
        out = []
        for item in value:
            if isinstance(item, Mapping | list) and item:
                nested = to_yaml(item, indent + 2)
                out.append(f"{pad}- {nested[indent + 2 :]}")
            else:
                out.append(f"{pad}- {_inline(item)}\n")
        return "".join(out)
    return f"{pad}{_inline(value)}\n"


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(value)  # strings always quoted: "0.0.0.0", "1", "true" stay strings


def _scalar(key: Any) -> str:
    """A mapping key: bare when it cannot be read as anything but that string."""
    text = str(key)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./-]*", text) and text.lower() not in _KEYWORDS:
        return text
    return json.dumps(text)


_KEYWORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})
