"""The contract every model store keeps, and what loading a model gives back.

:class:`Store` is deliberately small so a second implementation (an object
store, say) only has to provide these methods; :class:`~mlscale.registry.FileStore`
is the embedded default.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy.typing as npt
import pyarrow as pa

from mlscale.registry._manifest import Manifest
from mlscale.registry._ref import ModelRef

__all__ = ["LoadedModel", "Store"]

#: Immutable empty mapping, the default for optional mapping arguments.
NO_ITEMS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model version read from a store, with its checksums verified.

    ``arrays`` maps each ``<key>.npy`` file to its array (read-only memory
    maps when loaded with ``mmap=True``) and each member of a ``<key>.npz``
    file to ``"<key>/<member>"``; ``tables`` maps each ``<key>.parquet``
    file to its table. ``.json`` and ``.safetensors`` artifacts are checked
    but not decoded: read them from ``path``.
    """

    manifest: Manifest
    path: Path
    arrays: Mapping[str, npt.NDArray[Any]]
    tables: Mapping[str, pa.Table]
    #: The store it was loaded from (for its attachments), when known.
    store: Store | None = None

    @property
    def ref(self) -> ModelRef:
        """The exact reference of the loaded version."""
        return self.manifest.ref

    def __repr__(self) -> str:
        arrays = ", ".join(f"{k}: {a.dtype}{list(a.shape)}" for k, a in self.arrays.items())
        tables = ", ".join(f"{k}: {t.num_rows} rows" for k, t in self.tables.items())
        return f"LoadedModel({self.ref}, arrays={{{arrays}}}, tables={{{tables}}})"


class Store(abc.ABC):
    """Versioned, checksummed, pickle-free model artifacts.

    A model is ``app/name``; each publish adds version 1, 2, 3... which never
    changes afterwards. ``latest`` always means the highest version; other
    aliases (``production``, ``staging``...) are moved with :meth:`promote`.
    Beside the versions, a model may have mutable *attachments* (the threat
    app's analyst verdict log), reached through :meth:`attachment` only.
    """

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the store is, as a string :func:`~mlscale.registry.open_store` reopens (a folder, a URI).

        What a serving worker process is given to open the same store.
        """

    @abc.abstractmethod
    def attachment(self, app: str, name: str, key: str, *, suffix: str = ".jsonl") -> Path:
        """A local file that belongs to model ``app/name`` across its versions (``key``: what it holds).

        The file may not exist yet; its folder does. Attachments survive new
        versions and are not part of any version's checksums.

        Where the store keeps attachments elsewhere than this file (an object
        store), the file is this host's copy: call :meth:`sync_attachment`
        after appending to it (to make the lines durable in the store) and
        before reading it (to see what other hosts appended).
        """

    def sync_attachment(self, app: str, name: str, key: str, *, suffix: str = ".jsonl") -> Path:
        """Make the local file of an attachment and the store agree; returns the file's path.

        For a store whose attachment *is* the local file (:class:`~mlscale.registry.FileStore`)
        there is nothing to do. A store that keeps attachments elsewhere treats them as
        append-only logs of lines: the complete lines appended locally since the last sync
        are appended to the stored copy, and the local file becomes that copy (what every
        host appended). Raises :class:`~mlscale.errors.RegistryError` when the store cannot
        be reached; the unsynced lines stay in the local file for the next sync.
        """
        return self.attachment(app, name, key, suffix=suffix)

    @abc.abstractmethod
    def publish(
        self,
        app: str,
        name: str,
        *,
        arrays: Mapping[str, npt.NDArray[Any]] = NO_ITEMS,
        tables: Mapping[str, pa.Table] = NO_ITEMS,
        params: Mapping[str, Any],
        metrics: Mapping[str, float] = NO_ITEMS,
        engine: str,
        data_fingerprint: str,
        extra: Mapping[str, Any] = NO_ITEMS,
    ) -> Manifest:
        """Store a new version of ``app/name`` atomically and return its manifest.

        Arrays are saved as ``<key>.npy`` (never pickled: object arrays are
        refused with :class:`~mlscale.errors.ValidationError`), tables as
        ``<key>.parquet``. Either may be empty.
        """

    @abc.abstractmethod
    def resolve(self, ref: ModelRef | str) -> Manifest:
        """The manifest of the version ``ref`` names (``latest``, an alias or a number).

        Raises :class:`~mlscale.errors.ModelNotFoundError` listing what exists.
        """

    @abc.abstractmethod
    def load(self, ref: ModelRef | str, *, mmap: bool = True, verify: bool = True) -> LoadedModel:
        """Load the version ``ref`` names, refusing tampered or pickled artifacts.

        ``verify=False`` skips hashing file contents (the cheap checks, pickle
        refusal included, still run). Raises :class:`~mlscale.errors.ArtifactError`
        naming the offending file.
        """

    @abc.abstractmethod
    def list(self, app: str | None = None) -> builtins.list[Manifest]:
        """Every version (of one app, or all), sorted by app, name, version."""

    @abc.abstractmethod
    def aliases(self, app: str, name: str) -> dict[str, int]:
        """Alias -> version for a model, including ``latest``."""

    @abc.abstractmethod
    def promote(self, ref: ModelRef | str, alias: str) -> Manifest:
        """Point ``alias`` at the version ``ref`` resolves to; returns that version's manifest."""

    @abc.abstractmethod
    def remove(
        self, ref: ModelRef | str, *, force: bool = False, all_versions: bool = False
    ) -> builtins.list[Manifest]:
        """Remove one version (``app/name@3``) or, with ``all_versions``, the whole model.

        A version that an alias other than ``latest`` points to is only
        removed with ``force=True`` (which also drops those aliases).
        Returns the manifests of what was removed.
        """

    @abc.abstractmethod
    def current_version(self, ref: ModelRef | str) -> int:
        """The version number ``ref`` resolves to right now, as cheaply as possible.

        Meant for polling (hot swap): it reads only the alias file or the
        folder listing, never manifests or artifacts.
        """
