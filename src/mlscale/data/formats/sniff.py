"""Which network log format a file holds, from its first bytes (never its name).

======================= =====================================================================
format                  recognised by
======================= =====================================================================
``nfcapd``              nfdump's binary capture magic (``0c a5``)
``parquet``             the ``PAR1`` magic
``zeek-conn``           a Zeek TSV header (``#fields``...) of a conn log, or JSON lines without
                        ``"query"``
``zeek-dns``            a Zeek TSV header with a ``query`` field or ``#path dns``, or JSON lines
                        with ``"query"``
``nfdump-csv``          ``nfdump -o csv`` output (a header starting ``ts,te,``)
``argus``               Argus ``.binetflow`` CSV (a header starting ``StartTime,``)
``tshark-dns``          a tshark fields CSV header with ``frame.time_epoch`` and ``dns.qry.name``
======================= =====================================================================

>>> import pathlib, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp, "x.csv")
...     _ = path.write_text("StartTime,Dur,Proto\\n")
...     sniff_log(path)
'argus'
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Literal

from mlscale.data.streams import open_binary
from mlscale.errors import DataError, DataFormatError

__all__ = ["BROKEN_STREAM", "LOG_FORMATS", "TSHARK_DNS_REQUIRED", "LogFormat", "first_line", "sniff_log"]

LogFormat = Literal["zeek-conn", "nfdump-csv", "nfcapd", "argus", "zeek-dns", "tshark-dns", "parquet"]
#: Every format :func:`sniff_log` recognises.
LOG_FORMATS: tuple[LogFormat, ...] = ("zeek-conn", "nfdump-csv", "nfcapd", "argus", "zeek-dns", "tshark-dns", "parquet")
#: The tshark fields a DNS export must have.
TSHARK_DNS_REQUIRED = ("frame.time_epoch", "dns.qry.name")
_NFCAPD_MAGIC = b"\x0c\xa5"
_PARQUET_MAGIC = b"PAR1"


#: What a cut-short or corrupt gzip stream raises while it is read.
BROKEN_STREAM: tuple[type[Exception], ...] = (EOFError, zlib.error, gzip.BadGzipFile)


def _head(path: Path, size: int = 65_536) -> bytes:
    try:
        with open_binary(path) as stream:
            return stream.read(size)
    except BROKEN_STREAM as err:
        raise DataFormatError(
            f"corrupt or truncated compressed file ({err})",
            path=str(path),
            hint="the download or copy was probably cut short: fetch the file again",
        ) from None


def sniff_log(path: Path) -> LogFormat | None:
    """The format of ``path``, or None when it is none of :data:`LOG_FORMATS`.

    An empty file raises :class:`~mlscale.errors.DataFormatError`, a missing one
    :class:`~mlscale.errors.DataError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open("rb") as raw:
        magic = raw.read(4)
    if magic.startswith(_NFCAPD_MAGIC):
        return "nfcapd"
    if magic == _PARQUET_MAGIC:
        return "parquet"
    text = _head(path).lstrip().decode("utf-8", "replace")
    first = text.splitlines()[0] if text else ""
    if not first:
        raise DataFormatError("empty file", path=str(path))
    if first.startswith(("#separator", "#fields", "#set_separator", "#path")):
        fields: list[str] = []
        log_path = ""
        for line in text.splitlines():
            if line.startswith("#fields"):
                fields = line.split("\t")[1:] if "\t" in line else line.split()[1:]
            elif line.startswith("#path"):
                log_path = line.split()[-1]
        return "zeek-dns" if "query" in fields or log_path == "dns" else "zeek-conn"
    if first.startswith("{"):
        return "zeek-dns" if '"query"' in first else "zeek-conn"
    if first.startswith("ts,te,"):
        return "nfdump-csv"
    if first.startswith("StartTime,"):
        return "argus"
    names = [n.strip().strip('"') for n in first.split(",")]
    if all(n in names for n in TSHARK_DNS_REQUIRED):
        return "tshark-dns"
    return None


def first_line(path: Path) -> str:
    """The first non-blank line of ``path`` (decompressed), for messages about an unknown layout."""
    text = _head(path).lstrip().decode("utf-8", "replace")
    return text.splitlines()[0] if text else ""
