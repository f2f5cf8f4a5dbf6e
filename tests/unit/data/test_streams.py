"""Byte streams: the one opener (plain, gzip, one-file zip), separator rewriting, trailer cutting."""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlscale.data.readers import InteractionReader
from mlscale.data.streams import (
    ChunkStream,
    compression_of,
    consumed_bytes,
    open_binary,
    replace_separator,
    stop_at_line,
)
from mlscale.errors import DataError, DataFormatError


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    return iter([data[i : i + size] for i in range(0, len(data), size)])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_replace_separator_matches_whole_stream_replace(size: int) -> None:
    data = b"1::1193::5::978300760\n2:::3::::4\n:x::\n::"
    assert b"".join(replace_separator(_chunks(data, size), b"::", b"\t")) == data.replace(b"::", b"\t")


def test_replace_separator_rejects_mixed_separator() -> None:
    with pytest.raises(ValueError, match="one byte repeated"):
        list(replace_separator(iter([b"a"]), b":;", b"\t"))


@pytest.mark.parametrize("size", [1, 3, 8, 4096])
def test_stop_at_line_drops_the_trailer(size: int) -> None:
    data = b"ts,te\n1,2\n3,4\nSummary\nflows,bytes\n2,10\n"
    assert b"".join(stop_at_line(_chunks(data, size), b"Summary")) == b"ts,te\n1,2\n3,4\n"


@pytest.mark.parametrize("size", [1, 4, 100])
def test_stop_at_line_without_marker_keeps_everything(size: int) -> None:
    data = b"a\nSummaryX\nb\n"
    assert b"".join(stop_at_line(_chunks(data, size), b"Summary")) == data


def test_stop_at_line_marker_at_end_without_newline() -> None:
    assert b"".join(stop_at_line(iter([b"a\nb\nSummary"]), b"Summary")) == b"a\nb\n"


def test_chunk_stream_reads_in_any_sizes() -> None:
    stream = io.BufferedReader(ChunkStream(iter([b"ab", b"", b"cde", b"f"])), buffer_size=2)
    assert stream.read(1) == b"a"
    assert stream.read() == b"bcdef"


def test_open_binary_detects_compression(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_bytes(b"hello\n")
    (tmp_path / "packed.bin").write_bytes(gzip.compress(b"hello\n"))
    with zipfile.ZipFile(tmp_path / "one.zip", "w") as archive:
        archive.writestr("inner/hello.txt", b"hello\n")
    for name in ("plain.txt", "packed.bin", "one.zip"):
        with open_binary(tmp_path / name) as stream:
            assert stream.read() == b"hello\n"


def test_open_binary_refuses_zip_with_two_files(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.csv", b"1\n")
        archive.writestr("b.csv", b"2\n")
    with pytest.raises(DataFormatError, match="exactly one file, found 2: a.csv, b.csv"):
        open_binary(tmp_path / "two.zip")


def test_compression_and_consumed_bytes_follow_the_file_on_disk(tmp_path: Path) -> None:
    data = b"".join(b"%d\t%d\n" % (i, i % 7) for i in range(50_000))
    (tmp_path / "plain.tsv").write_bytes(data)
    (tmp_path / "log.tsv").write_bytes(gzip.compress(data))
    with zipfile.ZipFile(tmp_path / "log.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("log.tsv", data)
    assert [compression_of(tmp_path / n) for n in ("plain.tsv", "log.tsv", "log.zip")] == [None, "gzip", "zip"]
    for name in ("plain.tsv", "log.tsv", "log.zip"):
        size = (tmp_path / name).stat().st_size
        with open_binary(tmp_path / name) as stream:
            assert stream.read(10) == data[:10]
            assert consumed_bytes(stream) <= size
            assert stream.read() == data[10:]
            # The position is in the file on disk: at most its size, and all of it for plain text.
            assert 0 < consumed_bytes(stream) <= size
            if name == "plain.tsv":
                assert consumed_bytes(stream) == size


def test_open_binary_names_a_missing_file_or_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        open_binary(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="is a folder"):
        open_binary(tmp_path)


def test_interaction_reader_reads_a_one_file_zip_through_the_opener(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "ratings.zip", "w") as archive:
        archive.writestr("ratings.csv", "userId,movieId,rating\n1,10,4.5\n2,10,3.0\n")
    reader = InteractionReader(tmp_path / "ratings.zip")
    assert reader.format.compression == "zip"
    assert reader.read_all().column("user").to_pylist() == [1, 2]
