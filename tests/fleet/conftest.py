"""Fixtures for the object-store registry and the fleet: a real S3-compatible server (moto's).

The server is moto's standalone HTTP server (``ThreadedMotoServer``) on
127.0.0.1, so the store talks real HTTP and SigV4 through boto3 exactly as it
would to AWS; nothing in the client is mocked. Each test gets its own bucket.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlscale.registry import Manifest, ObjectStore, Store

#: The fake secret every test uses; tests assert it never reaches any output.
SECRET = "fleet-test-secret-Zq8x7KpL2vN4"
ACCESS_KEY = "AKIAFLEETTEST0000001"


@dataclass(frozen=True)
class S3:
    """A running S3-compatible server and the environment that reaches it."""

    endpoint: str

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            # Never ask an instance-metadata address off the machine for credentials.
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3]:
    pytest.importorskip("boto3", reason="the object-store tests need boto3: pip install 'mlscale[s3]'")
    moto_server = pytest.importorskip("moto.server", reason="needs moto's server: pip install 'moto[server]'")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: S3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3:
    """The standard AWS variables pointing at the test server, and a fresh host cache."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLSCALE_CACHE_DIR", str(tmp_path / "host-cache"))
    return s3_server


def _creds() -> dict[str, str]:
    return {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET, "region_name": "us-east-1"}


@pytest.fixture
def raw_s3(s3_server: S3) -> Any:
    """A plain boto3 client, to create buckets and tamper with objects behind the store's back."""
    import boto3

    return boto3.client("s3", endpoint_url=s3_server.endpoint, **_creds())


@pytest.fixture
def bucket_uri(s3_env: S3, raw_s3: Any) -> str:
    name = f"mlscale-{secrets.token_hex(4)}"
    raw_s3.create_bucket(Bucket=name)
    return f"s3://{name}/team/registry"


@pytest.fixture
def s3_store(bucket_uri: str) -> ObjectStore:
    return ObjectStore(bucket_uri)


Publish = Callable[..., Manifest]


def publish_small(store: Store, name: str = "demo", seed: int = 0) -> Manifest:
    """A small two-array, one-table version (about 30 KiB)."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    return store.publish(
        "recommend",
        name,
        arrays={"item_factors": rng.standard_normal((400, 16)).astype(np.float32), "ids": np.arange(400)},
        tables={"items": pa.table({"item_id": list(range(5))})},
        params={"factors": 16, "seed": seed},
        metrics={"ndcg@10": 0.25 + seed / 100},
        engine="local",
        data_fingerprint="sha256:0123",
    )


@pytest.fixture
def publish() -> Publish:
    """``publish(store, name="demo", seed=0)``: a small version, published."""
    return publish_small


def publish_recommender(store: Store, name: str = "demo", seed: int = 0) -> Manifest:
    """A tiny real recommender (50 users, 50 items), fitted and published as ``recommend/NAME``."""
    from mlscale.apps.recommend import ImplicitRecommender, publish_model
    from mlscale.apps.recommend.matrix import InteractionMatrix

    rng = np.random.default_rng(seed)
    users = rng.integers(0, 50, 2000)
    items = (users % 5) * 10 + rng.integers(0, 10, 2000)
    model = ImplicitRecommender(factors=8, iterations=3, threads=1, seed=seed).fit(
        InteractionMatrix.from_arrays(users, items)
    )
    return publish_model(store, name, model, metrics={}, engine="local", data_fingerprint=f"seed-{seed}")


@pytest.fixture
def publish_model() -> Publish:
    """``publish_model(store, name="demo", seed=0)``: a tiny servable recommender, published."""
    return publish_recommender
