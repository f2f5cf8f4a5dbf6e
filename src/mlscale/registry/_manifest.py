"""The manifest of one model version: what it is, how it was made, and the checksum of each file.

A manifest is stored as ``manifest.json`` in its version folder. Reading one
validates every field, so a hand-edited or truncated manifest is refused with
an :class:`~mlscale.errors.ArtifactError` instead of failing later.

>>> m = Manifest(app="recommend", name="ml100k", version=3, params={"factors": 64},
...              metrics={"ndcg@10": 0.31}, engine="local", data_fingerprint="abc",
...              created="2024-05-01T12:00:00.000Z", mlscale_version="0.1.0",
...              files={}, extra={})
>>> str(m.ref)
'recommend/ml100k@3'
>>> Manifest.from_json(m.to_json()) == m
True
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mlscale.errors import ArtifactError
from mlscale.registry._checksum import SHA256_HEX
from mlscale.registry._names import is_valid_name
from mlscale.registry._ref import ModelRef

__all__ = ["MANIFEST_FORMAT", "Manifest", "check_filename"]

#: Version of the manifest layout this mlscale writes and reads.
MANIFEST_FORMAT = 1

_FIELDS = (
    "format",
    "app",
    "name",
    "version",
    "params",
    "metrics",
    "engine",
    "data_fingerprint",
    "created",
    "mlscale_version",
    "files",
    "extra",
)
_RESERVED_FILES = frozenset({"manifest.json", "manifest.sha256"})


def check_filename(filename: object, source: str) -> str:
    """Return ``filename`` if it is a plain file name that may be listed in a manifest.

    A listed file must sit directly in the version folder: no separators, no
    leading dot, not one of the manifest's own files.
    """
    if (
        not isinstance(filename, str)
        or not filename
        or len(filename) > 255
        or filename.startswith(".")
        or any(c in filename for c in "/\\\0")
        or filename in _RESERVED_FILES
    ):
        raise ArtifactError(
            f"{source}: malformed manifest: {filename!r} in 'files' is not a plain file name of the version folder"
        )
    return filename


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


@dataclass(frozen=True)
class Manifest:
    """Everything recorded about one published model version.

    ``files`` maps each artifact file name to the lower-case hex SHA-256 of
    its bytes; ``created`` is UTC ISO-8601; ``extra`` is free JSON for the
    application that published the model.
    """

    app: str
    name: str
    version: int
    params: dict[str, Any]
    metrics: dict[str, float]
    engine: str
    data_fingerprint: str
    created: str
    mlscale_version: str
    files: dict[str, str]
    extra: dict[str, Any]

    @property
    def ref(self) -> ModelRef:
        """The exact reference of this version, ``app/name@VERSION``."""
        return ModelRef(self.app, self.name, str(self.version))

    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain JSON data, including the ``format`` number."""
        return {
            "format": MANIFEST_FORMAT,
            "app": self.app,
            "name": self.name,
            "version": self.version,
            "params": self.params,
            "metrics": self.metrics,
            "engine": self.engine,
            "data_fingerprint": self.data_fingerprint,
            "created": self.created,
            "mlscale_version": self.mlscale_version,
            "files": dict(sorted(self.files.items())),
            "extra": self.extra,
        }

    def to_json(self) -> str:
        """Pretty, strict JSON (no NaN) ending in a newline.

        Keys keep their order (``metrics`` in particular: the first ones are the
        key metrics that listings show).
        """
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "manifest.json") -> Manifest:
        """Parse and validate a manifest; :class:`~mlscale.errors.ArtifactError` names ``source`` if bad."""
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as err:
            raise ArtifactError(f"{source}: malformed manifest: not valid JSON ({err})") from None
        except RecursionError:
            raise ArtifactError(f"{source}: malformed manifest: nested too deeply to be one mlscale writes") from None
        try:
            return cls.from_dict(data, source=source)
        except RecursionError:
            raise ArtifactError(f"{source}: malformed manifest: nested too deeply to be one mlscale writes") from None

    @classmethod
    def from_dict(cls, data: object, *, source: str = "manifest.json") -> Manifest:
        """Validate plain JSON data (as :meth:`to_dict` writes it) into a manifest."""

        def bad(message: str) -> ArtifactError:
            return ArtifactError(f"{source}: malformed manifest: {message}")

        if not isinstance(data, dict):
            raise bad(f"expected a JSON object, found {type(data).__name__}")
        fmt = data.get("format")
        if type(fmt) is not int or fmt < 1:
            raise bad(f"field 'format' must be a whole number >= 1, found {fmt!r}")
        if fmt > MANIFEST_FORMAT:
            raise ArtifactError(
                f"{source}: manifest format {fmt} was written by a newer mlscale "
                f"(this one reads format {MANIFEST_FORMAT})",
                hint="upgrade mlscale",
            )
        missing = [f for f in _FIELDS if f not in data]
        unknown = sorted(set(data) - set(_FIELDS))
        if missing:
            raise bad(f"missing field(s) {', '.join(missing)}")
        if unknown:
            raise bad(f"unknown field(s) {', '.join(unknown)}")

        for field in ("app", "name"):
            if not is_valid_name(data[field]):
                raise bad(f"field {field!r} is not a valid name: {data[field]!r}")
        version = data["version"]
        if type(version) is not int or version < 1:
            raise bad(f"field 'version' must be a whole number >= 1, found {version!r}")
        for field in ("params", "extra", "metrics", "files"):
            if not isinstance(data[field], dict):
                raise bad(f"field {field!r} must be a JSON object, found {type(data[field]).__name__}")
        metrics: dict[str, float] = {}
        for key, value in data["metrics"].items():
            if type(value) not in (int, float) or not math.isfinite(value):
                raise bad(f"metric {key!r} must be a finite number, found {value!r}")
            metrics[key] = float(value)
        for field in ("engine", "mlscale_version"):
            if not isinstance(data[field], str) or not data[field]:
                raise bad(f"field {field!r} must be a non-empty string, found {data[field]!r}")
        if not isinstance(data["data_fingerprint"], str):
            raise bad(f"field 'data_fingerprint' must be a string, found {data['data_fingerprint']!r}")
        created = data["created"]
        if not isinstance(created, str) or not _is_utc_iso(created):
            raise bad(f"field 'created' must be a UTC ISO-8601 time, found {created!r}")
        files: dict[str, str] = {}
        for filename, digest in data["files"].items():
            check_filename(filename, source)
            if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
                raise bad(f"checksum of {filename!r} must be 64 lower-case hex digits, found {digest!r}")
            files[filename] = digest
        return cls(
            app=data["app"],
            name=data["name"],
            version=version,
            params=data["params"],
            metrics=metrics,
            engine=data["engine"],
            data_fingerprint=data["data_fingerprint"],
            created=created,
            mlscale_version=data["mlscale_version"],
            files=files,
            extra=data["extra"],
        )


def _is_utc_iso(text: str) -> bool:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return False
    return when.utcoffset() == timedelta(0)
