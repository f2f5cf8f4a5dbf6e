"""``fetch`` against a real HTTP server on 127.0.0.1 serving archives built here from the shared data."""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlscale.cli import main
from mlscale.data.catalogue import DATASETS, MIRROR_ENV, FileStatus, fetch, get_dataset, mirror_url
from mlscale.errors import ConfigError, DataError, DatasetNotFoundError

GROUPLENS = "files.grouplens.org/datasets/movielens"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, folder) of an HTTP server on 127.0.0.1 serving the folder."""
    root = tmp_path / "mirror"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _put(root: Path, url: str, data: bytes) -> None:
    target = root / mirror_url(url, "x").removeprefix("x/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _latest_small_zip(shared_data: Path, *, change: bytes = b"") -> bytes:
    """The official layout: ml-latest-small/ with CRLF line ends (the shared copy has LF)."""
    members = {}
    for f in get_dataset("movielens-latest-small").files:
        data = (shared_data / "movielens-latest-small" / f.path).read_bytes()
        if change and f.path == "ratings.csv":
            data = data.replace(b"1,1,4.0,964982703", change, 1)
        members[f"ml-latest-small/{f.path}"] = data.replace(b"\n", b"\r\n")
    return _zip(members)


def _leftovers(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --------------------------------------------------------------------------- successful fetches


def test_fetch_rebuilds_crlf_files(shared_data: Path, tmp_path: Path, mirror: tuple[str, Path]) -> None:
    base, root = mirror
    _put(root, f"https://{GROUPLENS}/ml-latest-small.zip", _latest_small_zip(shared_data))
    data_dir = tmp_path / "data"
    report = fetch("movielens-latest-small", data_dir, mirror=base, progress=False)
    assert report.ok, str(report)
    for f in get_dataset("movielens-latest-small").files:
        assert (data_dir / "movielens-latest-small" / f.path).read_bytes() == (
            shared_data / "movielens-latest-small" / f.path
        ).read_bytes()
    # Our zip is not the official one: noted, but the files decide.
    assert any("differs from the recorded" in note for note in report.notes)
    assert _leftovers(data_dir) == ["movielens-latest-small"]
    table = get_dataset("movielens-latest-small").read_interactions(data_dir)
    assert table.num_rows == 100_836


def test_fetch_takes_the_first_lines_and_regzips(shared_data: Path, tmp_path: Path, mirror: tuple[str, Path]) -> None:
    base, root = mirror
    ds = get_dataset("movielens-1m-partial")
    ratings = gzip.decompress((shared_data / ds.name / "ratings.first487650.dat.gz").read_bytes())
    more = b"".join(b"3000::%d::4::970000000\n" % i for i in range(1, 50))  # the rest of the real file
    members = {f"ml-1m/{p}": (shared_data / ds.name / p).read_bytes() for p in ("README", "movies.dat", "users.dat")}
    members["ml-1m/ratings.dat"] = ratings + more
    _put(root, f"https://{GROUPLENS}/ml-1m.zip", _zip(members))
    data_dir = tmp_path / "data"
    report = fetch(ds.name, data_dir, mirror=base, progress=False)
    assert report.ok, str(report)
    check = next(c for c in report.checks if c.file.path == "ratings.first487650.dat.gz")
    assert check.status is FileStatus.OK
    assert "decompressed content matches" in check.detail
    assert ds.read_interactions(data_dir).num_rows == 487_650


def test_fetch_gunzips_into_a_zip(
    shared_data: Path, tmp_path: Path, mirror: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, root = mirror
    ds = get_dataset("amazon-musical-instruments-5core")
    with zipfile.ZipFile(shared_data / ds.name / "Musical_Instruments.json.zip") as archive:
        reviews = archive.read("Musical_Instruments.json")
    assert ds.files[0].origin is not None
    _put(root, ds.files[0].origin.download.url, gzip.compress(reviews, compresslevel=1))
    monkeypatch.setenv(MIRROR_ENV, base)  # the mirror comes from the environment here
    report = fetch(ds.name, tmp_path / "data", progress=False)
    assert report.ok, str(report)
    with zipfile.ZipFile(tmp_path / "data" / ds.name / "Musical_Instruments.json.zip") as archive:
        assert archive.namelist() == ["Musical_Instruments.json"]
    assert ds.read_interactions(tmp_path / "data").num_rows == 10_261


def test_fetch_keeps_files_no_download_makes(shared_data: Path, tmp_path: Path, mirror: tuple[str, Path]) -> None:
    base, root = mirror
    ds = get_dataset("slips-samples")
    for f in ds.files:
        if f.origin is not None:
            _put(root, f.origin.download.url, (shared_data / ds.name / f.path).read_bytes())
    data_dir = tmp_path / "data"
    # Without the hand-made nfdump CSV the fetch completes what it can and says what is left.
    report = fetch(ds.name, data_dir, mirror=base, progress=False)
    assert not report.ok
    assert [c.file.path for c in report.failed] == ["test1-malicious.nfdump.csv"]
    assert any("nfdump -r test1-malicious.nfcapd -o csv" in note for note in report.notes)
    # With it in place (made by hand), a forced re-fetch keeps it.
    (data_dir / ds.name / "test1-malicious.nfdump.csv").write_bytes(
        (shared_data / ds.name / "test1-malicious.nfdump.csv").read_bytes()
    )
    report = fetch(ds.name, data_dir, mirror=base, progress=False, force=True)
    assert report.ok, str(report)
    assert _leftovers(data_dir) == [ds.name]


def test_no_download_when_already_verified(shared_data: Path) -> None:
    # An unreachable mirror proves nothing is downloaded.
    report = fetch("kddcup99", shared_data, mirror=f"http://127.0.0.1:{_free_port()}", progress=False)
    assert report.ok


# --------------------------------------------------------------------------- failures


def test_checksum_mismatch_installs_nothing(shared_data: Path, tmp_path: Path, mirror: tuple[str, Path]) -> None:
    base, root = mirror
    url = f"https://{GROUPLENS}/ml-latest-small.zip"
    _put(root, url, _latest_small_zip(shared_data, change=b"1,1,5.0,964982703"))
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match="do not match the catalogue, nothing was installed") as info:
        fetch("movielens-latest-small", data_dir, mirror=base, progress=False)
    message = str(info.value)
    assert "ratings.csv: sha256" in message
    assert "expected 80da8b3393dae325bbba5a31f291a6ba55d8d4f4396de3c456f2c1635b1b70e8" in message
    assert _leftovers(data_dir) == []


def test_failed_refetch_leaves_the_installed_copy(shared_data: Path, tmp_path: Path, mirror: tuple[str, Path]) -> None:
    base, root = mirror
    url = f"https://{GROUPLENS}/ml-latest-small.zip"
    _put(root, url, _latest_small_zip(shared_data))
    data_dir = tmp_path / "data"
    assert fetch("movielens-latest-small", data_dir, mirror=base, progress=False).ok
    _put(root, url, b"not a zip at all")
    with pytest.raises(DataError, match="not a zip archive"):
        fetch("movielens-latest-small", data_dir, mirror=base, progress=False, force=True)
    assert get_dataset("movielens-latest-small").verify(data_dir).ok
    assert _leftovers(data_dir) == ["movielens-latest-small"]


def test_unreachable_server_fails_fast_and_says_what_to_do(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{_free_port()}"
    data_dir = tmp_path / "data"
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError) as info:
        fetch("movielens-100k", data_dir, mirror=base, progress=False)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert f"could not download {base}/{GROUPLENS}/ml-100k.zip" in message
    assert "put README, u.data, u.genre" in message
    assert str(data_dir / "movielens-100k") in message
    assert _leftovers(data_dir) == []


def test_silent_server_times_out(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts connections (in the backlog) but never answers
    try:
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(DatasetNotFoundError, match="timed out|no answer within 0.3 s"):
            fetch("kddcup99", tmp_path / "data", mirror=base, timeout=0.3, progress=False)
        assert time.monotonic() - start < 5
    finally:
        listener.close()


def test_missing_file_on_server_is_named(tmp_path: Path, mirror: tuple[str, Path]) -> None:
    base, _ = mirror
    with pytest.raises(DatasetNotFoundError, match=r"HTTP 404") as info:
        fetch("dga-domains-wang2021", tmp_path / "data", mirror=base, progress=False)
    assert "github.com/tisage/DGA-dataset/raw/" in str(info.value)


def test_git_lfs_pointer_is_recognised(shared_data: Path, tmp_path: Path, mirror: tuple[str, Path]) -> None:
    base, root = mirror
    ds = get_dataset("stratosphere-zeek-labeled")
    for f in ds.files:
        assert f.origin is not None
        data = (shared_data / ds.name / f.path).read_bytes()
        if f.path.endswith("012-zeek-mixed/data/dns.log.labeled"):
            data = b"version https://git-lfs.github.com/spec/v1\noid sha256:6ef5\nsize 2666\n"
        _put(root, f.origin.download.url, data)
    with pytest.raises(DataError, match="Git LFS pointer"):
        fetch(ds.name, tmp_path / "data", mirror=base, progress=False)
    assert _leftovers(tmp_path / "data") == []


def test_dataset_without_download_explains(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="no official download reproduces") as info:
        fetch("unsw-nb15", tmp_path / "data", progress=False)
    assert "gzip UNSW_NB15_training-set.csv" in str(info.value)


def test_bad_mirror_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected an http"):
        fetch("kddcup99", tmp_path, mirror="ftp://example.org/m", progress=False)


def test_every_fetchable_entry_has_an_origin_per_file() -> None:
    for ds in DATASETS.values():
        urls = {f.origin.download.url for f in ds.files if f.origin is not None}
        assert all(u.startswith("https://") for u in urls), ds.name


# --------------------------------------------------------------------------- command line


def test_cli_fetch(
    shared_data: Path, tmp_path: Path, mirror: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, root = mirror
    _put(root, f"https://{GROUPLENS}/ml-latest-small.zip", _latest_small_zip(shared_data))
    args = ["data", "fetch", "movielens-latest-small", "--data-dir", str(tmp_path / "d"), "--mirror", base]
    assert main(args) == 0
    assert "5/5 files ok" in capsys.readouterr().out


def test_cli_fetch_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "data",
        "fetch",
        "kddcup99",
        "--data-dir",
        str(tmp_path),
        "--mirror",
        f"http://127.0.0.1:{_free_port()}",
    ]
    assert main(args) == DatasetNotFoundError.exit_code
    err = capsys.readouterr().err
    assert err.startswith("mlscale: error: could not download http://127.0.0.1:")
    assert "kddcup.data_10_percent.gz" in err
