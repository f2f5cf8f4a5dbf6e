"""The embedded model store: plain folders and files under one root.

Layout (``<root>/<app>/<name>/``)::

    1/ 2/ 3/ ...          one folder per version, never changed once published:
        manifest.json     what, how, and the SHA-256 of every artifact file
        manifest.sha256   SHA-256 of manifest.json (``sha256sum -c`` format)
        <key>.npy         arrays (np.save, allow_pickle=False)
        <key>.parquet     tables
    aliases.json          {"production": 3, ...} (``latest`` is implicit)
    .version-floor        highest version ever removed, so numbers are never reused
    .lock                 advisory lock for alias and version-number updates
    .tmp-publish-*        a publish in progress (invisible to readers)

Publishing writes everything into a ``.tmp-publish-*`` folder next to the
versions, syncs it, and renames it to the next free number; a rename that
loses a race to another writer retries with the next number. Readers
therefore see a version completely or not at all.

``manifest.sha256`` guards the manifest against accidental edits and
corruption (the manifest in turn guards every artifact). It is not a
signature: someone who can write to the registry can rewrite both, so protect
the folder with file permissions.

(About 700 lines, over the usual 600: publish, load, verification, aliases and removal all follow the one
folder layout described above and its locking; split by verb, each piece would re-derive the layout.)
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import json
import math
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from mlscale._version import __version__
from mlscale.errors import ArtifactError, ModelNotFoundError, RegistryError, ValidationError
from mlscale.registry._checksum import sha256_file
from mlscale.registry._common import (
    MANIFEST,
    MANIFEST_SHA,
    as_ref,
    check_promote_alias,
    check_remove_request,
    model_not_found,
    shorten,
    write_manifest_files,
)
from mlscale.registry._fs import atomic_write_bytes, exclusive_lock, fsync_dir, fsync_file, random_token
from mlscale.registry._manifest import Manifest
from mlscale.registry._names import check_name, is_valid_name
from mlscale.registry._ref import LATEST, ModelRef
from mlscale.registry._store import NO_ITEMS, LoadedModel, Store

__all__ = ["ALLOWED_SUFFIXES", "FileStore"]

#: File types a version folder may hold (besides its manifest files).
ALLOWED_SUFFIXES = (".npy", ".npz", ".parquet", ".safetensors", ".json")
#: File types refused with an explicit "pickle" message: loading them can run code.
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib", ".dill", ".pt", ".pth"})

ALIASES = "aliases.json"
FLOOR = ".version-floor"
LOCK = ".lock"
TMP_PREFIX = ".tmp-publish-"
TRASH_PREFIX = ".trash-"

_MAX_PUBLISH_ATTEMPTS = 1000


def _real_dir(path: Path) -> bool:
    """A folder that is not a symlink (a symlinked version folder is not a version: ``list`` skips it)."""
    return path.is_dir() and not path.is_symlink()


def _version_number(name: str) -> int | None:
    """The version a folder name stands for (canonical decimal >= 1), else ``None``."""
    if name.isascii() and name.isdigit() and not name.startswith("0"):
        return int(name)
    return None


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def _json_object(value: object, field: str) -> dict[str, Any]:
    """``value`` as it will read back from JSON; refuses what JSON cannot hold."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"expected a mapping, found {type(value).__name__}", field=field)
    try:
        text = json.dumps(dict(value), default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValidationError(
            f"must be plain JSON data (str, finite numbers, bool, None, lists, dicts): {err}", field=field
        ) from None
    data: dict[str, Any] = json.loads(text)
    return data


def _metrics(metrics: object) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise ValidationError(f"expected a mapping, found {type(metrics).__name__}", field="metrics")
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(f"metric names must be non-empty strings, found {key!r}", field="metrics")
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ValidationError(f"expected a number, found {value!r}", field=f"metrics[{key!r}]")
        number = float(value)
        if not math.isfinite(number):
            raise ValidationError(f"expected a finite number, found {number}", field=f"metrics[{key!r}]")
        out[key] = number
    return out


@contextlib.contextmanager
def _os_errors(action: str) -> Iterator[None]:
    """Turn a file-system failure (permissions, full disk) into one clear registry error."""
    try:
        yield
    except OSError as err:
        raise RegistryError(f"could not {action}: {err}") from err


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FileStore(Store):
    """A :class:`~mlscale.registry.Store` in a folder of the local (or a shared) file system.

    ``root`` need not exist until the first publish; reading an absent root
    finds no models.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root).expanduser()

    @property
    def root(self) -> Path:
        """The registry folder."""
        return self._root

    @property
    def location(self) -> str:
        return str(self._root)

    def attachment(self, app: str, name: str, key: str, *, suffix: str = ".jsonl") -> Path:
        # Hidden folders (``<root>/.<key>/<app>/<name><suffix>``): never mistaken for an app by list().
        check_name(key, "attachment key")
        if suffix and not re.fullmatch(r"\.[a-z0-9]{1,10}", suffix):
            raise RegistryError(f"invalid attachment suffix {suffix!r}: expected a dot and letters/digits")
        path = self._root / f".{key}" / check_name(app, "app name") / f"{check_name(name, 'model name')}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def __repr__(self) -> str:
        return f"FileStore({str(self._root)!r})"

    def version_dir(self, app: str, name: str, version: int) -> Path:
        """The folder that holds (or would hold) version ``version`` of ``app/name``."""
        if type(version) is not int or version < 1:
            raise RegistryError(f"invalid version {version!r}: versions are whole numbers from 1")
        return self._model_dir(app, name) / str(version)

    # -- layout ---------------------------------------------------------------------------------

    def _model_dir(self, app: str, name: str) -> Path:
        return self._root / check_name(app, "app name") / check_name(name, "model name")

    def _check_root(self) -> bool:
        """Whether the root exists; refuses a root that is not a folder."""
        if self._root.is_dir():
            return True
        if self._root.exists():
            raise RegistryError(f"registry root {self._root} is not a folder")
        return False

    @staticmethod
    def _subdirs(path: Path) -> list[str]:
        """Sorted valid names of the folders in ``path`` (hidden and odd names skipped)."""
        try:
            entries = list(os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(e.name for e in entries if is_valid_name(e.name) and e.is_dir(follow_symlinks=False))

    @staticmethod
    def _versions(model_dir: Path) -> list[int]:
        try:
            entries = list(os.scandir(model_dir))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for entry in entries:
            number = _version_number(entry.name)
            if number is not None and entry.is_dir(follow_symlinks=False):
                found.append(number)
        return sorted(found)

    def _models(self, app: str | None = None) -> list[str]:
        """``app/name`` of every model with at least one version."""
        if not self._check_root():
            return []
        apps = [app] if app is not None else self._subdirs(self._root)
        return [f"{a}/{n}" for a in apps for n in self._subdirs(self._root / a) if self._versions(self._root / a / n)]

    def _model_not_found(self, app: str, name: str) -> ModelNotFoundError:
        return model_not_found(app, name, self._root, self._models())

    # -- small state files -------------------------------------------------------------------------

    @staticmethod
    def _read_aliases(model_dir: Path) -> dict[str, int]:
        path = model_dir / ALIASES
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(raw)
        except ValueError as err:
            raise ArtifactError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise ArtifactError(f"{path}: expected a JSON object of alias -> version")
        for alias, version in data.items():
            if not is_valid_name(alias) or alias == LATEST or alias.isdigit():
                raise ArtifactError(f"{path}: invalid alias name {alias!r}")
            if type(version) is not int or version < 1:
                raise ArtifactError(f"{path}: alias {alias!r} must point to a version >= 1, found {version!r}")
        return dict(sorted(data.items()))

    @staticmethod
    def _write_aliases(model_dir: Path, aliases: Mapping[str, int]) -> None:
        text = json.dumps(dict(sorted(aliases.items())), indent=2) + "\n"
        atomic_write_bytes(model_dir / ALIASES, text.encode())

    @staticmethod
    def _read_floor(model_dir: Path) -> int:
        path = model_dir / FLOOR
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as err:
            raise ArtifactError(f"{path}: unreadable ({err})") from None
        if not text.isdigit():
            raise ArtifactError(f"{path}: expected a whole number, found {text[:40]!r}")
        return int(text)

    def _next_version(self, model_dir: Path) -> int:
        return max([*self._versions(model_dir), self._read_floor(model_dir)]) + 1

    @contextlib.contextmanager
    def _locked(self, model_dir: Path) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(exclusive_lock(model_dir / LOCK))
            except OSError as err:
                raise RegistryError(f"cannot lock {model_dir}: {err}") from err
            yield

    # -- manifests -----------------------------------------------------------------------------------

    def _read_manifest(self, app: str, name: str, version: int) -> Manifest:
        vdir = self._model_dir(app, name) / str(version)
        path = vdir / MANIFEST
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            if not vdir.is_dir():
                raise ModelNotFoundError(f"{app}/{name}@{version} was removed (it existed a moment ago)") from None
            raise ArtifactError(f"{path}: missing; {app}/{name}@{version} is not a complete version") from None
        except OSError as err:
            raise ArtifactError(f"{path}: unreadable ({err})") from None
        sidecar = vdir / MANIFEST_SHA
        try:
            recorded = sidecar.read_text(encoding="ascii").split()
        except FileNotFoundError:
            raise ArtifactError(f"{sidecar}: missing; cannot tell whether {MANIFEST} was modified") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ArtifactError(f"{sidecar}: unreadable ({err})") from None
        actual = _sha256_bytes(raw)
        if not recorded or recorded[0] != actual:
            raise ArtifactError(
                f"{path}: checksum mismatch with {MANIFEST_SHA}: the manifest was modified after publish",
                hint="restore the original manifest, or remove the version: "
                f"mlscale models rm {app}/{name}@{version} --force",
            )
        manifest = Manifest.from_json(raw, source=str(path))
        if (manifest.app, manifest.name, manifest.version) != (app, name, version):
            raise ArtifactError(
                f"{path}: describes {manifest.ref} but sits in the folder of {app}/{name}@{version} "
                "(copied or moved by hand?)"
            )
        return manifest

    @staticmethod
    def _write_manifest(folder: Path, manifest: Manifest) -> None:
        write_manifest_files(folder, manifest.to_json().encode())

    # -- Store API -----------------------------------------------------------------------------------

    def current_version(self, ref: ModelRef | str) -> int:
        ref = as_ref(ref)
        model_dir = self._model_dir(ref.app, ref.name)
        if ref.is_latest:
            versions = self._versions(model_dir)
            if not versions:
                self._check_root()
                raise self._model_not_found(ref.app, ref.name)
            return versions[-1]
        version = ref.version
        if version is None:
            aliases = self._read_aliases(model_dir)
            if ref.selector not in aliases:
                versions = self._versions(model_dir)
                if not versions:
                    raise self._model_not_found(ref.app, ref.name)
                known = [f"{a} -> {v}" for a, v in aliases.items()]
                raise ModelNotFoundError(
                    f"{ref.model} has no alias {ref.selector!r}; aliases: latest -> {versions[-1]}"
                    + "".join(f", {k}" for k in known),
                    hint=f"point it at a version with: mlscale models promote {ref.model}@VERSION "
                    f"--alias {ref.selector}",
                )
            version = aliases[ref.selector]
            if not _real_dir(model_dir / str(version)):
                raise ModelNotFoundError(
                    f"alias {ref.selector!r} of {ref.model} points to version {version}, which does not exist",
                    hint=f"promote an existing version: mlscale models promote {ref.model}@VERSION "
                    f"--alias {ref.selector}",
                )
            return version
        if not _real_dir(model_dir / str(version)):
            # A symlinked version folder is not a version (``list`` ignores it too): never served.
            versions = self._versions(model_dir)
            if not versions:
                raise self._model_not_found(ref.app, ref.name)
            raise ModelNotFoundError(
                f"{ref.model} has no version {version}; versions: {shorten([str(v) for v in versions])}"
            )
        return version

    def resolve(self, ref: ModelRef | str) -> Manifest:
        ref = as_ref(ref)
        return self._read_manifest(ref.app, ref.name, self.current_version(ref))

    def aliases(self, app: str, name: str) -> dict[str, int]:
        model_dir = self._model_dir(app, name)
        versions = self._versions(model_dir)
        if not versions:
            self._check_root()
            raise self._model_not_found(app, name)
        return {LATEST: versions[-1], **self._read_aliases(model_dir)}

    def list(self, app: str | None = None) -> builtins.list[Manifest]:
        if app is not None:
            check_name(app, "app name")
        out: list[Manifest] = []
        for model in self._models(app):
            a, n = model.split("/")
            out.extend(self._read_manifest(a, n, v) for v in self._versions(self._root / a / n))
        return out

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
        model_dir = self._model_dir(app, name)
        # Validate everything before touching the disk: a bad argument leaves no trace.
        clean_params = _json_object(params, "params")
        clean_extra = _json_object(extra, "extra")
        clean_metrics = _metrics(metrics)
        if not isinstance(engine, str) or not engine:
            raise ValidationError(f"expected a non-empty string, found {engine!r}", field="engine")
        if not isinstance(data_fingerprint, str):
            raise ValidationError(f"expected a string, found {data_fingerprint!r}", field="data_fingerprint")
        if not isinstance(arrays, Mapping) or not isinstance(tables, Mapping):
            raise ValidationError("arrays and tables must be mappings of key -> value", field="arrays")
        for key, array in arrays.items():
            check_name(key, "array key")
            if not isinstance(array, np.ndarray):
                raise ValidationError(f"expected a numpy array, found {type(array).__name__}", field=f"arrays[{key!r}]")
            if array.dtype.hasobject:
                raise ValidationError(
                    f"dtype {array.dtype} holds Python objects, which can only be stored by pickling; "
                    "the registry is pickle-free",
                    field=f"arrays[{key!r}]",
                    hint="convert to a numeric or fixed-width string dtype (e.g. array.astype(str)) "
                    "or pass it as a pyarrow table",
                )
        for key, table in tables.items():
            check_name(key, "table key")
            if not isinstance(table, pa.Table):
                raise ValidationError(
                    f"expected a pyarrow.Table, found {type(table).__name__}", field=f"tables[{key!r}]"
                )

        self._check_root()
        try:
            model_dir.mkdir(parents=True, exist_ok=True)
            tmp = self._make_temp_dir(model_dir)
        except OSError as err:
            raise RegistryError(f"cannot write to the registry {self._root}: {err}") from err
        published = False
        try:
            files = self._write_artifacts(tmp, arrays, tables)
            manifest = self._commit(
                tmp,
                model_dir,
                app=app,
                name=name,
                params=clean_params,
                metrics=clean_metrics,
                engine=engine,
                data_fingerprint=data_fingerprint,
                files=files,
                extra=clean_extra,
            )
            published = True
        except OSError as err:
            raise RegistryError(f"could not publish {app}/{name} to {model_dir}: {err}") from err
        finally:
            if not published:
                shutil.rmtree(tmp, ignore_errors=True)
        return manifest

    @staticmethod
    def _make_temp_dir(model_dir: Path) -> Path:
        # os.mkdir (unlike tempfile.mkdtemp's 0o700) keeps the umask's permissions, so the
        # published folder is readable by whoever may read the registry (e.g. a server user).
        while True:
            tmp = model_dir / f"{TMP_PREFIX}{random_token()}"
            try:
                tmp.mkdir()
            except FileExistsError:  # pragma: no cover - 48 random bits
                continue
            return tmp

    @staticmethod
    def _write_artifacts(
        tmp: Path, arrays: Mapping[str, npt.NDArray[Any]], tables: Mapping[str, pa.Table]
    ) -> dict[str, str]:
        written: list[str] = []
        for key, array in arrays.items():
            filename = f"{key}.npy"
            with open(tmp / filename, "wb") as f:
                np.save(f, array, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            written.append(filename)
        for key, table in tables.items():
            filename = f"{key}.parquet"
            try:
                pq.write_table(table, tmp / filename)
            except pa.ArrowException as err:
                raise ValidationError(f"cannot be written as Parquet: {err}", field=f"tables[{key!r}]") from None
            fsync_file(tmp / filename)
            written.append(filename)
        # Hash what is on disk, not what was meant to be written.
        return {filename: sha256_file(tmp / filename) for filename in sorted(written)}

    def _commit(self, tmp: Path, model_dir: Path, **fields: Any) -> Manifest:
        created = _utc_now()
        with self._locked(model_dir):
            version = self._next_version(model_dir)
            for _ in range(_MAX_PUBLISH_ATTEMPTS):
                manifest = Manifest(version=version, created=created, mlscale_version=__version__, **fields)
                self._write_manifest(tmp, manifest)
                fsync_dir(tmp)
                try:
                    tmp.rename(model_dir / str(version))
                except OSError as err:
                    # Another writer (one the lock cannot see, e.g. over NFS) took this number.
                    if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    version = max(version + 1, self._next_version(model_dir))
                    continue
                fsync_dir(model_dir)
                return manifest
        raise RegistryError(
            f"could not find a free version number for {model_dir} after {_MAX_PUBLISH_ATTEMPTS} attempts"
        )

    def load(self, ref: ModelRef | str, *, mmap: bool = True, verify: bool = True) -> LoadedModel:
        ref = as_ref(ref)
        version = self.current_version(ref)
        manifest = self._read_manifest(ref.app, ref.name, version)
        vdir = self._model_dir(ref.app, ref.name) / str(version)
        self._check_files(vdir, manifest, verify=verify)
        arrays: dict[str, npt.NDArray[Any]] = {}
        tables: dict[str, pa.Table] = {}
        for filename in sorted(manifest.files):
            path = vdir / filename
            stem, suffix = _split_suffix(filename)
            if suffix == ".npy":
                arrays[stem] = _load_npy(path, mmap=mmap)
            elif suffix == ".npz":
                for member, array in _load_npz(path).items():
                    arrays[f"{stem}/{member}"] = array
            elif suffix == ".parquet":
                try:
                    tables[stem] = pq.read_table(path, memory_map=mmap)
                except (pa.ArrowException, OSError) as err:
                    raise ArtifactError(f"{path}: not a readable Parquet file ({err})") from None
        return LoadedModel(
            manifest=manifest,
            path=vdir,
            arrays=MappingProxyType(arrays),
            tables=MappingProxyType(tables),
            store=self,
        )

    @staticmethod
    def _check_files(vdir: Path, manifest: Manifest, *, verify: bool) -> None:
        """Refuse pickles, unknown types, unlisted, missing and (with ``verify``) altered files."""
        allowed = " ".join(ALLOWED_SUFFIXES)
        try:
            entries = sorted(os.scandir(vdir), key=lambda e: e.name)
        except OSError as err:
            raise ArtifactError(f"{vdir}: unreadable ({err})") from None
        present = set()
        for entry in entries:
            if entry.name in (MANIFEST, MANIFEST_SHA):
                continue
            path = vdir / entry.name
            suffix = _split_suffix(entry.name)[1]
            if suffix in PICKLE_SUFFIXES:
                raise ArtifactError(
                    f"{path}: refused: {suffix} files are pickles, and loading a pickle can run "
                    "arbitrary code; "
                    f"a version folder may only hold {allowed}",
                    hint="remove the file; publish arrays and tables through the registry instead",
                )
            if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                raise ArtifactError(f"{path}: refused: a version folder may only hold regular files")
            if suffix not in ALLOWED_SUFFIXES:
                raise ArtifactError(f"{path}: refused: file type {suffix or '(none)'!s} is not one of {allowed}")
            if entry.name not in manifest.files:
                raise ArtifactError(f"{path}: not listed in {MANIFEST}: the file was added after publish")
            present.add(entry.name)
        for filename in sorted(manifest.files):
            suffix = _split_suffix(filename)[1]
            if suffix not in ALLOWED_SUFFIXES:
                raise ArtifactError(
                    f"{vdir / filename}: refused: {MANIFEST} lists a {suffix or '(none)'!s} file; "
                    f"only {allowed} are loaded"
                )
            if filename not in present:
                raise ArtifactError(f"{vdir / filename}: missing (listed in {MANIFEST})")
        if not verify:
            return
        for filename, expected in sorted(manifest.files.items()):
            path = vdir / filename
            try:
                actual = sha256_file(path)
            except OSError as err:
                raise ArtifactError(f"{path}: unreadable ({err})") from None
            if actual != expected:
                raise ArtifactError(
                    f"{path}: checksum mismatch: {MANIFEST} records sha256 {expected[:16]}..., "
                    f"the file has {actual[:16]}...; it was modified or corrupted after publish",
                    hint="restore the file or publish the model again",
                )

    def promote(self, ref: ModelRef | str, alias: str) -> Manifest:
        ref = as_ref(ref)
        check_promote_alias(alias)
        model_dir = self._model_dir(ref.app, ref.name)
        if not self._versions(model_dir):
            self._check_root()
            raise self._model_not_found(ref.app, ref.name)
        with _os_errors(f"set alias {alias!r} of {ref.model}"), self._locked(model_dir):
            version = self.current_version(ref)
            manifest = self._read_manifest(ref.app, ref.name, version)
            # Verify before moving the alias: servers would refuse a corrupt version, and the next restart fail.
            try:
                self._check_files(model_dir / str(version), manifest, verify=True)
            except ArtifactError as err:
                raise ArtifactError(
                    f"refusing to point {alias!r} at {ref.model}@{version}: {err.message}",
                    hint=err.hint or "restore the file or publish the model again",
                ) from None
            aliases = self._read_aliases(model_dir)
            aliases[alias] = version
            self._write_aliases(model_dir, aliases)
        return manifest

    def remove(
        self, ref: ModelRef | str, *, force: bool = False, all_versions: bool = False
    ) -> builtins.list[Manifest]:
        ref = as_ref(ref)
        model_dir = self._model_dir(ref.app, ref.name)
        check_remove_request(ref, all_versions=all_versions)
        if not self._versions(model_dir):
            self._check_root()
            raise self._model_not_found(ref.app, ref.name)
        if all_versions:
            with _os_errors(f"remove {ref.model}"):
                return self._remove_model(ref, model_dir, force=force)
        with _os_errors(f"remove {ref}"), self._locked(model_dir):
            version = self.current_version(ref)
            aliases = self._read_aliases(model_dir)
            pointing = [a for a, v in aliases.items() if v == version]
            if pointing and not force:
                raise RegistryError(
                    f"cannot remove {ref.model}@{version}: alias(es) {', '.join(pointing)} point to it",
                    hint="promote another version first, or force it (--force) to remove the version "
                    "and drop the alias(es)",
                )
            removed = self._manifest_or_none(ref.app, ref.name, version, force=force)
            # Record the number first, so no later publish reuses it (clients polling
            # current_version must never see an old number stand for new content).
            floor = self._read_floor(model_dir)
            if version > floor:
                atomic_write_bytes(model_dir / FLOOR, f"{version}\n".encode())
            if pointing:
                self._write_aliases(model_dir, {a: v for a, v in aliases.items() if v != version})
            trash = model_dir / f"{TRASH_PREFIX}{version}-{random_token()}"
            (model_dir / str(version)).rename(trash)
            fsync_dir(model_dir)
        shutil.rmtree(trash, ignore_errors=True)
        return [] if removed is None else [removed]

    def _remove_model(self, ref: ModelRef, model_dir: Path, *, force: bool) -> builtins.list[Manifest]:
        app_dir = model_dir.parent
        with self._locked(model_dir):
            removed = [
                m
                for v in self._versions(model_dir)
                if (m := self._manifest_or_none(ref.app, ref.name, v, force=force)) is not None
            ]
            trash = app_dir / f"{TRASH_PREFIX}{ref.name}-{random_token()}"
            model_dir.rename(trash)
            fsync_dir(app_dir)
        shutil.rmtree(trash, ignore_errors=True)
        with contextlib.suppress(OSError):
            app_dir.rmdir()  # only succeeds if no other model (or leftover) is in the app
        return removed

    def _manifest_or_none(self, app: str, name: str, version: int, *, force: bool) -> Manifest | None:
        try:
            return self._read_manifest(app, name, version)
        except ArtifactError as err:
            if force:
                return None
            raise ArtifactError(
                f"{err.message}",
                hint=f"to remove it anyway: mlscale models rm {app}/{name}@{version} --force",
            ) from err


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _split_suffix(filename: str) -> tuple[str, str]:
    """``("user_factors", ".npy")`` from ``"user_factors.npy"``; the suffix is lower-cased."""
    stem, dot, suffix = filename.rpartition(".")
    if not dot or not stem:
        return filename, ""
    return stem, f".{suffix.lower()}"


def _load_npy(path: Path, *, mmap: bool) -> npt.NDArray[Any]:
    try:
        loaded = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as err:
        text = str(err)
        if "pickle" in text or "object" in text.lower():
            raise ArtifactError(
                f"{path}: refused: the file holds Python objects, which only load through pickle"
            ) from None
        raise ArtifactError(f"{path}: not a readable .npy file ({err})") from None
    except (OSError, EOFError) as err:
        raise ArtifactError(f"{path}: not a readable .npy file ({err})") from None
    if not isinstance(loaded, np.ndarray):
        raise ArtifactError(f"{path}: not a .npy array file (found {type(loaded).__name__})")
    return loaded


def _load_npz(path: Path) -> dict[str, npt.NDArray[Any]]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ArtifactError(f"{path}: not a .npz archive")
            return {member: archive[member] for member in archive.files}
    except ValueError as err:
        raise ArtifactError(f"{path}: refused or unreadable .npz member ({err})") from None
    except (OSError, EOFError) as err:
        raise ArtifactError(f"{path}: not a readable .npz file ({err})") from None
