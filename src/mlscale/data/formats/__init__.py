"""Readers for the non-interaction file formats of the catalogue's data sets.

- :func:`read_idx`: IDX arrays (Fashion-MNIST images and labels);
- :func:`read_zeek` / :func:`iter_zeek_batches`: Zeek logs, TSV or JSON lines;
- :func:`read_nfdump_csv`: ``nfdump -o csv`` flow exports;
- :func:`read_binetflow`: Argus ``.binetflow`` flow CSV;
- :func:`read_delimited` / :class:`Delimited`: CSV, TSV, ``|`` and ``::`` text;
- :func:`read_json_lines`: JSON-lines records.

All of them read plain or gzip-compressed files, return typed Arrow data (or a
NumPy array for IDX) and raise :class:`~mlscale.errors.DataFormatError` naming
the file, and the line where it can be known, for malformed input.
"""

from mlscale.data.formats.argus import read_binetflow
from mlscale.data.formats.delimited import Delimited, read_delimited
from mlscale.data.formats.idx import read_idx
from mlscale.data.formats.jsonl import read_json_lines
from mlscale.data.formats.nfdump import read_nfdump_csv
from mlscale.data.formats.zeek import ZeekHeader, ZeekLog, iter_zeek_batches, read_zeek

__all__ = [
    "Delimited",
    "ZeekHeader",
    "ZeekLog",
    "iter_zeek_batches",
    "read_binetflow",
    "read_delimited",
    "read_idx",
    "read_json_lines",
    "read_nfdump_csv",
    "read_zeek",
]
