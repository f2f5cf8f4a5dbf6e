"""The data stage: catalogue, readers, out-of-core ingest and synthetic data.

Interaction logs are streamed as Arrow record batches of one schema
(``user, item, rating, timestamp``; see :mod:`mlscale.data.readers`) and turned
into Parquet parts or a CSR :class:`InteractionMatrix` with bounded memory.
"""

from mlscale.data.ingest import IngestSummary, MatrixBuilder, ingest_matrix, ingest_parquet, parse_size
from mlscale.data.matrix import InteractionMatrix
from mlscale.data.readers import BadRow, InteractionReader, TextFormat, interaction_schema, sniff_format
from mlscale.data.sources import InteractionStream, open_interactions
from mlscale.data.synthetic import InteractionProfile, default_profile, generate, write_csv, write_parquet

__all__ = [
    "BadRow",
    "IngestSummary",
    "InteractionMatrix",
    "InteractionProfile",
    "InteractionReader",
    "InteractionStream",
    "MatrixBuilder",
    "TextFormat",
    "default_profile",
    "generate",
    "ingest_matrix",
    "ingest_parquet",
    "interaction_schema",
    "open_interactions",
    "parse_size",
    "sniff_format",
    "write_csv",
    "write_parquet",
]
