"""The dataset catalogue: the real public data sets mlscale's applications use.

Each entry is data: one TOML file per data set in this folder (see
:mod:`mlscale.data.catalogue.load` for the fields), checked when loaded and
turned into a :class:`Dataset` that says where the data comes from (official
source, licence, citation), which files make it up (relative path, size,
sha256) and how to read them. Files live in ``<data dir>/<name>/``, where the
data dir is ``$MLSCALE_DATA_DIR`` (default ``~/.cache/mlscale/data``).

- :meth:`Dataset.verify` checks every file's size and checksum;
- :meth:`Dataset.require` fails with instructions when files are missing;
- :func:`fetch` downloads the official archives and rebuilds the files
  (see :mod:`mlscale.data.catalogue.fetch`; ``MLSCALE_MIRROR`` points it elsewhere);
- :meth:`Dataset.read_interactions`, :meth:`Dataset.read_images` and
  :meth:`Dataset.read_table` read the data as typed Arrow tables (or NumPy
  arrays for images).

Some local files are not byte-identical to the official download (line
endings, a gzip re-compression, a prefix of a larger file). Each such file's
:class:`Origin` declares the small transform that rebuilds it, and gzip/zip
files are compared on their decompressed content (``content_sha256``), since
compressed bytes are not reproducible.

>>> ds = get_dataset("movielens-100k")
>>> ds.kind, ds.interactions.file, ds.file("u.data").size
('interactions', 'u.data', 1979173)
>>> sorted(DATASETS)[:3]
['amazon-musical-instruments-5core', 'dga-domains-wang2021', 'fashion-mnist']
"""

from mlscale.data.catalogue.fetch import DEFAULT_TIMEOUT, MIRROR_ENV, fetch, fetch_dataset, mirror_url
from mlscale.data.catalogue.load import DATASETS, get_dataset, load_catalogue, load_entry
from mlscale.data.catalogue.model import (
    DataFile,
    Dataset,
    Download,
    FileCheck,
    FileStatus,
    ImageSplits,
    InteractionSource,
    Kind,
    Origin,
    VerifyReport,
)

__all__ = [
    "DATASETS",
    "DEFAULT_TIMEOUT",
    "MIRROR_ENV",
    "DataFile",
    "Dataset",
    "Download",
    "FileCheck",
    "FileStatus",
    "ImageSplits",
    "InteractionSource",
    "Kind",
    "Origin",
    "VerifyReport",
    "fetch",
    "fetch_dataset",
    "get_dataset",
    "load_catalogue",
    "load_entry",
    "mirror_url",
]
