from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlscale.engines import LocalEngine, get_engine
from mlscale.engines.spark import SparkEngine, java_version, spark_errors
from mlscale.errors import ConfigError, DependencyError, EngineError, ValidationError


def test_engine_is_chosen_in_one_place() -> None:
    assert isinstance(get_engine("local", threads=1), LocalEngine)
    spark = get_engine("spark", master="local[2]")
    assert isinstance(spark, SparkEngine)
    assert spark.threads == 2  # no session started just to answer this
    assert spark._session is None
    with pytest.raises(ConfigError, match="unknown engine 'flink'"):
        get_engine("flink")
    with pytest.raises(ValidationError, match="threads"):
        LocalEngine(threads=-1)


def test_java_missing_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    with pytest.raises(DependencyError, match="Java") as info:
        java_version()
    assert "openjdk-17" in str(info.value)


def test_java_too_old_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    assert java_version(str(fake)) == 11
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setitem(os.environ, "PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", ""))
    engine = SparkEngine(master="local[1]")
    with pytest.raises(DependencyError, match="Java 17\\+, found Java 11"):
        _ = engine.session


def test_legacy_java_version_format(tmp_path: Path) -> None:
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'java version \"1.8.0_292\"' >&2\n")
    fake.chmod(0o755)
    assert java_version(str(fake)) == 8


def test_spark_errors_keep_root_cause_only() -> None:
    class Py4JJavaError(Exception):
        pass

    text = (
        "An error occurred while calling o42.parquet.\n: org.apache.spark.SparkException: Job aborted\n"
        "\tat org.apache.Foo(Foo.scala:1)\nCaused by: java.io.FileNotFoundException: /x/y.parquet (denied)\n"
        "\tat java.io.FileInputStream.open0(Native Method)\n"
    )
    with pytest.raises(EngineError) as info, spark_errors("reading /x"):
        raise Py4JJavaError(text)
    assert str(info.value) == "Spark failed while reading /x: java.io.FileNotFoundException: /x/y.parquet (denied)"
    with pytest.raises(KeyError), spark_errors("anything"):
        raise KeyError("not a Spark error: passes through")


def test_local_threads_default_to_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSCALE_THREADS", "1")
    assert get_engine("local").threads == 1
    assert get_engine("local", threads=2).threads == 2  # an explicit flag wins
    monkeypatch.setenv("MLSCALE_THREADS", "0")
    assert get_engine("local").threads == (os.cpu_count() or 1)


def test_spark_without_pyspark_says_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    # Fault injected: this machine has pyspark, so hide it.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a))
    with pytest.raises(ConfigError) as info:
        get_engine("spark", master="local[2]")
    assert info.value.hint == "install it with `pip install 'mlscale[spark]'` (and Java 17+)"
