"""Deployment files for an existing orchestrator (Kubernetes), from measured figures.

:func:`kubernetes_manifests` writes a Deployment (readiness on ``/readyz``,
liveness on ``/healthz``, resource requests from the measured memory per
worker), a Service, a HorizontalPodAutoscaler on CPU, Prometheus scrape
annotations, and takes the registry URI and its credentials from a Secret.
"""

from __future__ import annotations

from mlscale.deploy.kubernetes import K8sOptions, kubernetes_manifests, memory_from_report, to_yaml

__all__ = ["K8sOptions", "kubernetes_manifests", "memory_from_report", "to_yaml"]
