"""``mlscale deploy k8s``: Kubernetes manifests for serving a model from an object-store registry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlscale.deploy.kubernetes import (
    DEFAULT_MEMORY_MIB,
    K8sOptions,
    kubernetes_manifests,
    memory_from_report,
    secret_command,
    to_yaml,
)
from mlscale.errors import ValidationError

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    """Add the ``deploy`` group to the top-level subparsers."""
    parser = sub.add_parser(
        "deploy",
        help="deployment files for an orchestrator (Kubernetes)",
        description="Write deployment files for serving registry models on an existing orchestrator.",
    )
    group = parser.add_subparsers(dest="deploy_command", metavar="TARGET", required=True)
    p = group.add_parser(
        "k8s",
        help="Deployment, Service, HorizontalPodAutoscaler (registry and credentials from a Secret)",
        description="Write deployment.yaml, service.yaml and hpa.yaml to --out: readiness on /readyz, liveness "
        "on /healthz, resource requests from the measured memory per worker, Prometheus scrape annotations, "
        "and MLSCALE_REGISTRY plus the AWS credentials from a Secret (created with the printed kubectl line).",
    )
    p.add_argument("--model", required=True, help="[NAME=]APP/MODEL[@alias], e.g. recommend/ml@production")
    p.add_argument("--replicas", type=int, required=True, help="pods (the autoscaler's minimum)")
    p.add_argument("--max-replicas", type=int, help="the autoscaler's maximum (default: 3x --replicas)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the manifests to")
    p.add_argument("--name", default="mlscale", help="name of the Deployment, Service and autoscaler")
    p.add_argument("--namespace", help="Kubernetes namespace (default: none written: kubectl's current one)")
    p.add_argument("--image", default=K8sOptions.image, help=f"container image (default: {K8sOptions.image})")
    p.add_argument("--workers", type=int, default=1, help="worker processes per pod (default 1; 1 CPU each)")
    p.add_argument("--memory-per-worker", type=float, metavar="MIB", help="measured resident memory per worker")
    p.add_argument("--report", type=Path, metavar="FILE", help="a load-test JSON report with the server's memory")
    p.add_argument("--cpu-target", type=int, default=70, help="autoscaler CPU utilisation target %% (default 70)")
    p.add_argument("--secret", default="mlscale-registry", help="Secret holding registry URI and credentials")
    p.add_argument("--poll-interval", type=float, default=5.0, help="seconds between checks for a promotion")
    p.set_defaults(handler=_k8s)


def _k8s(args: argparse.Namespace) -> int:
    memory = args.memory_per_worker
    source = "--memory-per-worker"
    if memory is None and args.report is not None:
        try:
            report = json.loads(args.report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValidationError(f"{args.report}: not a load-test JSON report ({err})", field="--report") from None
        memory = memory_from_report(report if isinstance(report, dict) else {}, args.workers)
        source = str(args.report)
        if memory is None:
            raise ValidationError(
                f"{args.report}: no step holds the server's resident memory (process_resident_memory_bytes)",
                field="--report",
                hint="pass the measured figure with --memory-per-worker MIB",
            )
    opts = K8sOptions(
        model=args.model,
        replicas=args.replicas,
        name=args.name,
        image=args.image,
        workers=args.workers,
        memory_per_worker_mib=memory,
        max_replicas=args.max_replicas,
        cpu_target=args.cpu_target,
        secret=args.secret,
        namespace=args.namespace,
        poll_interval=args.poll_interval,
    )
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for filename, obj in kubernetes_manifests(opts).items():
            (args.out / filename).write_text(to_yaml(obj), encoding="utf-8")
            print(f"wrote {args.out / filename}")
    except OSError as err:
        raise ValidationError(f"cannot write to {args.out}: {err}", field="--out") from None
    if memory is None:
        print(f"memory per worker not measured: assumed {DEFAULT_MEMORY_MIB:g} MiB (pass --memory-per-worker)")
    else:
        print(f"memory per worker: {memory:,.0f} MiB (from {source})")
    print("create the Secret the pods read the registry and credentials from:")
    print(f"  {secret_command(opts)}")
    print(f"then: kubectl apply -f {args.out}")
    return 0
