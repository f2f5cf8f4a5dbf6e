"""Readers for the file formats of the catalogue's data sets and of network logs.

- :func:`read_idx`: IDX arrays (Fashion-MNIST images and labels);
- :func:`read_zeek` / :func:`iter_zeek_batches` / :class:`ZeekLog`: Zeek logs, TSV or JSON lines;
- :func:`read_nfdump_csv` / :func:`iter_nfdump_csv`: ``nfdump -o csv`` flow exports, whole or
  streamed; :func:`iter_nfcapd`: nfdump's binary captures through the ``nfdump`` tool;
- :func:`read_binetflow`: Argus ``.binetflow`` flow CSV;
- :func:`iter_tshark_fields`: ``tshark -T fields`` CSV exports, streamed;
- :func:`sniff_log`: which of those network log formats a file holds, from its first bytes;
- :func:`read_delimited` / :class:`Delimited`: CSV, TSV, ``|`` and ``::`` text;
- :func:`read_json_lines`: JSON-lines records.

All of them open files with :func:`mlscale.data.streams.open_binary` (plain,
gzip or one-file zip), return typed Arrow data (or a NumPy array for IDX) and
raise :class:`~mlscale.errors.DataFormatError` naming the file, and the line
where it can be known, for malformed input. None of them knows what an
application makes of the records.
"""

from mlscale.data.formats.argus import read_binetflow
from mlscale.data.formats.delimited import Delimited, read_delimited
from mlscale.data.formats.idx import read_idx
from mlscale.data.formats.jsonl import read_json_lines
from mlscale.data.formats.nfdump import iter_nfcapd, iter_nfdump_csv, iter_nfdump_file, read_nfdump_csv
from mlscale.data.formats.sniff import LOG_FORMATS, LogFormat, sniff_log
from mlscale.data.formats.tshark import iter_tshark_fields
from mlscale.data.formats.zeek import ZeekHeader, ZeekLog, iter_zeek_batches, read_zeek

__all__ = [
    "LOG_FORMATS",
    "Delimited",
    "LogFormat",
    "ZeekHeader",
    "ZeekLog",
    "iter_nfcapd",
    "iter_nfdump_csv",
    "iter_nfdump_file",
    "iter_tshark_fields",
    "iter_zeek_batches",
    "read_binetflow",
    "read_delimited",
    "read_idx",
    "read_json_lines",
    "read_nfdump_csv",
    "read_zeek",
    "sniff_log",
]
