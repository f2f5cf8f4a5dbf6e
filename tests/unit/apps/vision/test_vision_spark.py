"""The vision app on Spark: TorchDistributor training (2 DDP processes) and predict_batch_udf inference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tests.unit.apps.vision.conftest import bad_images

from mlscale.apps.vision.codec import read_artifact
from mlscale.apps.vision.params import VisionParams
from mlscale.apps.vision.predict import predict_local, predict_spark
from mlscale.apps.vision.train_local import evaluate
from mlscale.apps.vision.train_spark import fit_distributed
from mlscale.engines.spark import SparkEngine
from mlscale.registry import open_store

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkEngine]:
    engine = SparkEngine(master="local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    _ = engine.session
    yield engine
    engine.close()


def test_local_and_spark_batch_predictions_agree(
    spark: SparkEngine, vision_registry: Path, image_folder: Path, tmp_path: Path
) -> None:
    art = read_artifact(open_store(vision_registry).load("vision/fm"))
    data = tmp_path / "imgs"
    data.mkdir()
    for f in sorted((image_folder / "test").rglob("*.png"))[:60]:
        (data / f.name).write_bytes(f.read_bytes())
    (data / "zz-bad.png").write_bytes(bad_images()["truncated.png"])
    local = predict_local(art.onnx, art.meta, data, tmp_path / "local.parquet", batch_size=16, k=3, on_error="skip")
    remote = predict_spark(
        spark.session, art.onnx, art.meta, data, tmp_path / "spark.parquet", batch_size=16, k=3, on_error="skip"
    )
    assert (local.images, local.skipped) == (remote.images, remote.skipped) == (60, 1)
    a = pq.read_table(tmp_path / "local.parquet").sort_by("path")
    b = pq.read_table(tmp_path / "spark.parquet").sort_by("path")
    assert a.column("path").to_pylist() == b.column("path").to_pylist()
    assert a.column("labels").to_pylist() == b.column("labels").to_pylist()
    np.testing.assert_allclose(a.column("probability").to_numpy(), b.column("probability").to_numpy(), atol=1e-5)
    with pytest.raises(Exception, match="zz-bad.png"):
        predict_spark(spark.session, art.onnx, art.meta, data, tmp_path / "s2.parquet")


# No filterwarnings here: fit_distributed silences the ResourceWarning of TorchDistributor's unclosed pipe.
def test_torch_distributor_trains_the_same_kind_of_model(
    spark: SparkEngine, image_folder: Path, shared_data: Path
) -> None:
    params = VisionParams(epochs=1, width=4, batch_size=32)
    model = fit_distributed(
        str(image_folder), params, data_dir=shared_data, num_processes=2, session=spark.session, threads=1
    )
    assert len(model.history) == 1
    assert model.meta.labels[0] == "Ankle boot"  # class folders, sorted
    from mlscale.apps.vision.data import open_dataset

    test = open_dataset(image_folder, data_dir=shared_data, split="test", labels=model.meta.labels)
    scores = evaluate(model, test)
    assert scores["images"] == 100
    assert 0 <= scores["accuracy"] <= 1
