"""Attachments of the object-store registry (the threat verdict log), against moto's server on 127.0.0.1.

Each "host" is one :class:`ObjectStore` with its own cache folder: what one
records must be in the store, and seen by the others, with no line lost to a
concurrent append.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from mlscale.apps.threat import Verdict
from mlscale.apps.threat.app import feedback_log
from mlscale.errors import RegistryError
from mlscale.registry import ObjectStore, open_store
from mlscale.registry._s3 import S3Bucket


def _host(location: str, tmp_path: Path, name: str) -> ObjectStore:
    return ObjectStore(location, cache_dir=tmp_path / f"cache-{name}")


def _object(raw_s3: Any, location: str) -> bytes:
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    key = f"{prefix}/.attachments/feedback/threat/demo.jsonl"
    return bytes(raw_s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_a_verdict_recorded_on_one_host_is_in_the_store_and_seen_by_another(
    bucket_uri: str, tmp_path: Path, raw_s3: Any
) -> None:
    a, b = _host(bucket_uri, tmp_path, "a"), _host(bucket_uri, tmp_path, "b")
    assert feedback_log(b, "demo").read() == []
    assert feedback_log(a, "demo").record([Verdict(3, "pattern", {"dst_ip": "10.0.0.9"})]) == 1
    assert b"10.0.0.9" in _object(raw_s3, bucket_uri)  # durable in the store, not only in host a's cache
    seen = feedback_log(b, "demo").read()
    assert [(v.severity, dict(v.match)) for v in seen] == [(3, {"dst_ip": "10.0.0.9"})]
    # A host that comes later (an empty cache) sees it too, and the local copies differ only in place.
    c = _host(bucket_uri, tmp_path, "c")
    assert [dict(v.match) for v in feedback_log(c, "demo").read()] == [{"dst_ip": "10.0.0.9"}]
    assert c.attachment("threat", "demo", "feedback").parent.is_relative_to(tmp_path / "cache-c")


def test_appends_on_two_hosts_merge_without_losing_a_line(bucket_uri: str, tmp_path: Path, raw_s3: Any) -> None:
    a, b = _host(bucket_uri, tmp_path, "a"), _host(bucket_uri, tmp_path, "b")
    # Both append locally before either syncs: the second sync must merge, not overwrite.
    path_a, path_b = a.attachment("threat", "demo", "feedback"), b.attachment("threat", "demo", "feedback")
    path_a.write_bytes(b'{"n": 1}\n')
    path_b.write_bytes(b'{"n": 2}\n{"n": 3}\n')
    a.sync_attachment("threat", "demo", "feedback")
    b.sync_attachment("threat", "demo", "feedback")
    a.sync_attachment("threat", "demo", "feedback")
    stored = _object(raw_s3, bucket_uri).splitlines()
    assert sorted(stored) == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
    assert sorted(path_a.read_bytes().splitlines()) == sorted(stored)
    assert sorted(path_b.read_bytes().splitlines()) == sorted(stored)
    # Syncing again (as after a crash mid-sync) adds nothing twice.
    b.sync_attachment("threat", "demo", "feedback")
    assert len(_object(raw_s3, bucket_uri).splitlines()) == 3
    assert len(path_b.read_bytes().splitlines()) == 3


def test_a_lost_compare_and_swap_is_retried_with_the_other_hosts_lines(
    bucket_uri: str, tmp_path: Path, raw_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _host(bucket_uri, tmp_path, "a"), _host(bucket_uri, tmp_path, "b")
    a.attachment("threat", "demo", "feedback").write_bytes(b'{"host": "a"}\n')
    b.attachment("threat", "demo", "feedback").write_bytes(b'{"host": "b"}\n')
    real_put = S3Bucket.put
    raced = threading.Event()

    def put_after_b(self: S3Bucket, *args: Any, **kwargs: Any) -> None:
        # Fault injection: host b's sync lands between host a's read and its conditional write.
        if not raced.is_set() and self is a._s3:
            raced.set()
            b.sync_attachment("threat", "demo", "feedback")
        real_put(self, *args, **kwargs)

    monkeypatch.setattr(S3Bucket, "put", put_after_b)
    a.sync_attachment("threat", "demo", "feedback")
    assert raced.is_set()
    assert sorted(_object(raw_s3, bucket_uri).splitlines()) == [b'{"host": "a"}', b'{"host": "b"}']


def test_a_torn_local_line_is_never_uploaded(bucket_uri: str, tmp_path: Path, raw_s3: Any) -> None:
    a = _host(bucket_uri, tmp_path, "a")
    path = a.attachment("threat", "demo", "feedback")
    path.write_bytes(b'{"n": 1}\n{"n": 2, "to')  # a crash mid-append: never acknowledged
    a.sync_attachment("threat", "demo", "feedback")
    assert _object(raw_s3, bucket_uri) == b'{"n": 1}\n'
    assert path.read_bytes() == b'{"n": 1}\n'


def test_a_verdict_posted_to_a_served_threat_model_reaches_the_other_hosts(bucket_uri: str, tmp_path: Path) -> None:
    """The predictor's log is the object store's (a loaded version's store is the store, not its cache)."""
    from mlscale.apps.threat import ThreatDetector, application, generate_flows, publish_model
    from mlscale.apps.threat.predictor import FeedbackRequest, FeedbackResponse

    a, b = _host(bucket_uri, tmp_path, "a"), _host(bucket_uri, tmp_path, "b")
    detector = ThreatDetector(topics=4, passes=2).fit(generate_flows(2000, hosts=30, seed=0))
    publish_model(a, "demo", detector, metrics={}, engine="local", data_fingerprint="sha256:0")
    loaded = b.load("threat/demo")
    assert loaded.store is b
    predictor = application.predictor(loaded)
    [answer] = predictor.feedback_batch([FeedbackRequest(severity=3, kind="pattern", match={"dst_ip": "10.0.0.9"})])
    assert isinstance(answer, FeedbackResponse)
    assert [dict(v.match) for v in feedback_log(a, "demo").read()] == [{"dst_ip": "10.0.0.9"}]
    assert isinstance(open_store(bucket_uri), ObjectStore)


def test_attachment_names_are_checked(bucket_uri: str, tmp_path: Path) -> None:
    with pytest.raises(RegistryError):
        _host(bucket_uri, tmp_path, "a").attachment("threat", "demo", "../x")
