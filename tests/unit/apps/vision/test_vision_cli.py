"""The vision application through the `mlscale` command: train, evaluate, precompute (batch inference), bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tests.unit.apps.vision.conftest import bad_images

from mlscale.cli import main
from mlscale.registry import open_store

FAST = ["--epochs", "1", "--width", "4", "--batch-size", "32", "--threads", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, image_folder: Path, shared_data: Path) -> Path:
    root = tmp_path_factory.mktemp("cli-registry")
    args = ["train", "vision", "--data", str(image_folder), "--name", "folder", "--registry", str(root), *FAST]
    assert main([*args, "--data-dir", str(shared_data)]) == 0
    return root


def test_train_on_a_folder_publishes_onnx_and_safetensors(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = open_store(trained).resolve("vision/folder")
    assert set(manifest.files) == {"model_onnx.npy", "weights_safetensors.npy"}
    assert manifest.params["epochs"] == 1
    assert manifest.params["width"] == 4
    assert manifest.extra["images"] == 200
    assert 0 <= manifest.metrics["test_accuracy"] <= 1  # the folder's test/ split
    assert manifest.extra["vision"]["height"] == 28


def test_evaluate_and_predict(
    trained: Path, image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (
        main(["evaluate", "vision", "--model", "folder", "--data", str(image_folder), "--registry", str(trained)]) == 0
    )
    assert "accuracy" in capsys.readouterr().out
    out = tmp_path / "preds.parquet"
    status = main(
        ["precompute", "vision", "--model", "vision/folder", "--data", str(image_folder / "test"), "--out", str(out),
         "--k", "3", "--registry", str(trained)]
    )  # fmt: skip
    assert status == 0
    table = pq.read_table(out)
    assert table.num_rows == 100
    assert table.column_names == ["path", "label", "probability", "labels", "probabilities", "true_label"]
    row = table.slice(0, 1).to_pylist()[0]
    assert len(row["labels"]) == 3
    assert row["labels"][0] == row["label"]
    assert row["true_label"] == Path(row["path"]).parent.name
    assert "classified 100 images" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(bad_images()))
def test_a_bad_file_stops_training_with_its_name_or_is_skipped(
    name: str, image_folder: Path, tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(image_folder / "train", data)
    bad = data / "Bag" / f"0000-{name}"  # sorted first, so it is met before the first epoch ends
    bad.write_bytes(bad_images()[name])
    reg = ["--registry", str(tmp_path / "reg"), "--data-dir", str(shared_data)]
    capsys.readouterr()
    assert main(["train", "vision", "--data", str(data), "--name", "b", *FAST, *reg]) == 65
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "Traceback" not in err
    assert main(["train", "vision", "--data", str(data), "--name", "b", *FAST, "--on-error", "skip", *reg]) == 0
    assert "1 bad file(s) skipped" in capsys.readouterr().out


def test_bad_flags_name_the_flag(image_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "vision", "--data", str(image_folder), "--name", "x", "--val-fraction", "2"]) == 64
    assert "val_fraction: expected a share between 0 and 1" in capsys.readouterr().err
    assert main(["train", "vision", "--data", str(image_folder), "--name", "x", "--no-augment", "--epochs", "0"]) == 64


def test_predict_skips_bad_files_when_asked(trained: Path, tmp_path: Path, image_folder: Path) -> None:
    data = tmp_path / "imgs"
    shutil.copytree(image_folder / "test" / "Bag", data)
    for name, blob in bad_images().items():
        (data / name).write_bytes(blob)
    out = tmp_path / "p.parquet"
    args = [
        "precompute",
        "vision",
        "--model",
        "folder",
        "--data",
        str(data),
        "--out",
        str(out),
        "--registry",
        str(trained),
    ]
    assert main(args) == 65
    assert not out.exists()
    assert main([*args, "--on-error", "skip"]) == 0
    n = len(list((image_folder / "test" / "Bag").iterdir()))
    assert pq.read_table(out).num_rows == n
    assert np.isfinite(pq.read_table(out).column("probability").to_numpy()).all()
