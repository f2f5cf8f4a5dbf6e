"""The object-store registry against a real S3-compatible server (moto's, on 127.0.0.1)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlscale.cli import main
from mlscale.errors import ArtifactError, DependencyError, ModelNotFoundError, RegistryError
from mlscale.registry import FileStore, Manifest, ObjectStore, open_store
from mlscale.registry._s3 import parse_s3_uri

Publish = Callable[..., Manifest]


def test_open_store_dispatches_s3_uris(bucket_uri: str) -> None:
    store = open_store(bucket_uri)
    assert isinstance(store, ObjectStore)
    assert store.location == bucket_uri
    # What pathlib makes of the URI when a --registry flag was parsed as a path.
    assert open_store(Path(bucket_uri)).location == bucket_uri
    assert isinstance(open_store("/tmp/x"), FileStore)
    with pytest.raises(RegistryError, match="expected s3://BUCKET"):
        parse_s3_uri("s3://A_bad_bucket/x")


def test_publish_load_list_promote(s3_store: ObjectStore, publish: Publish) -> None:
    first = publish(s3_store, seed=0)
    second = publish(s3_store, seed=1)
    assert (first.version, second.version) == (1, 2)
    assert [m.version for m in s3_store.list()] == [1, 2]
    assert s3_store.list("threat") == []
    assert s3_store.aliases("recommend", "demo") == {"latest": 2}
    assert s3_store.promote("recommend/demo@1", "production").version == 1
    assert s3_store.aliases("recommend", "demo") == {"latest": 2, "production": 1}
    assert s3_store.current_version("recommend/demo@production") == 1
    assert s3_store.resolve("recommend/demo").version == 2

    fresh = ObjectStore(s3_store.location, cache_dir=s3_store.cache_dir.parent.parent / "other-host")
    model = fresh.load("recommend/demo@production")
    assert model.manifest == first
    expected = np.random.default_rng(0).standard_normal((400, 16)).astype(np.float32)
    np.testing.assert_array_equal(model.arrays["item_factors"], expected)
    assert isinstance(model.arrays["item_factors"], np.memmap)  # memory-mapped from the host cache
    assert model.path.is_relative_to(fresh.cache_dir)
    assert model.tables["items"].num_rows == 5
    assert (fresh.cache_misses, fresh.cache_hits) == (1, 0)
    assert fresh.bytes_fetched == sum((model.path / f).stat().st_size for f in first.files)
    del model


def test_cache_hit_miss_and_a_shared_copy(s3_store: ObjectStore, publish: Publish, tmp_path: Path) -> None:
    publish(s3_store)
    cache = tmp_path / "shared-cache"
    worker_a = ObjectStore(s3_store.location, cache_dir=cache)
    worker_b = ObjectStore(s3_store.location, cache_dir=cache)
    a = worker_a.load("recommend/demo")
    b = worker_b.load("recommend/demo")
    assert (worker_a.cache_misses, worker_a.cache_hits) == (1, 0)
    assert (worker_b.cache_misses, worker_b.cache_hits, worker_b.bytes_fetched) == (0, 1, 0)
    assert a.path == b.path  # one copy on the host, mapped by both
    # The publisher's own host already holds what it published.
    own = s3_store.load("recommend/demo")
    assert (s3_store.cache_hits, s3_store.bytes_fetched) == (1, 0)
    del a, b, own


def test_unknown_models_and_aliases_are_named(s3_store: ObjectStore, publish: Publish) -> None:
    with pytest.raises(ModelNotFoundError, match="is empty"):
        s3_store.resolve("recommend/demo")
    publish(s3_store)
    with pytest.raises(ModelNotFoundError, match="models there: recommend/demo"):
        s3_store.resolve("recommend/other")
    with pytest.raises(ModelNotFoundError, match="no alias 'staging'"):
        s3_store.resolve("recommend/demo@staging")
    with pytest.raises(ModelNotFoundError, match="no version 7"):
        s3_store.resolve("recommend/demo@7")
    with pytest.raises(RegistryError, match="cannot be moved"):
        s3_store.promote("recommend/demo@1", "latest")


def test_a_tampered_object_is_refused(s3_store: ObjectStore, publish: Publish, raw_s3: Any, tmp_path: Path) -> None:
    manifest = publish(s3_store)
    bucket, prefix = s3_store.location.removeprefix("s3://").split("/", 1)
    keys = [o["Key"] for o in raw_s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    data_key = next(k for k in keys if k.endswith("/item_factors.npy"))
    body = bytearray(raw_s3.get_object(Bucket=bucket, Key=data_key)["Body"].read())
    body[-1] ^= 0xFF
    raw_s3.put_object(Bucket=bucket, Key=data_key, Body=bytes(body))
    other_host = ObjectStore(s3_store.location, cache_dir=tmp_path / "h2")
    with pytest.raises(ArtifactError, match=r"item_factors\.npy: checksum mismatch") as err:
        other_host.load("recommend/demo")
    assert f"s3://{bucket}/" in str(err.value)
    assert not (other_host.cache_dir / "recommend" / "demo" / "1").exists()  # nothing half-cached

    # A manifest edited in place is refused too.
    record_key = next(k for k in keys if k.endswith("/versions/1.json"))
    record = json.loads(raw_s3.get_object(Bucket=bucket, Key=record_key)["Body"].read())
    record["manifest"] = record["manifest"].replace('"factors": 16', '"factors": 17')
    raw_s3.put_object(Bucket=bucket, Key=record_key, Body=json.dumps(record).encode())
    with pytest.raises(ArtifactError, match="the manifest was modified"):
        other_host.resolve(manifest.ref)


def test_concurrent_publishers_get_distinct_versions(s3_store: ObjectStore, publish: Publish) -> None:
    stores = [ObjectStore(s3_store.location, cache_dir=s3_store.cache_dir / f"p{i}") for i in range(3)]
    got: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores) * 2)

    def run(store: ObjectStore, seed: int) -> None:
        try:
            barrier.wait(10)
            got.append(publish(store, seed=seed).version)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(s, i * 2 + j)) for i, s in enumerate(stores) for j in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(got) == list(range(1, 7))
    # Every committed version loads whole: no publisher overwrote another's record.
    seeds = sorted(m.params["seed"] for m in s3_store.list())
    assert seeds == list(range(6))


def test_concurrent_promotions_lose_no_alias(s3_store: ObjectStore, publish: Publish) -> None:
    publish(s3_store)
    barrier = threading.Barrier(4)

    def run(alias: str) -> None:
        store = ObjectStore(s3_store.location, cache_dir=s3_store.cache_dir)
        barrier.wait(10)
        store.promote("recommend/demo@1", alias)

    threads = [threading.Thread(target=run, args=(f"a{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(s3_store.aliases("recommend", "demo")) == {"latest", *(f"a{i}" for i in range(4))}


def test_remove_never_reuses_a_number(s3_store: ObjectStore, publish: Publish) -> None:
    publish(s3_store, seed=0)
    publish(s3_store, seed=1)
    s3_store.promote("recommend/demo@2", "production")
    with pytest.raises(RegistryError, match="alias\\(es\\) production point to it"):
        s3_store.remove("recommend/demo@2")
    assert [m.version for m in s3_store.remove("recommend/demo@2", force=True)] == [2]
    assert "production" not in s3_store.aliases("recommend", "demo")
    assert publish(s3_store, seed=2).version == 3
    assert [m.version for m in s3_store.remove("recommend/demo", all_versions=True)] == [1, 3]
    assert s3_store.list() == []


def test_the_cli_never_prints_the_secret(
    bucket_uri: str, publish: Publish, capsys: pytest.CaptureFixture[str], s3_env: Any
) -> None:
    secret = s3_env.env()["AWS_SECRET_ACCESS_KEY"]
    publish(open_store(bucket_uri))
    assert main(["models", "list", "--registry", bucket_uri]) == 0
    assert main(["models", "show", "recommend/demo", "--verify", "--registry", bucket_uri]) == 0
    assert main(["models", "promote", "recommend/demo@1", "--alias", "production", "--registry", bucket_uri]) == 0
    out = capsys.readouterr()
    assert "recommend/demo" in out.out
    missing = "s3://mlscale-no-such-bucket/x"
    assert main(["models", "list", "--registry", missing]) != 0
    failed = capsys.readouterr()
    assert "does not exist" in failed.err
    for text in (out.out, out.err, failed.out, failed.err):
        assert secret not in text
    assert main(["models", "list", "--registry", missing.replace("s3://", "s3:/")]) != 0  # pathlib's form too
    capsys.readouterr()


def test_a_server_without_conditional_writes_falls_back_with_a_warning(
    s3_store: ObjectStore, publish: Publish, caplog: pytest.LogCaptureFixture
) -> None:
    from botocore.exceptions import ClientError

    def refuse_conditions(params: dict[str, Any], **_: Any) -> None:
        # Fault injection: answer as a server that does not implement conditional writes.
        if {"If-None-Match", "If-Match"} & set(params.get("headers", {})):
            raise ClientError(
                {"Error": {"Code": "NotImplemented", "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": 501}},
                "PutObject",
            )

    s3_store._s3.client.meta.events.register("before-call.s3.PutObject", refuse_conditions)
    with caplog.at_level("WARNING", logger="mlscale.registry"):
        assert publish(s3_store).version == 1
        s3_store.promote("recommend/demo@1", "production")
    assert "does not support conditional writes" in caplog.text
    assert s3_store.aliases("recommend", "demo") == {"latest": 1, "production": 1}


def test_without_boto3_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("boto3", "botocore", "botocore.config", "botocore.exceptions"):  # as if not installed
        monkeypatch.setitem(sys.modules, name, None)  # importing it raises ImportError
    store = ObjectStore("s3://some-bucket/x", cache_dir=tmp_path)
    with pytest.raises(DependencyError, match="needs boto3") as err:
        store.list()
    assert "pip install 'mlscale[s3]'" in str(err.value)
