"""FileStore: publish/load round trips, versions, aliases, removal and refusal of bad artifacts."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest

from mlscale._version import __version__
from mlscale.config import load_settings
from mlscale.errors import ArtifactError, ModelNotFoundError, RegistryError, ValidationError
from mlscale.registry import FileStore, Manifest, ModelRef, open_store

Publish = Callable[..., Manifest]  # the ``publish`` fixture of conftest.py


def _vdir(store: FileStore, version: int, app: str = "recommend", name: str = "ml100k") -> Path:
    return store.root / app / name / str(version)


# -- round trip ---------------------------------------------------------------------------------------


def test_publish_load_round_trip_is_bit_identical(store: FileStore) -> None:
    rng = np.random.default_rng(7)
    arrays: dict[str, npt.NDArray[Any]] = {
        "user_factors": rng.standard_normal((64, 16)).astype(np.float32),
        "item_factors": rng.standard_normal((32, 16)),
        "item_ids": np.arange(32, dtype=np.int64) * 3,
        "titles": np.array(["alpha", "beta"], dtype="<U5"),
        "fortran": np.asfortranarray(rng.standard_normal((5, 3))),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    metrics: dict[str, Any] = {"ndcg@10": 0.5, "precision@10": np.float32(0.25)}  # numpy scalars welcome
    table = pa.table({"item_id": pa.array([1, 2, 3], pa.int32()), "title": ["a", "b", None]})
    manifest = store.publish(
        "recommend",
        "ml100k",
        arrays=arrays,
        tables={"items": table},
        params={"factors": 16, "nested": {"a": [1, 2]}, "np_scalar": np.int64(3)},
        metrics=metrics,
        engine="local",
        data_fingerprint="sha256:abc",
        extra={"note": "first"},
    )
    assert manifest.version == 1
    assert manifest.params == {"factors": 16, "nested": {"a": [1, 2]}, "np_scalar": 3}
    assert manifest.metrics == {"ndcg@10": 0.5, "precision@10": 0.25}
    assert manifest.mlscale_version == __version__
    assert manifest.created.endswith("Z")
    assert set(manifest.files) == {f"{k}.npy" for k in arrays} | {"items.parquet"}

    loaded = store.load("recommend/ml100k")
    assert loaded.manifest == manifest
    assert loaded.path == _vdir(store, 1)
    assert set(loaded.arrays) == set(arrays)
    for key, original in arrays.items():
        got = loaded.arrays[key]
        assert got.dtype == original.dtype
        assert got.shape == original.shape
        assert got.tobytes() == original.tobytes()
        assert not got.flags.writeable  # memory-mapped read-only
    assert isinstance(loaded.arrays["user_factors"], np.memmap)
    assert loaded.tables["items"].equals(table)
    with pytest.raises(TypeError):
        loaded.arrays["new"] = np.zeros(1)  # type: ignore[index]


def test_load_without_mmap_gives_private_writeable_copies(store: FileStore, publish: Publish) -> None:
    publish()
    loaded = store.load("recommend/ml100k", mmap=False)
    array = loaded.arrays["user_factors"]
    assert not isinstance(array, np.memmap)
    assert array.flags.writeable
    array[0, 0] = 123.0
    assert store.load("recommend/ml100k").arrays["user_factors"][0, 0] != 123.0


def test_manifest_only_publish_is_allowed(store: FileStore) -> None:
    manifest = store.publish("app", "rules", params={"k": 1}, engine="local", data_fingerprint="")
    assert manifest.files == {}
    loaded = store.load("app/rules")
    assert dict(loaded.arrays) == {}
    assert dict(loaded.tables) == {}
    assert sorted(p.name for p in loaded.path.iterdir()) == ["manifest.json", "manifest.sha256"]


def test_manifest_on_disk_matches_returned_and_lists_sha256(store: FileStore, publish: Publish) -> None:
    manifest = publish()
    vdir = _vdir(store, 1)
    on_disk = json.loads((vdir / "manifest.json").read_text())
    assert on_disk["files"] == manifest.files
    assert on_disk["format"] == 1
    import hashlib

    for filename, digest in manifest.files.items():
        assert hashlib.sha256((vdir / filename).read_bytes()).hexdigest() == digest
    sidecar = (vdir / "manifest.sha256").read_text().split()
    assert sidecar == [hashlib.sha256((vdir / "manifest.json").read_bytes()).hexdigest(), "manifest.json"]
    # metrics keep the publisher's order: the first ones are the key metrics
    assert list(on_disk["metrics"]) == ["ndcg@10", "precision@10", "recall@10", "map@10"]


def test_open_store_defaults_to_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLSCALE_REGISTRY", str(tmp_path / "reg"))
    store = open_store()
    assert isinstance(store, FileStore)
    assert store.root == Path(load_settings().registry) == tmp_path / "reg"
    # A URI stays a string: pathlib would fold s3:// into s3:/.
    assert load_settings({"MLSCALE_REGISTRY": "s3://bucket/team"}).registry == "s3://bucket/team"
    assert open_store(tmp_path / "other").root == tmp_path / "other"  # type: ignore[attr-defined]


# -- versions, aliases, resolve ---------------------------------------------------------------------


def test_versions_increment_and_resolve(store: FileStore, publish: Publish) -> None:
    versions = [publish(seed=s).version for s in range(3)]
    assert versions == [1, 2, 3]
    assert store.resolve("recommend/ml100k").version == 3
    assert store.resolve("recommend/ml100k@latest").version == 3
    assert store.resolve("recommend/ml100k@2").params["seed"] == 1
    assert store.resolve(ModelRef("recommend", "ml100k", "1")).version == 1
    assert store.current_version("recommend/ml100k") == 3
    assert [m.version for m in store.list()] == [1, 2, 3]


def test_list_sorted_by_app_name_version_and_filtered(store: FileStore, publish: Publish) -> None:
    publish("zeta", "b")
    publish("alpha", "z")
    publish("alpha", "a")
    publish("alpha", "a")
    listed = [(m.app, m.name, m.version) for m in store.list()]
    assert listed == [("alpha", "a", 1), ("alpha", "a", 2), ("alpha", "z", 1), ("zeta", "b", 1)]
    assert [(m.name, m.version) for m in store.list("zeta")] == [("b", 1)]
    assert store.list("nothing") == []
    assert FileStore(store.root / "absent").list() == []


def test_list_ignores_temp_and_stray_entries(store: FileStore, publish: Publish) -> None:
    publish()
    model = store.root / "recommend" / "ml100k"
    (model / ".tmp-publish-crashed").mkdir()  # a publish killed half-way
    (model / "notes.txt").write_text("x")
    (model / "007").mkdir()  # not a canonical version number
    (store.root / "README").write_text("x")
    assert [m.version for m in store.list()] == [1]
    assert store.current_version("recommend/ml100k") == 1


def test_aliases_promote_and_resolve_by_alias(store: FileStore, publish: Publish) -> None:
    for seed in range(3):
        publish(seed=seed)
    assert store.aliases("recommend", "ml100k") == {"latest": 3}
    promoted = store.promote("recommend/ml100k@2", "production")
    assert promoted.version == 2
    store.promote("recommend/ml100k", "staging")  # latest -> 3
    assert store.aliases("recommend", "ml100k") == {"latest": 3, "production": 2, "staging": 3}
    assert store.resolve("recommend/ml100k@production").version == 2
    assert store.load("recommend/ml100k@production").manifest.params["seed"] == 1
    assert store.current_version("recommend/ml100k@staging") == 3
    # promote by alias: production follows staging
    assert store.promote("recommend/ml100k@staging", "production").version == 3
    assert store.current_version("recommend/ml100k@production") == 3
    on_disk = json.loads((store.root / "recommend" / "ml100k" / "aliases.json").read_text())
    assert on_disk == {"production": 3, "staging": 3}
    # a new publish moves latest but not the named aliases
    publish(seed=9)
    assert store.aliases("recommend", "ml100k") == {"latest": 4, "production": 3, "staging": 3}


@pytest.mark.parametrize("alias", ["latest", "3", "Prod", "../x", ""])
def test_promote_refuses_bad_aliases(store: FileStore, publish: Publish, alias: str) -> None:
    publish()
    with pytest.raises(RegistryError) as info:
        store.promote("recommend/ml100k", alias)
    assert repr(alias) in str(info.value) or "latest" in str(info.value)
    assert not (store.root / "recommend" / "ml100k" / "aliases.json").exists()


def test_not_found_errors_list_what_exists(store: FileStore, publish: Publish) -> None:
    with pytest.raises(ModelNotFoundError, match="is empty"):
        store.resolve("recommend/ml100k")
    publish()
    publish()
    store.promote("recommend/ml100k@1", "production")
    with pytest.raises(ModelNotFoundError, match=r"no version 7; versions: 1, 2"):
        store.resolve("recommend/ml100k@7")
    with pytest.raises(ModelNotFoundError, match=r"no alias 'staging'; aliases: latest -> 2, production -> 1"):
        store.load("recommend/ml100k@staging")
    with pytest.raises(ModelNotFoundError, match=r"no model recommend/other .*models there: recommend/ml100k"):
        store.current_version("recommend/other")
    with pytest.raises(ModelNotFoundError):
        store.aliases("recommend", "other")
    with pytest.raises(ModelNotFoundError):
        store.promote("recommend/other", "production")


def test_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "file"
    root.write_text("not a folder")
    store = FileStore(root)
    with pytest.raises(RegistryError, match="not a folder"):
        store.list()
    with pytest.raises(RegistryError, match="not a folder"):
        store.publish("a", "b", params={}, engine="local", data_fingerprint="")


def test_current_version_is_cheap_and_follows_changes(store: FileStore, publish: Publish) -> None:
    publish()
    publish()
    store.promote("recommend/ml100k@1", "production")
    assert store.current_version("recommend/ml100k@production") == 1
    store.promote("recommend/ml100k@2", "production")
    assert store.current_version("recommend/ml100k@production") == 2
    # current_version reads only the folder listing and aliases.json, never manifests
    (_vdir(store, 1) / "manifest.json").write_text("{broken")
    assert store.current_version("recommend/ml100k@1") == 1
    assert store.current_version("recommend/ml100k") == 2
    # ...but nothing damaged can be promoted
    with pytest.raises(ArtifactError):
        store.promote("recommend/ml100k@1", "production")
    assert store.current_version("recommend/ml100k@production") == 2


# -- removal ------------------------------------------------------------------------------------------


def test_remove_one_version_and_numbers_are_never_reused(store: FileStore, publish: Publish) -> None:
    for seed in range(3):
        publish(seed=seed)
    removed = store.remove("recommend/ml100k@3")
    assert [m.version for m in removed] == [3]
    assert not _vdir(store, 3).exists()
    assert store.current_version("recommend/ml100k") == 2
    # a server polling current_version must never see "3" stand for different content
    assert publish(seed=5).version == 4
    assert [m.version for m in store.list()] == [1, 2, 4]
    assert not [p for p in (store.root / "recommend" / "ml100k").iterdir() if p.name.startswith(".trash")]


def test_remove_refuses_version_behind_an_alias_unless_forced(store: FileStore, publish: Publish) -> None:
    publish()
    publish()
    store.promote("recommend/ml100k@1", "production")
    with pytest.raises(RegistryError, match=r"alias\(es\) production point to it"):
        store.remove("recommend/ml100k@1")
    with pytest.raises(RegistryError, match="production"):
        store.remove("recommend/ml100k@production")
    assert _vdir(store, 1).is_dir()
    removed = store.remove("recommend/ml100k@production", force=True)
    assert [m.version for m in removed] == [1]
    assert store.aliases("recommend", "ml100k") == {"latest": 2}
    # latest is implicit: removing the latest version needs no force
    store.remove("recommend/ml100k@2")
    with pytest.raises(ModelNotFoundError):
        store.resolve("recommend/ml100k")


def test_remove_whole_model(store: FileStore, publish: Publish) -> None:
    publish()
    publish()
    publish(name="other")
    with pytest.raises(RegistryError, match="say which version"):
        store.remove("recommend/ml100k")
    with pytest.raises(RegistryError, match="takes a model"):
        store.remove("recommend/ml100k@1", all_versions=True)
    removed = store.remove("recommend/ml100k", all_versions=True)
    assert [m.version for m in removed] == [1, 2]
    assert not (store.root / "recommend" / "ml100k").exists()
    assert [m.name for m in store.list()] == ["other"]
    store.remove("recommend/other", all_versions=True)
    assert not (store.root / "recommend").exists()  # empty app folder goes too
    with pytest.raises(ModelNotFoundError):
        store.remove("recommend/other", all_versions=True)


def test_remove_damaged_version_needs_force(store: FileStore, publish: Publish) -> None:
    publish()
    publish()
    (_vdir(store, 1) / "manifest.json").write_text("{broken")
    with pytest.raises(ArtifactError, match="--force"):
        store.remove("recommend/ml100k@1")
    assert store.remove("recommend/ml100k@1", force=True) == []
    assert [m.version for m in store.list()] == [2]


# -- refusing tampered and pickled artifacts ----------------------------------------------------------


def test_flipped_byte_in_npy_is_refused_naming_the_file(store: FileStore, publish: Publish) -> None:
    publish()
    path = _vdir(store, 1) / "user_factors.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum mismatch") as info:
        store.load("recommend/ml100k")
    assert str(path) in str(info.value)
    # verify=False skips hashing (the caller accepted that risk)
    assert store.load("recommend/ml100k", verify=False).arrays["user_factors"].shape == (50, 8)


def test_missing_and_unlisted_files_are_refused(store: FileStore, publish: Publish) -> None:
    publish()
    vdir = _vdir(store, 1)
    np.save(vdir / "extra.npy", np.zeros(3))
    with pytest.raises(ArtifactError, match=r"not listed in manifest\.json") as info:
        store.load("recommend/ml100k", verify=False)
    assert "extra.npy" in str(info.value)
    (vdir / "extra.npy").unlink()
    (vdir / "items.parquet").unlink()
    with pytest.raises(ArtifactError, match=r"items\.parquet: missing"):
        store.load("recommend/ml100k")


@pytest.mark.parametrize("filename", ["model.pkl", "model.pickle", "model.joblib", "weights.PKL"])
def test_added_pickle_file_is_refused(store: FileStore, publish: Publish, filename: str) -> None:
    publish()
    path = _vdir(store, 1) / filename
    path.write_bytes(pickle.dumps({"a": 1}))
    for verify in (True, False):
        with pytest.raises(ArtifactError, match="pickle") as info:
            store.load("recommend/ml100k", verify=verify)
        assert str(path) in str(info.value)


def test_unknown_file_type_and_subfolder_and_symlink_are_refused(store: FileStore, publish: Publish) -> None:
    publish()
    vdir = _vdir(store, 1)
    (vdir / "run.sh").write_text("echo hi")
    with pytest.raises(ArtifactError, match=r"run\.sh: refused: file type \.sh"):
        store.load("recommend/ml100k")
    (vdir / "run.sh").unlink()
    (vdir / "sub.npy").mkdir()
    with pytest.raises(ArtifactError, match="only hold regular files"):
        store.load("recommend/ml100k")
    (vdir / "sub.npy").rmdir()
    (vdir / "link.npy").symlink_to(vdir / "item_ids.npy")
    with pytest.raises(ArtifactError, match="only hold regular files"):
        store.load("recommend/ml100k")


def test_object_array_smuggled_in_with_a_matching_checksum_is_refused(store: FileStore, publish: Publish) -> None:
    """Even a manifest that vouches for it cannot make mlscale unpickle an array."""
    from mlscale.registry._checksum import sha256_file

    publish()
    vdir = _vdir(store, 1)
    path = vdir / "item_ids.npy"
    np.save(path, np.array([1, "x"], dtype=object), allow_pickle=True)
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["files"]["item_ids.npy"] = sha256_file(path)
    _rewrite_manifest(vdir, manifest)
    for mmap in (True, False):
        with pytest.raises(ArtifactError, match="Python objects") as info:
            store.load("recommend/ml100k", mmap=mmap)
        assert str(path) in str(info.value)


def test_manifest_listing_a_pickle_is_refused(store: FileStore, publish: Publish) -> None:
    from mlscale.registry._checksum import sha256_file

    publish()
    vdir = _vdir(store, 1)
    (vdir / "model.pkl").write_bytes(pickle.dumps([1]))
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["files"]["model.pkl"] = sha256_file(vdir / "model.pkl")
    _rewrite_manifest(vdir, manifest)
    with pytest.raises(ArtifactError, match=r"model\.pkl: refused"):
        store.load("recommend/ml100k")


def _rewrite_manifest(vdir: Path, data: dict[str, Any]) -> None:
    """Rewrite a manifest and its sidecar consistently (what a careful tamperer would do)."""
    import hashlib

    raw = (json.dumps(data, indent=2) + "\n").encode()
    (vdir / "manifest.json").write_bytes(raw)
    (vdir / "manifest.sha256").write_text(f"{hashlib.sha256(raw).hexdigest()}  manifest.json\n")


def test_edited_manifest_is_refused(store: FileStore, publish: Publish) -> None:
    publish()
    path = _vdir(store, 1) / "manifest.json"
    data = json.loads(path.read_text())
    data["metrics"]["ndcg@10"] = 0.99
    path.write_text(json.dumps(data, indent=2) + "\n")
    for action in (
        lambda: store.load("recommend/ml100k"),
        lambda: store.resolve("recommend/ml100k"),
        lambda: store.list(),
    ):
        with pytest.raises(ArtifactError, match="manifest was modified after publish") as info:
            action()
        assert str(path) in str(info.value)


def test_missing_manifest_sidecar_is_refused(store: FileStore, publish: Publish) -> None:
    publish()
    (_vdir(store, 1) / "manifest.sha256").unlink()
    with pytest.raises(ArtifactError, match=r"manifest\.sha256: missing"):
        store.resolve("recommend/ml100k")


def test_manifest_copied_to_another_version_folder_is_refused(store: FileStore, publish: Publish) -> None:
    publish()
    publish()
    for filename in ("manifest.json", "manifest.sha256"):
        (_vdir(store, 2) / filename).write_bytes((_vdir(store, 1) / filename).read_bytes())
    with pytest.raises(ArtifactError, match="describes recommend/ml100k@1 but sits in the folder of"):
        store.resolve("recommend/ml100k@2")


def test_corrupt_aliases_file_is_reported(store: FileStore, publish: Publish) -> None:
    publish()
    path = store.root / "recommend" / "ml100k" / "aliases.json"
    path.write_text('{"production": "one"}')
    with pytest.raises(ArtifactError, match=r"aliases\.json: alias 'production' must point to a version"):
        store.resolve("recommend/ml100k@production")


# -- publish validation and atomicity -----------------------------------------------------------------


def test_object_dtype_array_refused_at_publish(store: FileStore, publish: Publish) -> None:
    with pytest.raises(ValidationError, match=r"arrays\['bad'\]: dtype object .*pickle-free"):
        publish(arrays={"ok": np.zeros(2), "bad": np.array([{"a": 1}], dtype=object)})
    structured = np.zeros(2, dtype=[("x", "f4"), ("o", "O")])
    with pytest.raises(ValidationError, match=r"arrays\['s'\]"):
        publish(arrays={"s": structured})
    assert not store.root.exists() or store.list() == []


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"arrays": {"x": [1, 2]}}, r"arrays\['x'\]: expected a numpy array"),
        ({"tables": {"t": {"a": [1]}}}, r"tables\['t'\]: expected a pyarrow.Table"),
        ({"params": {"f": object()}}, "params: must be plain JSON data"),
        ({"params": {"f": float("nan")}}, "params: must be plain JSON data"),
        ({"extra": {"path": Path("/x")}}, "extra: must be plain JSON data"),
        ({"metrics": {"ndcg": "high"}}, r"metrics\['ndcg'\]: expected a number"),
        ({"metrics": {"ndcg": True}}, r"metrics\['ndcg'\]: expected a number"),
        ({"metrics": {"ndcg": float("inf")}}, r"metrics\['ndcg'\]: expected a finite number"),
        ({"engine": ""}, "engine: expected a non-empty string"),
        ({"data_fingerprint": None}, "data_fingerprint: expected a string"),
    ],
)
def test_publish_validates_arguments_before_writing(
    store: FileStore, publish: Publish, overrides: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        publish(**overrides)
    assert not (store.root / "recommend").exists()


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/b", "", "..", "Upper", "x" * 65, ".hidden", "a..b"])
def test_path_traversal_and_bad_names_are_refused(store: FileStore, publish: Publish, bad: str) -> None:
    with pytest.raises(RegistryError, match="use 1 to 64 characters"):
        publish(app=bad)
    with pytest.raises(RegistryError, match="use 1 to 64 characters"):
        publish(name=bad)
    with pytest.raises(RegistryError, match="use 1 to 64 characters"):
        publish(arrays={bad: np.zeros(1)})
    with pytest.raises(RegistryError, match="use 1 to 64 characters"):
        store.list(bad)
    with pytest.raises(RegistryError, match="use 1 to 64 characters"):
        store.aliases("recommend", bad)
    assert not store.root.exists()
    assert not (store.root.parent / "x").exists()


def test_failed_publish_leaves_no_trace(store: FileStore, publish: Publish, monkeypatch: pytest.MonkeyPatch) -> None:
    publish()
    before = sorted(p.name for p in (store.root / "recommend" / "ml100k").iterdir())
    real_save = np.save
    calls = {"n": 0}

    def failing_save(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # first array written, second one fails half-way
            raise OSError(28, "No space left on device")
        real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(RegistryError, match=r"could not publish recommend/ml100k.*No space left"):
        publish(seed=1)
    monkeypatch.setattr(np, "save", real_save)
    after = sorted(p.name for p in (store.root / "recommend" / "ml100k").iterdir())
    assert after == before
    assert not [n for n in after if n.startswith(".tmp-publish-")]
    assert [m.version for m in store.list()] == [1]
    assert store.load("recommend/ml100k").manifest.params["seed"] == 0
    assert publish(seed=2).version == 2


def test_interrupted_publish_cleans_up(store: FileStore, publish: Publish, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        publish()
    assert [p.name for p in (store.root / "recommend" / "ml100k").iterdir()] in ([], [".lock"])


def test_publish_retries_when_another_writer_took_the_number(
    store: FileStore, publish: Publish, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the lock cannot protect (e.g. NFS), a lost rename race moves on to the next number."""
    publish()
    real_next = FileStore._next_version
    stale = {"left": 1}

    def stale_next(self: FileStore, model_dir: Path) -> int:
        if stale["left"]:
            stale["left"] -= 1
            return 1  # as if version 1 had not appeared yet
        return real_next(self, model_dir)

    monkeypatch.setattr(FileStore, "_next_version", stale_next)
    manifest = publish(seed=3)
    assert manifest.version == 2
    assert store.load("recommend/ml100k@2").manifest == manifest
    assert store.resolve("recommend/ml100k@1").params["seed"] == 0  # untouched


def test_unwritable_table_is_a_validation_error(store: FileStore, publish: Publish) -> None:
    table = pa.table({"x": pa.array([1], pa.int8())}).replace_schema_metadata(None)
    empty_struct = pa.table({"s": pa.array([{}], pa.struct([]))})
    with pytest.raises(ValidationError, match=r"tables\['bad'\]: cannot be written as Parquet"):
        publish(tables={"ok": table, "bad": empty_struct})
    assert [p.name for p in (store.root / "recommend" / "ml100k").iterdir()] in ([], [".lock"])


def test_published_files_respect_umask_not_private(store: FileStore, publish: Publish) -> None:
    old = os.umask(0o022)
    try:
        publish()
    finally:
        os.umask(old)
    assert _vdir(store, 1).stat().st_mode & 0o755 == 0o755


def test_manifest_returned_equals_manifest_read(store: FileStore, publish: Publish) -> None:
    manifest = publish(extra={"trained_on": "ml-100k", "tuple": (1, 2)})
    assert manifest.extra == {"trained_on": "ml-100k", "tuple": [1, 2]}  # what JSON stores
    assert store.resolve(manifest.ref) == manifest
    assert Manifest.from_json(manifest.to_json()) == manifest


@pytest.mark.parametrize("mmap", [True, False])
def test_truncated_array_is_an_artifact_error_even_unverified(store: FileStore, publish: Publish, mmap: bool) -> None:
    publish()
    path = _vdir(store, 1) / "user_factors.npy"
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ArtifactError) as info:
        store.load("recommend/ml100k", mmap=mmap, verify=False)
    assert str(path) in str(info.value)
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        store.load("recommend/ml100k", mmap=mmap)


def test_other_allowed_formats_are_verified_and_npz_is_loaded(store: FileStore, publish: Publish) -> None:
    """A version written by another tool may hold .npz and .json files: checked, pickle-free."""
    from mlscale.registry._checksum import sha256_file

    publish()
    vdir = _vdir(store, 1)
    np.savez(vdir / "extra.npz", a=np.arange(3), b=np.ones((2, 2)))
    (vdir / "vocab.json").write_text('{"x": 1}')
    manifest = json.loads((vdir / "manifest.json").read_text())
    for filename in ("extra.npz", "vocab.json"):
        manifest["files"][filename] = sha256_file(vdir / filename)
    _rewrite_manifest(vdir, manifest)
    loaded = store.load("recommend/ml100k")
    assert np.array_equal(loaded.arrays["extra/a"], np.arange(3))
    assert np.array_equal(loaded.arrays["extra/b"], np.ones((2, 2)))
    assert "vocab" not in loaded.arrays
    assert json.loads((loaded.path / "vocab.json").read_text()) == {"x": 1}
    (vdir / "vocab.json").write_text('{"x": 2}')
    with pytest.raises(ArtifactError, match=r"vocab\.json: checksum mismatch"):
        store.load("recommend/ml100k")
