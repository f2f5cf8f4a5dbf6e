"""Settings of one ``mlscale serve`` run, shared by the supervisor and its workers."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlscale.errors import ValidationError

__all__ = ["ServeConfig"]

# A served name is one URL path segment (/v1/models/{name}/...): plain characters only.
_SERVED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """Everything a worker needs to serve, besides the bearer token (passed in its environment).

    ``models``: (served name, registry reference) pairs. Times are in seconds.
    """

    #: The store's :attr:`~mlscale.registry.Store.location` (a folder or a URI such as ``s3://bucket/prefix``).
    registry: str
    models: tuple[tuple[str, str], ...]
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int = 1
    max_batch: int = 256
    batch_wait: float = 0.0
    max_queue: int = 2048
    timeout: float = 1.0
    max_body: int = 1 << 20
    max_connections: int = 10_000
    poll_interval: float = 1.0
    verify: bool = True
    grace: float = 10.0
    backlog: int = 2048
    metrics_dir: Path | None = field(default=None)
    #: ``"module:attribute"`` of the predictor factory the workers build served models with (injected by
    #: the caller: the serve stage names no application).
    predictor_factory: str = ""
    #: Extra routes, as (``"module:attribute"`` of a mount factory, JSON options) pairs
    #: (:mod:`mlscale.serve.mount`).
    mounts: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("workers", 1 <= self.workers <= 512, "1..512"),
            ("threads", 1 <= self.threads <= 512, "1..512"),
            ("port", 0 <= self.port <= 65535, "0..65535 (0: any free port)"),
            ("max_batch", self.max_batch >= 1, ">= 1"),
            ("batch_wait", 0 <= self.batch_wait <= 1, "0..1 second"),
            ("max_queue", self.max_queue >= 1, ">= 1"),
            ("timeout", 0 < self.timeout <= 600, "a number of seconds in (0, 600]"),
            ("max_body", self.max_body >= 1024, ">= 1024 bytes"),
            ("max_connections", self.max_connections >= 1, ">= 1"),
            ("poll_interval", self.poll_interval > 0, "> 0 seconds"),
            ("grace", self.grace >= 0, ">= 0 seconds"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValidationError(f"expected {expected}, got {getattr(self, name)!r}", field=name)
        if not self.models and not self.mounts:
            raise ValidationError("expected at least one model to serve", field="models")
        names = [n for n, _ in self.models]
        for name in names:
            if not isinstance(name, str) or not _SERVED_NAME.fullmatch(name) or ".." in name:
                raise ValidationError(
                    f"invalid served name {str(name)[:100]!r}: use 1 to 64 characters from A-Z, a-z, 0-9, "
                    "'_', '.' and '-', starting with a letter or digit (no '/', no '..')",
                    field="models",
                    hint="name it with --model NAME=APP/MODEL@ALIAS",
                )
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValidationError(
                f"two models are served as {dupes[0]!r}",
                field="models",
                hint="name them apart: --model NAME=APP/MODEL@ALIAS",
            )

    def to_json(self) -> str:
        """For the worker processes' command line."""
        data: dict[str, Any] = asdict(self)
        data["metrics_dir"] = None if self.metrics_dir is None else str(self.metrics_dir)
        data["models"] = [list(m) for m in self.models]
        data["mounts"] = [list(m) for m in self.mounts]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        data["registry"] = str(data["registry"])
        data["metrics_dir"] = None if data["metrics_dir"] is None else Path(data["metrics_dir"])
        data["models"] = tuple((str(n), str(r)) for n, r in data["models"])
        data["mounts"] = tuple((str(f), str(o)) for f, o in data.get("mounts", ()))
        return cls(**data)
