"""Vision artifacts: ONNX + safetensors round trip, and refusal of tampered or mismatched ones."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mlscale.apps.vision.codec import check_onnx, decode, encode, load_weights, publish, read_artifact
from mlscale.apps.vision.data import ArrayDataset
from mlscale.apps.vision.model import VisionModel
from mlscale.apps.vision.predictor import OnnxClassifier
from mlscale.errors import ArtifactError
from mlscale.registry import open_store


def test_round_trip_gives_the_same_predictions(
    vision_registry: Path, small_model: VisionModel, fm_test: ArrayDataset
) -> None:
    loaded = open_store(vision_registry).load("vision/fm")
    assert all(Path(f).suffix == ".npy" for f in loaded.manifest.files)  # bytes only, no pickle
    assert loaded.manifest.extra["vision"]["labels"][9] == "Ankle boot"
    back = decode(loaded)
    images = fm_test.images[:300]
    eager = small_model.predict_proba(images)
    np.testing.assert_allclose(back.predict_proba(images), eager, atol=1e-6)
    art = read_artifact(loaded)
    onnx = OnnxClassifier(art.onnx, art.meta).predict_proba(images)
    np.testing.assert_allclose(onnx, eager, atol=1e-4)
    assert back.meta == small_model.meta
    assert back.params == small_model.params


def test_a_tampered_file_is_refused(tmp_path: Path, small_model: VisionModel) -> None:
    store = open_store(tmp_path)
    manifest = publish(store, "t", small_model, metrics={}, engine="local", data_fingerprint="x")
    path = store.version_dir("vision", "t", manifest.version) / "model_onnx.npy"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="model_onnx"):
        store.load("vision/t")


def test_blobs_that_disagree_with_the_metadata_are_refused(small_model: VisionModel) -> None:
    art = encode(small_model)
    other = dataclasses.replace(small_model.meta, labels=small_model.meta.labels[:5])
    with pytest.raises(ArtifactError, match=r"the graph takes .* the metadata says"):
        check_onnx(art.onnx, other)
    with pytest.raises(ArtifactError, match="do not fit the network"):
        load_weights(art.weights, other)
    wider = dataclasses.replace(small_model.meta, base=16)
    with pytest.raises(ArtifactError, match=r"0\.weight is \[8, 1, 3, 3\], expected \[16, 1, 3, 3\]"):
        load_weights(art.weights, wider)
    with pytest.raises(ArtifactError, match="not a readable safetensors"):
        load_weights(b"garbage" * 10, small_model.meta)
    with pytest.raises(ArtifactError, match="not a valid ONNX"):
        check_onnx(b"\x00garbage", small_model.meta)


def test_a_manifest_hash_mismatch_is_refused(tmp_path: Path, small_model: VisionModel) -> None:
    # Re-published by hand with a weights blob that is not the one the vision metadata hashed.
    store = open_store(tmp_path)
    art = encode(small_model)
    arrays = art.arrays()
    arrays["weights_safetensors"] = np.frombuffer(art.weights[:-1] + b" ", np.uint8)
    store.publish("vision", "h", arrays=arrays, params=art.params.to_dict(), engine="local",
                  data_fingerprint="x", extra=art.extra())  # fmt: skip
    with pytest.raises(ArtifactError, match="weights_safetensors.npy does not hash"):
        read_artifact(store.load("vision/h"))
