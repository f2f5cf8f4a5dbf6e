"""``mlscale models list | show | promote | rm`` through the real command line entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mlscale.cli import main
from mlscale.registry import FileStore, Manifest

Publish = Callable[..., Manifest]  # the ``publish`` fixture of conftest.py


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_list_empty_registry_is_friendly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "nothing"
    status, out, err = _run(capsys, "models", "list", "--registry", str(root))
    assert (status, out, err) == (0, f"no models in {root}\n", "")
    assert not root.exists()  # looking does not create folders
    status, out, _ = _run(capsys, "models", "list", "--json", "--registry", str(root))
    assert (status, json.loads(out)) == (0, [])


def test_list_table_and_json(store: FileStore, publish: Publish, capsys: pytest.CaptureFixture[str]) -> None:
    publish(seed=0)
    publish(seed=1)
    publish(name="tiny", arrays={}, tables={}, metrics={})
    store.promote("recommend/ml100k@1", "production")
    status, out, _ = _run(capsys, "models", "list", "--registry", str(store.root))
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["APP/NAME", "VERSION", "ALIASES", "ENGINE", "CREATED", "METRICS"]
    assert lines[1].split()[:4] == ["recommend/ml100k", "1", "production", "local"]
    assert lines[1].split()[5:] == ["ndcg@10=0.3", "precision@10=0.2", "recall@10=0.25"]  # first 3 only
    assert lines[2].split()[:3] == ["recommend/ml100k", "2", "latest"]
    assert lines[3].split()[:3] == ["recommend/tiny", "1", "latest"]
    assert lines[3].split()[-1] == "-"
    assert len(lines) == 4

    status, out, _ = _run(capsys, "models", "list", "recommend", "--json", "--registry", str(store.root))
    rows = json.loads(out)
    assert [(r["name"], r["version"], r["aliases"]) for r in rows] == [
        ("ml100k", 1, ["production"]),
        ("ml100k", 2, ["latest"]),
        ("tiny", 1, ["latest"]),
    ]
    assert rows[0]["files"].keys() == {"item_ids.npy", "items.parquet", "user_factors.npy"}

    status, out, _ = _run(capsys, "models", "list", "other", "--registry", str(store.root))
    assert (status, out) == (0, f"no models of app 'other' in {store.root}\n")


def test_show(store: FileStore, publish: Publish, capsys: pytest.CaptureFixture[str]) -> None:
    publish()
    publish(seed=1)
    store.promote("recommend/ml100k@1", "production")
    status, out, err = _run(capsys, "models", "show", "recommend/ml100k@production", "--registry", str(store.root))
    assert status == 0
    doc = json.loads(out)
    assert doc["ref"] == "recommend/ml100k@1"
    assert doc["version"] == 1
    assert doc["aliases"] == {"latest": 2, "production": 1}
    assert doc["params"]["seed"] == 0
    assert doc["path"] == str(store.root / "recommend" / "ml100k" / "1")
    assert err == ""
    status, out, err = _run(capsys, "models", "show", "recommend/ml100k", "--verify", "--registry", str(store.root))
    assert (status, json.loads(out)["version"]) == (0, 2)
    assert "verified: 3 file(s)" in err


def test_show_verify_reports_tampering(store: FileStore, publish: Publish, capsys: pytest.CaptureFixture[str]) -> None:
    publish()
    path = store.root / "recommend" / "ml100k" / "1" / "item_ids.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    status, out, err = _run(capsys, "models", "show", "recommend/ml100k", "--registry", str(store.root))
    assert status == 0  # without --verify only the manifest is read
    status, out, err = _run(capsys, "models", "show", "recommend/ml100k", "--verify", "--registry", str(store.root))
    assert status == 65
    assert out == ""
    assert err.startswith(f"mlscale: error: {path}: checksum mismatch")


def test_promote(store: FileStore, publish: Publish, capsys: pytest.CaptureFixture[str]) -> None:
    publish()
    publish(seed=1)
    status, out, _ = _run(capsys, "models", "promote", "recommend/ml100k@1", "--registry", str(store.root))
    assert (status, out) == (0, "recommend/ml100k@production -> version 1\n")
    status, out, _ = _run(capsys, "models", "promote", "recommend/ml100k", "--registry", str(store.root))
    assert (status, out) == (0, "recommend/ml100k@production -> version 2 (was version 1)\n")
    status, out, _ = _run(
        capsys, "models", "promote", "recommend/ml100k@1", "--alias", "staging", "--registry", str(store.root)
    )
    assert status == 0
    assert store.aliases("recommend", "ml100k") == {"latest": 2, "production": 2, "staging": 1}
    status, out, err = _run(
        capsys, "models", "promote", "recommend/ml100k", "--alias", "latest", "--registry", str(store.root)
    )
    assert status == 73
    assert "alias 'latest' always means the highest version" in err


def test_rm(store: FileStore, publish: Publish, capsys: pytest.CaptureFixture[str]) -> None:
    for seed in range(3):
        publish(seed=seed)
    store.promote("recommend/ml100k@2", "production")
    root = str(store.root)
    status, out, _ = _run(capsys, "models", "rm", "recommend/ml100k@3", "--registry", root)
    assert (status, out) == (0, "removed recommend/ml100k@3\nrecommend/ml100k@latest is now version 2\n")
    status, out, err = _run(capsys, "models", "rm", "recommend/ml100k@2", "--registry", root)
    assert status == 73
    assert "alias(es) production point to it" in err
    assert "--force" in err
    status, out, _ = _run(capsys, "models", "rm", "recommend/ml100k@2", "--force", "--registry", root)
    assert status == 0
    assert store.aliases("recommend", "ml100k") == {"latest": 1}
    status, out, err = _run(capsys, "models", "rm", "recommend/ml100k", "--registry", root)
    assert status == 73
    assert "--all" in err
    status, out, _ = _run(capsys, "models", "rm", "recommend/ml100k", "--all", "--registry", root)
    assert (status, out) == (0, "removed recommend/ml100k (versions: 1)\n")
    status, out, _ = _run(capsys, "models", "list", "--registry", root)
    assert out == f"no models in {root}\n"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["models", "show", "recommend/missing"], 66, "no model recommend/missing"),
        (["models", "show", "recommend/ml100k@9"], 66, "has no version 9; versions: 1"),
        (["models", "show", "../etc/passwd"], 73, "invalid model reference"),
        (["models", "show", "Recommend/ml100k"], 73, "invalid app name 'Recommend'"),
        (["models", "promote", "recommend/ml100k", "--alias", "7"], 73, "cannot be all digits"),
        (["models", "rm", "recommend/ml100k@production"], 66, "no alias 'production'"),
    ],
)
def test_errors_are_one_clear_line(
    publish: Publish,
    store: FileStore,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    message: str,
) -> None:
    publish(arrays={"x": np.zeros(2)}, tables={})
    status, out, err = _run(capsys, *argv, "--registry", str(store.root))
    assert status == code
    assert out == ""
    assert err.startswith("mlscale: error: ")
    assert message in err
    assert "Traceback" not in err


def test_registry_defaults_to_environment(
    store: FileStore, publish: Publish, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    publish()
    monkeypatch.setenv("MLSCALE_REGISTRY", str(store.root))
    status, out, _ = _run(capsys, "models", "show", "recommend/ml100k")
    assert (status, json.loads(out)["ref"]) == (0, "recommend/ml100k@1")


def test_the_registry_flag_and_setting_keep_a_uri_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # pathlib would make s3://bucket/team of s3:/bucket/team; the flag and the setting stay strings.
    import argparse

    from mlscale.apps.args import add_registry_arg, registry_root

    parser = argparse.ArgumentParser()
    add_registry_arg(parser)
    assert registry_root(parser.parse_args(["--registry", "s3://bucket/team"])) == "s3://bucket/team"
    monkeypatch.setenv("MLSCALE_REGISTRY", "s3://bucket/team")
    assert registry_root(parser.parse_args([])) == "s3://bucket/team"
