"""What both stores do alike: reference parsing, error wording, manifest files, request checks.

The file store and the object store lay versions out differently but must answer the same
way (same refusals, same messages) and write the cached copy of a version exactly as the
file store does, so that one reader serves both; keeping those parts here keeps them equal.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mlscale.errors import ModelNotFoundError, RegistryError
from mlscale.registry._ref import LATEST, ModelRef, check_alias

__all__ = [
    "MANIFEST",
    "MANIFEST_SHA",
    "as_ref",
    "check_promote_alias",
    "check_remove_request",
    "model_not_found",
    "shorten",
    "write_manifest_files",
]

MANIFEST = "manifest.json"
MANIFEST_SHA = "manifest.sha256"

_SHOW_AT_MOST = 20


def as_ref(ref: ModelRef | str) -> ModelRef:
    """``ref`` as a :class:`ModelRef`, parsing a string; anything else is a :class:`RegistryError`."""
    if isinstance(ref, ModelRef):
        return ref
    if isinstance(ref, str):
        return ModelRef.parse(ref)
    raise RegistryError(f"invalid model reference {ref!r}: expected 'app/name[@alias|@VERSION]' or a ModelRef")


def shorten(items: list[str]) -> str:
    """The first items joined by commas, and how many more there are.

    >>> shorten([])
    'none'
    >>> shorten([str(i) for i in range(22)]).endswith("19 and 2 more")
    True
    """
    if not items:
        return "none"
    more = len(items) - _SHOW_AT_MOST
    return ", ".join(items[:_SHOW_AT_MOST]) + (f" and {more} more" if more > 0 else "")


def model_not_found(app: str, name: str, location: object, known: list[str]) -> ModelNotFoundError:
    """The error for a missing ``app/name`` in the registry at ``location``, naming the models ``known`` there."""
    if not known:
        return ModelNotFoundError(
            f"no model {app}/{name}: the registry {location} is empty",
            hint="train and publish a model first, or pass the right --registry",
        )
    return ModelNotFoundError(f"no model {app}/{name} in {location}; models there: {shorten(known)}")


def check_promote_alias(alias: str) -> None:
    """Refuse an alias that cannot be set: an invalid name, or ``latest`` (always the highest version)."""
    check_alias(alias)
    if alias == LATEST:
        raise RegistryError(
            "alias 'latest' always means the highest version and cannot be moved",
            hint="use another alias, such as 'production' or 'staging'",
        )


def check_remove_request(ref: ModelRef, *, all_versions: bool) -> None:
    """Refuse a removal that names too much or too little: one version with ``all_versions``, or none without."""
    if all_versions and not ref.is_latest:
        raise RegistryError(f"removing all versions takes a model ('{ref.model}'), not one version ('{ref}')")
    if not all_versions and ref.is_latest:
        raise RegistryError(
            f"say which version of {ref.model} to remove, e.g. '{ref.model}@3'",
            hint="to remove the model with every version, use all_versions=True (--all)",
        )


def write_manifest_files(folder: Path, raw: bytes) -> None:
    """Write ``manifest.json`` (``raw``) and its ``manifest.sha256`` sidecar into ``folder``, each synced."""
    for filename, data in (
        (MANIFEST, raw),
        (MANIFEST_SHA, f"{hashlib.sha256(raw).hexdigest()}  {MANIFEST}\n".encode()),
    ):
        with open(folder / filename, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
