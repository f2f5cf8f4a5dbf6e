"""The data stage: catalogue, readers, byte streams, file formats and atomic writers.

It names no application. Interaction logs are streamed as Arrow record batches
of one schema (``user, item, rating, timestamp``; see
:mod:`mlscale.data.readers`); network logs and the catalogue's other files are
read by :mod:`mlscale.data.formats`; every file is opened (plain, gzip or a
one-file zip) by :func:`~mlscale.data.streams.open_binary` and every output is
written atomically by :mod:`mlscale.data.writers`.
"""

from mlscale.data.ingest import DEFAULT_MEMORY_BUDGET, IngestSummary, ingest_parquet, parse_size
from mlscale.data.readers import BadRow, InteractionReader, TextFormat, interaction_schema, sniff_format
from mlscale.data.sources import InteractionStream, open_interactions
from mlscale.data.streams import open_binary
from mlscale.data.writers import PartWriter, write_csv, write_parquet

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "BadRow",
    "IngestSummary",
    "InteractionReader",
    "InteractionStream",
    "PartWriter",
    "TextFormat",
    "ingest_parquet",
    "interaction_schema",
    "open_binary",
    "open_interactions",
    "parse_size",
    "sniff_format",
    "write_csv",
    "write_parquet",
]
