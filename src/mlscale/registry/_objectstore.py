"""A model store in S3-compatible object storage: ``s3://bucket/prefix``.

Layout under ``<prefix>/<app>/<name>/``::

    data/<token>/<key>.npy ...  a version's files, uploaded first under a fresh random key that no
                                reader looks at until a commit record names it
    versions/<N>.json           the commit record (manifest text, its SHA-256, the data token), written
                                last and only if absent (``If-None-Match: *``): the commit point
    aliases.json                {"production": 3}, replaced only if unchanged since read (``If-Match``)
    version-floor               highest version ever removed, so numbers are never reused

Publishing is therefore atomic: a reader sees a version completely or not at
all, and two publishers racing for number N cannot both win: the loser's
conditional write fails with 412 and it retries with N+1. Aliases move by
compare-and-swap on the object's ETag, so two concurrent promotions never lose
one silently. Where a server does not implement conditional writes (it answers
501 NotImplemented, as some older S3-compatible servers do), the store falls
back to plain writes and logs a warning once: versions and aliases are then
last-writer-wins, and concurrent publishers of one model must be serialised by
the caller. AWS S3 (since 2024), MinIO and moto implement both conditions.

Why boto3, not ``pyarrow.fs.S3FileSystem`` or fsspec/s3fs: the two commit
steps above need conditional writes, which boto3 exposes (``IfNoneMatch``,
``IfMatch``) and pyarrow's S3 filesystem does not; s3fs offers create-only
writes but not ``If-Match``. Measured on this shared 2-core machine against
moto's server on loopback (one 64 MiB object, one run, noisy): boto3's
streaming ``get_object`` took 0.37 s, pyarrow's ``open_input_stream().read()``
27.6 s and ``pyarrow.fs.copy_files`` 6.0 s (pyarrow's small ranged reads hit
the Python server hard; against AWS the gap would be smaller). GCS (through
its S3-interoperable XML API, ``AWS_ENDPOINT_URL=https://storage.googleapis.com``
with HMAC keys) is served by the same code; Azure Blob is not (it has no S3 API).

Credentials and endpoint come from boto3's standard chain (``AWS_ACCESS_KEY_ID``
/ ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and
``~/.aws/credentials``, instance or pod roles; ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` for a non-AWS server). They are never printed: errors
carry the S3 error code and message only, scrubbed of the secret as well.

Attachments (per-model files that outlive versions: the threat app's verdict
log) are objects under ``<prefix>/.attachments/<key>/<app>/<name><suffix>``
(a hidden name, never listed as an app; like the file store's, they survive
removing the model). :meth:`ObjectStore.attachment` gives this host's copy in
the cache; :meth:`ObjectStore.sync_attachment` merges it with the object as an
append-only log of lines, by compare-and-swap, so a verdict recorded on one
host is in the store, and seen by every other host at its next sync (see
:mod:`mlscale.registry._synclog`).

Reading goes through a per-host read-through cache of immutable versions
(``$MLSCALE_CACHE_DIR``, default ``~/.cache/mlscale/objectstore``): the first
load of a version downloads its files, verifying each SHA-256 while it
streams, into a folder laid out like a :class:`~mlscale.registry.FileStore`
version; every later load on the host (every serving worker) memory-maps that
one copy, after checking that the cached manifest is still the one the store
commits to. Versions never change, so the cache is never invalidated; removing
it (``rm -rf``) is always safe.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy.typing as npt
import pyarrow as pa

from mlscale.config import default_cache_dir
from mlscale.errors import ArtifactError, ModelNotFoundError, RegistryError
from mlscale.registry._common import (
    MANIFEST,
    as_ref,
    check_promote_alias,
    check_remove_request,
    model_not_found,
    shorten,
    write_manifest_files,
)
from mlscale.registry._filestore import ALLOWED_SUFFIXES, FileStore
from mlscale.registry._fs import exclusive_lock, fsync_dir, random_token
from mlscale.registry._manifest import Manifest
from mlscale.registry._names import check_name, is_valid_name
from mlscale.registry._ref import LATEST, ModelRef
from mlscale.registry._s3 import PreconditionFailedError, S3Bucket
from mlscale.registry._store import NO_ITEMS, LoadedModel, Store
from mlscale.registry._synclog import sync_line_log

__all__ = ["ObjectStore"]

_RECORD_FORMAT = 1
_MAX_PUBLISH_ATTEMPTS = 100
_MAX_CAS_ATTEMPTS = 50
_CHUNK = 1 << 20


class ObjectStore(Store):
    """A :class:`~mlscale.registry.Store` in an S3-compatible bucket (see the module docstring).

    ``cache_dir`` defaults to ``$MLSCALE_CACHE_DIR`` or ``~/.cache/mlscale/objectstore``.
    ``cache_hits``, ``cache_misses`` and ``bytes_fetched`` count what this
    instance's loads did (for tests and the cold-start benchmark).
    """

    def __init__(self, location: str, *, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self._s3 = S3Bucket(location)
        self._prefix = self._s3.prefix
        self._location = self._s3.location
        base = cache_dir or os.environ.get("MLSCALE_CACHE_DIR") or default_cache_dir() / "objectstore"
        digest = hashlib.sha256(self._location.encode()).hexdigest()[:16]
        self._cache_root = Path(base).expanduser() / digest
        self._cache = FileStore(self._cache_root)
        self.cache_hits = 0
        self.cache_misses = 0
        self.bytes_fetched = 0

    @property
    def location(self) -> str:
        """The URI a serving worker reopens this store with (:func:`~mlscale.registry.open_store`)."""
        return self._location

    @property
    def cache_dir(self) -> Path:
        """This registry's folder in the host's read-through cache."""
        return self._cache_root

    def __repr__(self) -> str:
        return f"ObjectStore({self._location!r})"

    def attachment(self, app: str, name: str, key: str, *, suffix: str = ".jsonl") -> Path:
        """This host's copy of the attachment (names checked as the file store checks them).

        Not fetched here: :meth:`sync_attachment` brings it up to date and makes appended lines durable.
        """
        return self._cache.attachment(app, name, key, suffix=suffix)

    def sync_attachment(self, app: str, name: str, key: str, *, suffix: str = ".jsonl") -> Path:
        path = self.attachment(app, name, key, suffix=suffix)
        remote = self._s3.key(".attachments", key, app, name + suffix)
        sync_line_log(self._s3, remote, path, f"the {key} attachment of {app}/{name}")
        return path

    # -- layout --------------------------------------------------------------------------------------

    def _model_key(self, app: str, name: str, *parts: str) -> str:
        return self._s3.key(check_name(app, "app name"), check_name(name, "model name"), *parts)

    def _children(self, prefix: str, action: str) -> list[str]:
        _, prefixes = self._s3.list(prefix, action, delimiter="/")
        names = [p[len(prefix) :].rstrip("/") for p in prefixes]
        return sorted(n for n in names if is_valid_name(n))

    def _versions(self, app: str, name: str) -> list[int]:
        prefix = self._model_key(app, name, "versions") + "/"
        keys, _ = self._s3.list(prefix, f"list the versions of {app}/{name} in {self._location}")
        found = []
        for key in keys:
            stem = key[len(prefix) :].removesuffix(".json")
            if key.endswith(".json") and stem.isascii() and stem.isdigit() and not stem.startswith("0"):
                found.append(int(stem))
        return sorted(found)

    def _models(self, app: str | None = None) -> list[str]:
        base = self._s3.key() + "/" if self._prefix else ""
        action = f"list the models in {self._location}"
        apps = [app] if app is not None else self._children(base, action)
        return [f"{a}/{n}" for a in apps for n in self._children(f"{base}{a}/", action) if self._versions(a, n)]

    def _model_not_found(self, app: str, name: str) -> ModelNotFoundError:
        return model_not_found(app, name, self._location, self._models())

    # -- small state objects ----------------------------------------------------------------------------

    def _read_aliases(self, app: str, name: str) -> tuple[dict[str, int], str]:
        key = self._model_key(app, name, "aliases.json")
        got = self._s3.get(key, f"read the aliases of {app}/{name}")
        if got is None:
            return {}, ""
        raw, etag = got
        try:
            data = json.loads(raw)
        except ValueError as err:
            raise ArtifactError(f"{self._s3.uri(key)}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise ArtifactError(f"{self._s3.uri(key)}: expected a JSON object of alias -> version")
        for alias, version in data.items():
            if not is_valid_name(alias) or alias == LATEST or alias.isdigit():
                raise ArtifactError(f"{self._s3.uri(key)}: invalid alias name {alias!r}")
            if type(version) is not int or version < 1:
                raise ArtifactError(f"{self._s3.uri(key)}: alias {alias!r} must point to a version >= 1")
        return dict(sorted(data.items())), etag

    def _update_aliases(self, app: str, name: str, change: Mapping[str, int | None]) -> None:
        """Apply ``change`` (alias -> version, or ``None`` to drop) by compare-and-swap on the ETag."""
        key = self._model_key(app, name, "aliases.json")
        for _ in range(_MAX_CAS_ATTEMPTS):
            aliases, etag = self._read_aliases(app, name)
            for alias, version in change.items():
                if version is None:
                    aliases.pop(alias, None)
                else:
                    aliases[alias] = version
            body = (json.dumps(dict(sorted(aliases.items())), indent=2) + "\n").encode()
            try:
                self._s3.put(key, body, f"set the aliases of {app}/{name}", if_none_match=not etag, if_match=etag)
            except PreconditionFailedError:
                continue  # another promotion landed in between: re-read and re-apply ours
            return
        raise RegistryError(f"could not update the aliases of {app}/{name}: {_MAX_CAS_ATTEMPTS} concurrent changes")

    def _read_floor(self, app: str, name: str) -> int:
        got = self._s3.get(self._model_key(app, name, "version-floor"), f"read the version floor of {app}/{name}")
        if got is None:
            return 0
        text = got[0].decode("ascii", errors="replace").strip()
        if not text.isdigit():
            raise ArtifactError(f"{self._s3.uri(self._model_key(app, name, 'version-floor'))}: expected a whole number")
        return int(text)

    # -- commit records -----------------------------------------------------------------------------------

    def _read_record(self, app: str, name: str, version: int) -> tuple[Manifest, str, bytes]:
        """(manifest, data token, manifest bytes) of a committed version, checked."""
        key = self._model_key(app, name, "versions", f"{version}.json")
        got = self._s3.get(key, f"read {app}/{name}@{version}")
        if got is None:
            raise ModelNotFoundError(f"{app}/{name}@{version} was removed (it existed a moment ago)")
        source = self._s3.uri(key)
        try:
            record = json.loads(got[0])
            text = record["manifest"]
            recorded = record["manifest_sha256"]
            token = record["data"]
            fmt = record["format"]
        except (ValueError, KeyError, TypeError) as err:
            raise ArtifactError(f"{source}: malformed commit record ({err})") from None
        if fmt != _RECORD_FORMAT or not isinstance(text, str) or not isinstance(token, str):
            raise ArtifactError(f"{source}: malformed commit record (format {fmt!r})", hint="upgrade mlscale")
        if not re.fullmatch(r"[0-9a-f]{12,64}", token):
            raise ArtifactError(f"{source}: malformed commit record: bad data token {token!r}")
        raw = text.encode()
        if hashlib.sha256(raw).hexdigest() != recorded:
            raise ArtifactError(
                f"{source}: checksum mismatch: the manifest was modified after publish",
                hint=f"remove the version: mlscale models rm {app}/{name}@{version} --force",
            )
        manifest = Manifest.from_json(raw, source=source)
        if (manifest.app, manifest.name, manifest.version) != (app, name, version):
            raise ArtifactError(f"{source}: describes {manifest.ref}, not {app}/{name}@{version}")
        return manifest, token, raw

    # -- Store API -----------------------------------------------------------------------------------------

    def current_version(self, ref: ModelRef | str) -> int:
        ref = as_ref(ref)
        if ref.version is not None:
            versions = self._versions(ref.app, ref.name)
            if ref.version not in versions:
                if not versions:
                    raise self._model_not_found(ref.app, ref.name)
                raise ModelNotFoundError(
                    f"{ref.model} has no version {ref.version}; versions: {shorten([str(v) for v in versions])}"
                )
            return ref.version
        if ref.is_latest:
            versions = self._versions(ref.app, ref.name)
            if not versions:
                raise self._model_not_found(ref.app, ref.name)
            return versions[-1]
        # An alias: one GET when it exists (what a polling server does every interval).
        aliases, _ = self._read_aliases(ref.app, ref.name)
        if ref.selector in aliases:
            return aliases[ref.selector]
        versions = self._versions(ref.app, ref.name)
        if not versions:
            raise self._model_not_found(ref.app, ref.name)
        known = "".join(f", {a} -> {v}" for a, v in aliases.items())
        raise ModelNotFoundError(
            f"{ref.model} has no alias {ref.selector!r}; aliases: latest -> {versions[-1]}{known}",
            hint=f"point it at a version with: mlscale models promote {ref.model}@VERSION --alias {ref.selector}",
        )

    def resolve(self, ref: ModelRef | str) -> Manifest:
        ref = as_ref(ref)
        return self._read_record(ref.app, ref.name, self.current_version(ref))[0]

    def aliases(self, app: str, name: str) -> dict[str, int]:
        versions = self._versions(app, name)
        if not versions:
            raise self._model_not_found(app, name)
        return {LATEST: versions[-1], **self._read_aliases(app, name)[0]}

    def list(self, app: str | None = None) -> builtins.list[Manifest]:
        if app is not None:
            check_name(app, "app name")
        out: list[Manifest] = []
        for model in self._models(app):
            a, n = model.split("/")
            out.extend(self._read_record(a, n, v)[0] for v in self._versions(a, n))
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
        self._model_key(app, name)
        self._cache_root.mkdir(parents=True, exist_ok=True)
        # Stage with the file store: the same validation, files and checksums as a local publish.
        with tempfile.TemporaryDirectory(prefix=".stage-", dir=self._cache_root) as tmp:
            staged = FileStore(tmp).publish(
                app,
                name,
                arrays=arrays,
                tables=tables,
                params=params,
                metrics=metrics,
                engine=engine,
                data_fingerprint=data_fingerprint,
                extra=extra,
            )
            folder = Path(tmp) / app / name / "1"
            token = random_token() + random_token()
            for filename in sorted(staged.files):
                key = self._model_key(app, name, "data", token, filename)
                with self._s3.errors(f"upload {filename} of {app}/{name} to {self._s3.uri(key)}"):
                    self._s3.client.upload_file(str(folder / filename), self._s3.bucket, key)
            manifest = self._commit(app, name, staged, token)
            self._keep_in_cache(folder, manifest)
        return manifest

    def _commit(self, app: str, name: str, staged: Manifest, token: str) -> Manifest:
        version = max([*self._versions(app, name), self._read_floor(app, name)]) + 1
        for _ in range(_MAX_PUBLISH_ATTEMPTS):
            manifest = dataclasses.replace(staged, version=version)
            text = manifest.to_json()
            record = {
                "format": _RECORD_FORMAT,
                "manifest": text,
                "manifest_sha256": hashlib.sha256(text.encode()).hexdigest(),
                "data": token,
            }
            key = self._model_key(app, name, "versions", f"{version}.json")
            try:
                self._s3.put(key, json.dumps(record).encode(), f"publish {app}/{name}@{version}", if_none_match=True)
            except PreconditionFailedError:
                # Another publisher took this number first: try the next free one.
                version = max([version + 1, *self._versions(app, name), self._read_floor(app, name) + 1])
                continue
            return manifest
        raise RegistryError(f"could not find a free version number for {app}/{name} after {_MAX_PUBLISH_ATTEMPTS}")

    def _keep_in_cache(self, folder: Path, manifest: Manifest) -> None:
        """Move a just-published staging folder into the cache as that version (a free hit later)."""
        target = self._cache_root / manifest.app / manifest.name / str(manifest.version)
        write_manifest_files(folder, manifest.to_json().encode())
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # another process cached it first: theirs is as good
            folder.rename(target)
            fsync_dir(target.parent)

    def load(self, ref: ModelRef | str, *, mmap: bool = True, verify: bool = True) -> LoadedModel:
        ref = as_ref(ref)
        version = self.current_version(ref)
        manifest, token, raw = self._read_record(ref.app, ref.name, version)
        model_dir = self._cache_root / ref.app / ref.name
        target = model_dir / str(version)
        if self._cached(target, raw):
            self.cache_hits += 1
        else:
            model_dir.mkdir(parents=True, exist_ok=True)
            # One download per host: the workers starting together wait for the first one.
            with exclusive_lock(model_dir / ".lock"):
                if self._cached(target, raw):
                    self.cache_hits += 1
                else:
                    self.cache_misses += 1
                    self._download(manifest, token, raw, target)
        loaded = self._cache.load(ref.with_selector(version), mmap=mmap, verify=verify)
        return dataclasses.replace(loaded, store=self)  # its attachments are this store's, not the cache's

    @staticmethod
    def _cached(target: Path, raw: bytes) -> bool:
        """Whether the cache holds this exact version (its manifest is the committed one)."""
        try:
            return (target / MANIFEST).read_bytes() == raw
        except OSError:
            return False

    def _download(self, manifest: Manifest, token: str, raw: bytes, target: Path) -> None:
        from botocore.exceptions import ClientError

        tmp = target.parent / f".tmp-fetch-{random_token()}"
        tmp.mkdir()
        try:
            for filename, expected in sorted(manifest.files.items()):
                if not filename.lower().endswith(ALLOWED_SUFFIXES):
                    record = self._model_key(manifest.app, manifest.name, "versions", f"{manifest.version}.json")
                    raise ArtifactError(
                        f"{self._s3.uri(record)}: refused: the manifest lists {filename!r}; "
                        f"only {' '.join(ALLOWED_SUFFIXES)} are loaded"
                    )
                key = self._model_key(manifest.app, manifest.name, "data", token, filename)
                digest = hashlib.sha256()
                with self._s3.errors(f"download {self._s3.uri(key)}"), open(tmp / filename, "xb") as out:
                    try:
                        body = self._s3.client.get_object(Bucket=self._s3.bucket, Key=key)["Body"]
                    except ClientError as err:
                        if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                            raise ArtifactError(
                                f"{self._s3.uri(key)}: missing (listed in the manifest of {manifest.ref})"
                            ) from None
                        raise
                    while chunk := body.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        self.bytes_fetched += len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                if digest.hexdigest() != expected:
                    raise ArtifactError(
                        f"{self._s3.uri(key)}: checksum mismatch: the manifest of {manifest.ref} records sha256 "
                        f"{expected[:16]}..., the object has {digest.hexdigest()[:16]}...; it was modified or "
                        "corrupted after publish",
                        hint="restore the object or publish the model again",
                    )
            write_manifest_files(tmp, raw)
            fsync_dir(tmp)
            if target.exists():  # a stale copy from a registry that was wiped and refilled
                shutil.rmtree(target)
            tmp.rename(target)
            fsync_dir(target.parent)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def promote(self, ref: ModelRef | str, alias: str) -> Manifest:
        ref = as_ref(ref)
        check_promote_alias(alias)
        version = self.current_version(ref)
        manifest = self._read_record(ref.app, ref.name, version)[0]
        self._update_aliases(ref.app, ref.name, {alias: version})
        return manifest

    def remove(
        self, ref: ModelRef | str, *, force: bool = False, all_versions: bool = False
    ) -> builtins.list[Manifest]:
        ref = as_ref(ref)
        check_remove_request(ref, all_versions=all_versions)
        versions = self._versions(ref.app, ref.name)
        if not versions:
            raise self._model_not_found(ref.app, ref.name)
        targets = versions if all_versions else [self.current_version(ref)]
        aliases, _ = self._read_aliases(ref.app, ref.name)
        pointing = [a for a, v in aliases.items() if v in targets]
        if pointing and not force and not all_versions:
            raise RegistryError(
                f"cannot remove {ref.model}@{targets[0]}: alias(es) {', '.join(pointing)} point to it",
                hint="promote another version first, or force it (--force) to remove the version "
                "and drop the alias(es)",
            )
        removed: list[Manifest] = []
        tokens: list[str] = []
        for version in targets:
            try:
                manifest, token, _ = self._read_record(ref.app, ref.name, version)
            except ArtifactError:
                if not force:
                    raise
                continue
            removed.append(manifest)
            tokens.append(token)
        action = f"remove {ref}"
        if all_versions:
            keys, _ = self._s3.list(self._model_key(ref.app, ref.name) + "/", action)
            self._s3.delete(keys, action)
            return removed
        # Record the number first so no later publish reuses it (pollers must never see an
        # old number stand for new content), then drop aliases, the commit, the data.
        floor = self._read_floor(ref.app, ref.name)
        if targets[0] > floor:
            self._s3.put(self._model_key(ref.app, ref.name, "version-floor"), f"{targets[0]}\n".encode(), action)
        if pointing:
            self._update_aliases(ref.app, ref.name, dict.fromkeys(pointing))
        self._s3.delete([self._model_key(ref.app, ref.name, "versions", f"{targets[0]}.json")], action)
        for token in tokens:
            keys, _ = self._s3.list(self._model_key(ref.app, ref.name, "data", token) + "/", action)
            self._s3.delete(keys, action)
        return removed
