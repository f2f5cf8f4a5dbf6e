"""Open interaction data by what the user typed: a catalogue name, a file or a folder.

``--data movielens-100k`` reads the catalogue entry's interaction file from the
data directory; ``--data ratings.csv`` sniffs the file; ``--data parts/`` reads
every Parquet or text file of a folder (such as the output of
``mlscale data ingest --to parquet``) in name order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from mlscale.data.readers import BadRow, IdType, InteractionReader, OnError, interaction_schema
from mlscale.errors import DataError, DatasetNotFoundError

__all__ = ["InteractionStream", "open_interactions"]

_DATA_SUFFIXES = (".parquet", ".csv", ".tsv", ".dat", ".data", ".txt", ".gz")


class InteractionStream:
    """Record batches of interactions from one or more files, with read statistics."""

    def __init__(
        self, name: str, readers: list[InteractionReader] | None = None, table: pa.Table | None = None
    ) -> None:
        self.name = name
        self._readers = readers or []
        self._table = table
        if table is not None:
            self.schema = table.schema
        elif self._readers:
            types = {r.id_type for r in self._readers}
            if len(types) > 1:
                raise DataError(
                    f"{name}: the files disagree on the id type (some integer, some text)",
                    hint="pass --id-type str",
                )
            self.schema = self._readers[0].schema
        else:
            raise DataError(f"{name}: no interaction files found")

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._table is not None:
            yield from self._table.to_batches(max_chunksize=1 << 20)
            return
        for reader in self._readers:
            yield from reader

    def skip_timestamps(self) -> None:
        """Tell every reader its consumer ignores timestamps (:meth:`InteractionReader.skip_timestamps`)."""
        for reader in self._readers:
            reader.skip_timestamps()

    def read_all(self) -> pa.Table:
        """Every interaction as one table (for data that fits in memory)."""
        return pa.Table.from_batches(list(self), schema=self.schema)

    @property
    def bad_rows(self) -> int:
        return sum(r.bad_rows for r in self._readers)

    @property
    def bad_examples(self) -> list[BadRow]:
        return [b for r in self._readers for b in r.bad_examples][:10]

    @property
    def total_bytes(self) -> int:
        return sum(r.total_bytes for r in self._readers) or (self._table.nbytes if self._table else 0)

    @property
    def bytes_read(self) -> int:
        if self._table is not None:
            return int(self._table.nbytes)
        return sum(r.bytes_read for r in self._readers)


def _catalogue_stream(name: str, data_dir: Path, id_type: IdType, on_error: OnError) -> InteractionStream | None:
    from mlscale.data import catalogue

    try:
        dataset = catalogue.get_dataset(name)
    except DatasetNotFoundError:
        return None
    src = dataset.interactions
    if src is None:
        raise DataError(f"catalogue data set {name!r} holds no user-item interactions ({dataset.kind})")
    dataset.require(data_dir)
    if src.sep == "jsonl":
        table = dataset.read_interactions(data_dir)
        return InteractionStream(name, table=table.cast(interaction_schema(table.schema.field("user").type)))
    reader = InteractionReader(
        dataset.path(data_dir) / src.file,
        sep=src.sep,
        header=src.header,
        columns=src.columns,
        user_col=src.user,
        item_col=src.item,
        rating_col=src.rating,
        time_col=src.timestamp,
        id_type=id_type,
        on_error=on_error,
        encoding=src.encoding,
    )
    return InteractionStream(name, [reader])


def open_interactions(
    spec: str | Path,
    data_dir: Path,
    *,
    id_type: IdType = "auto",
    on_error: OnError = "raise",
    **reader_options: Any,
) -> InteractionStream:
    """Resolve ``spec`` (catalogue name, file or folder) to an interaction stream."""
    path = Path(spec)
    if not path.exists() and isinstance(spec, str) and "/" not in spec and not path.suffix:
        stream = _catalogue_stream(spec, data_dir, id_type, on_error)
        if stream is not None:
            return stream
        from mlscale.data import catalogue

        catalogue.get_dataset(spec)  # raises the catalogue's error, with suggestions
    if not path.exists():
        raise DataError(
            f"{path}: no such file or folder, and not a catalogue data set",
            hint="`mlscale data list` shows the catalogue",
        )
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith((".", "_")) and p.name.endswith(_DATA_SUFFIXES)
        )
        if not files:
            raise DataError(f"{path}: no data files in this folder (expected {', '.join(_DATA_SUFFIXES)})")
        readers = [InteractionReader(f, id_type=id_type, on_error=on_error, **reader_options) for f in files]
        return InteractionStream(str(path), readers)
    return InteractionStream(str(path), [InteractionReader(path, id_type=id_type, on_error=on_error, **reader_options)])
