"""Catalogue entries as data: every shipped TOML file loads, and a bad one is refused naming file and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlscale.data.catalogue import DATASETS, load_catalogue, load_entry
from mlscale.data.catalogue.load import ENTRIES
from mlscale.data.formats.delimited import Delimited
from mlscale.data.formats.zeek import read_zeek
from mlscale.errors import DataFormatError

GOOD = """
name = "tiny"
title = "Tiny"
kind = "interactions"
url = "https://example.org/tiny.zip"
homepage = "https://example.org/"
licence = "CC0"
licence_note = "public domain"
citation = "nobody"
summary = "two files"

[downloads.tiny]
url = "https://example.org/tiny.zip"
size = 10

[interactions]
file = "r.tsv"
sep = "\\t"
columns = ["u", "i"]
user = "u"
item = "i"

[[files]]
path = "r.tsv"
size = 4
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
origin = { download = "tiny", member = "tiny/r.tsv" }
reader = { format = "delimited", sep = "\\t", header = false, columns = ["u", "i"], types = { u = "string" } }

[[files]]
path = "conn.log"
size = 4
sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
origin = { url = "https://example.org/conn.log", head_lines = 3 }
reader = { format = "zeek" }
required = false
"""


def _write(tmp_path: Path, text: str, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_every_shipped_entry_loads_in_the_index_order() -> None:
    assert list(DATASETS)[:2] == ["movielens-100k", "movielens-latest-small"]
    assert sorted(p.stem for p in ENTRIES.glob("*.toml") if p.name != "index.toml") == sorted(DATASETS)
    assert load_catalogue(ENTRIES) == DATASETS


def test_an_entry_becomes_typed_declarations(tmp_path: Path) -> None:
    ds = load_entry(_write(tmp_path, GOOD))
    first, second = ds.files
    assert first.origin is not None
    assert (first.origin.download.url, first.origin.download.size, first.origin.member) == (
        "https://example.org/tiny.zip",
        10,
        "tiny/r.tsv",
    )
    assert first.reader == Delimited(sep="\t", header=False, columns=("u", "i"), types=(("u", "string"),))
    assert second.reader is read_zeek
    assert second.origin is not None
    assert second.origin.head_lines == 3
    assert not second.required
    assert ds.interactions is not None
    assert (ds.interactions.sep, ds.interactions.header) == ("\t", False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('size = 4\nsha256 = "0000', 'size = "4"\nsha256 = "0000'),
            r"files\[0\]\.size: expected a whole number, got a string '4'",
        ),
        (("size = 4\n", "sise = 4\n"), r"files\[0\]\.size: missing \(expected a whole number\)"),
        (
            ('licence = "CC0"', 'licence = "CC0"\nlicense = "CC0"'),
            "unknown key 'license' \\(did you mean 'licence'\\?\\)",
        ),
        (('sha256 = "1111', 'sha256 = "ABCD'), r"files\[1\]\.sha256: expected 64 lower-case hex digits"),
        (
            ('download = "tiny", member', 'download = "tinny", member'),
            r"files\[0\]\.origin\.download: no \[downloads\.tinny\]",
        ),
        (('{ url = "https://example.org/conn.log", ', "{ "), "files\\[1\\]\\.origin\\.download: expected exactly one"),
        (('format = "zeek"', 'format = "zeke"'), r"files\[1\]\.reader\.format: unknown reader 'zeke'"),
        (('kind = "interactions"', 'kind = "ratings"'), "kind: expected one of interactions, images"),
        (('name = "tiny"', 'name = "small"'), "name: expected 'tiny' \\(the file's name\\), got 'small'"),
        (('file = "r.tsv"', 'file = "ratings.tsv"'), "interactions: names 'ratings.tsv', which is not one of the"),
        (("required = false", "required = 0"), r"files\[1\]\.required: expected true or false, got a number 0"),
        (('summary = "two files"', 'summary = "two files'), "not valid TOML .*line 10"),
    ],
)
def test_a_bad_entry_names_the_file_and_the_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(DataFormatError, match=message) as info:
        load_entry(path)
    assert str(info.value).startswith(f"{path}: ")


def test_the_index_and_the_entry_files_must_agree(tmp_path: Path) -> None:
    folder = tmp_path / "catalogue"
    folder.mkdir()
    _write(folder, GOOD)
    (folder / "index.toml").write_text('entries = ["tiny", "other"]\n')
    with pytest.raises(DataFormatError, match="index.toml: entries: lists 'other', but there is no other.toml"):
        load_catalogue(folder)
    (folder / "index.toml").write_text("entries = []\n")
    with pytest.raises(DataFormatError, match="does not list tiny.toml"):
        load_catalogue(folder)
    (folder / "index.toml").write_text('entries = ["tiny"]\n')
    assert list(load_catalogue(folder)) == ["tiny"]


def test_a_shipped_entry_copied_elsewhere_loads_the_same(tmp_path: Path) -> None:
    shutil.copy(ENTRIES / "slips-samples.toml", tmp_path)
    assert load_entry(tmp_path / "slips-samples.toml") == DATASETS["slips-samples"]
