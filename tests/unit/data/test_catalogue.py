"""The dataset catalogue against the real shared data: checksums, readers, errors, CLI."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mlscale.cli import main
from mlscale.data.catalogue import DATASETS, FileStatus, get_dataset
from mlscale.errors import DataError, DatasetNotFoundError

KINDS = {"interactions", "images", "flows", "dns", "records"}
# kddcup99 (75 MB of CSV) is read once, in test_kddcup_labels.
TABLE_FILES = [
    (ds.name, f.path) for ds in DATASETS.values() for f in ds.files if f.reader is not None and ds.name != "kddcup99"
]


def _readme_table(shared_data: Path) -> dict[str, tuple[int, str]]:
    text = (shared_data / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| (\d+) \| [^|]* \| `([0-9a-f]{64})` \|$", text, re.MULTILINE)
    return {path: (int(size), sha) for path, size, sha in rows}


def _link_copy(shared_data: Path, name: str, target: Path) -> Path:
    """A data dir whose ``name`` folder links every file of the shared (read-only) one."""
    source = shared_data / name
    for path in source.rglob("*"):
        if path.is_file():
            link = target / name / path.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path)
    return target


# --------------------------------------------------------------------------- entries


def test_catalogue_lists_the_application_data_sets() -> None:
    assert set(DATASETS) == {
        "movielens-100k", "movielens-latest-small", "movielens-1m-partial", "lastfm-hetrec2011-2k",
        "amazon-musical-instruments-5core", "fashion-mnist", "stratosphere-zeek-labeled", "slips-samples",
        "unsw-nb15", "kddcup99", "dga-domains-wang2021",
    }  # fmt: skip


@pytest.mark.parametrize("name", list(DATASETS))
def test_entry_is_complete(name: str) -> None:
    ds = DATASETS[name]
    assert ds.name == name
    assert ds.kind in KINDS
    assert ds.url.startswith("https://")
    assert ds.title
    assert ds.licence
    assert ds.citation
    assert len({f.path for f in ds.files}) == len(ds.files)
    for f in ds.files:
        assert re.fullmatch(r"[0-9a-f]{64}", f.sha256), f.path
        if f.compression != "none":
            assert f.content_sha256 is not None, f"{f.path}: compressed files need a content checksum"
        if f.origin is not None:
            assert f.origin.download.url.startswith("https://"), f.path
        else:
            assert f.note or ds.manual or not f.required, f"{f.path}: say how to get it"
    if ds.kind == "interactions":
        src = ds.interactions
        assert src is not None
        assert src.file in {f.path for f in ds.files}
        assert {src.user, src.item} <= set(src.columns)


def test_catalogue_matches_the_shared_readme(shared_data: Path) -> None:
    table = _readme_table(shared_data)
    catalogued = {f"{ds.name}/{f.path}": (f.size, f.sha256) for ds in DATASETS.values() for f in ds.files}
    assert catalogued == table


def test_get_dataset_suggests_the_closest_name() -> None:
    with pytest.raises(DatasetNotFoundError, match="unknown data set 'movielens-1m'") as info:
        get_dataset("movielens-1m")
    message = str(info.value)
    assert "movielens-100k" in message
    assert "kddcup99" in message
    assert "did you mean 'movielens-1m-partial'?" in message


# --------------------------------------------------------------------------- verify / require


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_entry_verifies_on_the_shared_data(shared_data: Path, name: str) -> None:
    report = DATASETS[name].verify(shared_data)
    assert report.ok, str(report)
    assert all(check.status is FileStatus.OK for check in report.checks)


def test_verify_reports_each_kind_of_damage(shared_data: Path, tmp_path: Path) -> None:
    name = "dga-domains-wang2021"
    root = tmp_path / name
    shutil.copytree(shared_data / name, root)
    for path in root.iterdir():
        path.chmod(0o644)
    (root / "LICENSE").unlink()
    (root / "README.upstream.md").write_text("changed\n")
    readme = shared_data / name / "README.upstream.md"
    assert (root / "README.upstream.md").stat().st_size != readme.stat().st_size
    report = DATASETS[name].verify(tmp_path)
    status = {c.file.path: c.status for c in report.checks}
    assert status == {
        "LICENSE": FileStatus.MISSING,
        "README.upstream.md": FileStatus.SIZE_MISMATCH,
        "domains_features.csv.gz": FileStatus.OK,
    }
    assert not report.ok
    assert [c.file.path for c in report.failed] == ["LICENSE", "README.upstream.md"]
    assert "size 8 bytes, expected 2,099" in str(report)


def test_same_size_different_bytes_is_a_sha256_mismatch(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "dga-domains-wang2021"
    shutil.copytree(shared_data / "dga-domains-wang2021", root)
    licence = root / "LICENSE"
    licence.chmod(0o644)
    data = bytearray(licence.read_bytes())
    data[0] ^= 0x20
    licence.write_bytes(bytes(data))
    check = next(c for c in DATASETS["dga-domains-wang2021"].verify(tmp_path).checks if c.file.path == "LICENSE")
    assert check.status is FileStatus.SHA256_MISMATCH
    assert check.actual_sha256 is not None
    assert check.actual_sha256 in check.describe()
    assert check.file.sha256 in check.describe()


def test_recompressed_gzip_passes_on_content(shared_data: Path, tmp_path: Path) -> None:
    name = "dga-domains-wang2021"
    _link_copy(shared_data, name, tmp_path)
    target = tmp_path / name / "domains_features.csv.gz"
    content = gzip.decompress((shared_data / name / "domains_features.csv.gz").read_bytes())
    target.unlink()
    target.write_bytes(gzip.compress(content, compresslevel=1))
    check = next(c for c in DATASETS[name].verify(tmp_path).checks if c.file.path == target.name)
    assert check.status is FileStatus.OK
    assert "decompressed content matches" in check.describe()
    # ...but not when the content differs.
    target.write_bytes(gzip.compress(content.replace(b"google", b"goog1e", 1), compresslevel=1))
    check = next(c for c in DATASETS[name].verify(tmp_path).checks if c.file.path == target.name)
    assert check.status is FileStatus.SHA256_MISMATCH
    assert "decompressed content sha256" in check.detail


def test_optional_file_may_be_absent(shared_data: Path, tmp_path: Path) -> None:
    _link_copy(shared_data, "fashion-mnist", tmp_path)
    (tmp_path / "fashion-mnist" / "COPYRIGHT.debian").unlink()
    report = DATASETS["fashion-mnist"].verify(tmp_path)
    assert report.ok
    assert "missing  COPYRIGHT.debian (optional)" in str(report)


def test_require_says_where_to_put_which_files(tmp_path: Path) -> None:
    ds = get_dataset("movielens-latest-small")
    with pytest.raises(DatasetNotFoundError) as info:
        ds.require(tmp_path)
    message = str(info.value)
    assert f"not in {tmp_path / 'movielens-latest-small'}" in message
    assert "ratings.csv" in message
    assert "links.csv" in message
    assert "`mlscale data fetch movielens-latest-small`" in message
    assert "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip" in message


def test_require_explains_manual_download_when_there_is_none(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        get_dataset("unsw-nb15").require(tmp_path)
    message = str(info.value)
    assert "UNSW_NB15_training-set.csv.gz" in message
    assert "mlscale data fetch" not in message
    assert "research.unsw.edu.au" in message


# --------------------------------------------------------------------------- readers


@pytest.mark.parametrize(
    ("name", "rows", "users", "items", "id_type"),
    [
        ("movielens-100k", 100_000, 943, 1_682, pa.int64()),
        ("movielens-latest-small", 100_836, 610, 9_724, pa.int64()),
        ("movielens-1m-partial", 487_650, 2_999, 3_615, pa.int64()),
        ("lastfm-hetrec2011-2k", 92_834, 1_892, 17_632, pa.int64()),
        ("amazon-musical-instruments-5core", 10_261, 1_429, 900, pa.string()),
    ],
)
def test_read_interactions_documented_counts(
    shared_data: Path, name: str, rows: int, users: int, items: int, id_type: pa.DataType
) -> None:
    table = get_dataset(name).read_interactions(shared_data)
    assert table.schema == pa.schema(
        [("user", id_type), ("item", id_type), ("rating", pa.float32()), ("timestamp", pa.int64())]
    )
    assert table.num_rows == rows
    assert len(table.column("user").unique()) == users
    assert len(table.column("item").unique()) == items


def test_lastfm_weight_is_the_rating_and_there_is_no_time(shared_data: Path) -> None:
    table = get_dataset("lastfm-hetrec2011-2k").read_interactions(shared_data)
    assert table.slice(0, 1).to_pylist() == [{"user": 2, "item": 51, "rating": 13883.0, "timestamp": None}]
    assert table.column("timestamp").null_count == table.num_rows


def test_latest_small_half_star_ratings(shared_data: Path) -> None:
    ratings = get_dataset("movielens-latest-small").read_interactions(shared_data).column("rating")
    assert set(ratings.unique().to_pylist()) == {x / 2 for x in range(1, 11)}


def test_read_interactions_of_a_non_interaction_set(shared_data: Path) -> None:
    with pytest.raises(DataError, match="holds no user-item interactions"):
        get_dataset("kddcup99").read_interactions(shared_data)


@pytest.mark.parametrize("split", ["train", "test"])
def test_fashion_mnist_images(shared_data: Path, split: str) -> None:
    images, labels = get_dataset("fashion-mnist").read_images(shared_data, split)  # type: ignore[arg-type]
    n = 60_000 if split == "train" else 10_000
    assert images.shape == (n, 28, 28)
    assert images.dtype == np.uint8
    assert labels.shape == (n,)
    assert np.bincount(labels, minlength=10).tolist() == [n // 10] * 10


@pytest.mark.parametrize(("name", "path"), TABLE_FILES, ids=[f"{n}/{p}" for n, p in TABLE_FILES])
def test_read_table_row_counts(shared_data: Path, name: str, path: str) -> None:
    ds = get_dataset(name)
    table = ds.read_table(shared_data, path)
    assert table.num_rows == ds.file(path).rows
    assert table.num_columns > 0


@pytest.mark.parametrize(
    ("name", "path", "column", "counts"),
    [
        ("unsw-nb15", "UNSW_NB15_training-set.csv.gz", "label", {1: 45_332, 0: 37_000}),
        ("dga-domains-wang2021", "domains_features.csv.gz", "class", {"dga": 49_523, "legit": 42_076}),
        (
            "stratosphere-zeek-labeled",
            "012-zeek-mixed/data/conn.log.labeled",
            "label",
            {"Malicious": 3_028, "Benign": 782, "Background": 930},
        ),
    ],
)
def test_documented_label_counts(
    shared_data: Path, name: str, path: str, column: str, counts: dict[object, int]
) -> None:
    table = get_dataset(name).read_table(shared_data, path)
    found = {v["values"]: v["counts"] for v in table.column(column).value_counts().to_pylist()}
    assert found == counts


@pytest.mark.slow
def test_kddcup_labels(shared_data: Path) -> None:
    table = get_dataset("kddcup99").read_table(shared_data, "kddcup.data_10_percent.gz")
    assert table.num_rows == 494_021
    assert table.num_columns == 42
    found = {v["values"]: v["counts"] for v in table.column("label").value_counts().to_pylist()}
    assert (found["normal."], found["smurf."], found["neptune."]) == (97_278, 280_790, 107_201)


def test_read_table_refuses_documents_and_unknown_files(shared_data: Path) -> None:
    ds = get_dataset("slips-samples")
    with pytest.raises(DataError, match="not a table .*binary nfcapd") as info:
        ds.read_table(shared_data, "test1-malicious.nfcapd")
    assert "test1-malicious.nfdump.csv" in str(info.value)
    with pytest.raises(DataError, match="did you mean 'test2-malicious.binetflow'"):
        ds.read_table(shared_data, "test2-malicous.binetflow")


def test_read_table_on_missing_file_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="missing test1-malicious.nfdump.csv") as info:
        get_dataset("slips-samples").read_table(tmp_path, "test1-malicious.nfdump.csv")
    assert "nfdump -r test1-malicious.nfcapd -o csv" in str(info.value)


# --------------------------------------------------------------------------- command line


def test_cli_list(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list", "--data-dir", str(shared_data)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line and line.split()[0] in DATASETS}
    assert set(lines) == set(DATASETS)
    assert lines["movielens-100k"][1:3] == ["interactions", "21/21"]
    assert "GPL-2.0" in lines["slips-samples"]


def test_cli_list_empty_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    assert "0/17" in capsys.readouterr().out


def test_cli_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "movielens-1m-partial", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in out
    assert "first 487,650 lines" in out
    assert "Harper" in out
    assert "content sha256 1273c4ed" in out
    assert main(["data", "info", "unsw-nb15"]) == 0
    assert "no official download reproduces this file" in capsys.readouterr().out


def test_cli_verify(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "verify", "kddcup99", "--data-dir", str(shared_data)]) == 0
    assert "1/1 files ok" in capsys.readouterr().out
    _link_copy(shared_data, "movielens-100k", tmp_path)
    (tmp_path / "movielens-100k" / "u.item").unlink()
    assert main(["data", "verify", "movielens-100k", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "1 of 21 files failed: u.item" in out
    assert "mlscale data fetch movielens-100k" in out


def test_cli_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "verify", "fashion"]) == DatasetNotFoundError.exit_code
    assert "did you mean 'fashion-mnist'?" in capsys.readouterr().err
