"""The registry against corruption and tampering: promote verifies, symlinks and odd manifests are refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

import numpy as np
import pytest

from mlscale.cli import main
from mlscale.errors import ArtifactError, ModelNotFoundError, ValidationError
from mlscale.registry import FileStore
from mlscale.registry._manifest import Manifest
from mlscale.serve._config import ServeConfig

Publish = Callable[..., Manifest]  # the ``publish`` fixture of conftest.py


def test_promote_to_a_corrupt_version_is_refused_and_the_alias_stays(
    store: FileStore, publish: Publish, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(seed=0)
    publish(seed=1)
    store.promote("recommend/ml100k@1", "production")
    vdir = store.root / "recommend" / "ml100k" / "2"
    data = bytearray((vdir / "user_factors.npy").read_bytes())
    data[-1] ^= 0xFF  # one flipped bit of a factor
    (vdir / "user_factors.npy").write_bytes(bytes(data))
    status = main(["models", "promote", "recommend/ml100k@2", "--alias", "production", "--registry", str(store.root)])
    err = capsys.readouterr().err
    assert status != 0
    assert "refusing to point 'production' at recommend/ml100k@2" in err
    assert "checksum mismatch" in err
    assert store.aliases("recommend", "ml100k")["production"] == 1
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        store.promote("recommend/ml100k@2", "staging")


def test_a_symlinked_version_folder_is_not_served(store: FileStore, publish: Publish, tmp_path: Path) -> None:
    publish(seed=0)
    model_dir = store.root / "recommend" / "ml100k"
    (model_dir / "7").symlink_to(model_dir / "1", target_is_directory=True)
    assert [m.version for m in store.list()] == [1]  # list ignores it...
    with pytest.raises(ModelNotFoundError, match="has no version 7"):
        store.load("recommend/ml100k@7")  # ...and so do load and resolve
    with pytest.raises(ModelNotFoundError):
        store.promote("recommend/ml100k@7", "production")


def test_a_deeply_nested_manifest_is_an_artifact_error() -> None:
    with pytest.raises(ArtifactError, match="nested too deeply"):
        Manifest.from_json("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ArtifactError, match="nested too deeply"):
        Manifest.from_json('{"params": ' + "[" * 200_000 + "]" * 200_000 + "}")


def test_a_resigned_recommender_artifact_with_a_wrong_dtype_is_refused(tmp_path: Path) -> None:
    from mlscale.apps.recommend import ImplicitRecommender, from_artifact, publish_model
    from mlscale.apps.recommend.matrix import InteractionMatrix
    from mlscale.registry import open_store

    rng = np.random.default_rng(0)
    users = rng.integers(0, 30, 600)
    model = ImplicitRecommender(factors=4, iterations=2, threads=1).fit(
        InteractionMatrix.from_arrays(users, users % 7 * 3 + rng.integers(0, 3, 600))
    )
    store = open_store(tmp_path / "reg")
    publish_model(store, "m", model, metrics={}, engine="local", data_fingerprint="f")
    vdir = tmp_path / "reg" / "recommend" / "m" / "1"
    np.save(vdir / "item_factors.npy", np.asarray(model.item_factors_).astype("U8"))
    # Re-sign: the manifest's checksum of the file is brought up to date, as a tamperer would.
    from mlscale.registry._checksum import sha256_file

    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["files"]["item_factors.npy"] = sha256_file(vdir / "item_factors.npy")
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    digest = sha256((vdir / "manifest.json").read_bytes()).hexdigest()
    (vdir / "manifest.sha256").write_text(f"{digest}  manifest.json\n")
    with pytest.raises(ArtifactError, match="item_factors has dtype <U8"):
        from_artifact(store.load("recommend/m@1"))


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x" * 65, "a..b", "sp ace"])
def test_served_names_are_validated(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValidationError, match="invalid served name"):
        ServeConfig(registry=tmp_path, models=((name, "recommend/m@1"),))
