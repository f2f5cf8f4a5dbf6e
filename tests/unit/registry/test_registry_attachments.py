"""What the Store API offers besides versions: its reopenable location and per-model attachments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlscale.errors import RegistryError
from mlscale.registry import FileStore, Manifest, open_store

Publish = Callable[..., Manifest]  # the ``publish`` fixture of conftest.py


def test_location_reopens_the_same_store(store: FileStore, publish: Publish) -> None:
    publish()
    again = open_store(store.location)
    assert [m.ref for m in again.list()] == [m.ref for m in store.list()]


def test_attachments_survive_versions_and_stay_out_of_listings(store: FileStore, publish: Publish) -> None:
    publish()
    path = store.attachment("recommend", "ml100k", "feedback")
    assert path.parent.is_dir()
    path.write_text('{"severity": 3}\n')
    publish()  # a new version leaves the attachment alone
    assert store.attachment("recommend", "ml100k", "feedback").read_text() == '{"severity": 3}\n'
    assert {m.app for m in store.list()} == {"recommend"}  # the hidden folder is not an app


def test_a_loaded_version_knows_its_store(store: FileStore, publish: Publish) -> None:
    manifest = publish()
    loaded = store.load(manifest.ref)
    assert loaded.store is store


@pytest.mark.parametrize(("key", "suffix"), [("../x", ".jsonl"), ("feedback", "/x"), ("Feedback", ".jsonl")])
def test_attachment_names_are_checked(tmp_path: Path, key: str, suffix: str) -> None:
    with pytest.raises(RegistryError):
        FileStore(tmp_path).attachment("threat", "m", key, suffix=suffix)
