"""Out-of-core ingest helpers: interaction streams to partitioned Parquet, sizes, summaries.

:func:`ingest_parquet` takes any iterable of record batches (such as the
reader's, see :mod:`mlscale.data.readers`), so the input may be far larger
than memory; the parts are written by :class:`mlscale.data.writers.PartWriter`.

>>> parse_size("64M") == DEFAULT_MEMORY_BUDGET // 4
True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from mlscale.data.readers import BadRow
from mlscale.data.writers import PartWriter
from mlscale.errors import DataError, ValidationError

__all__ = ["DEFAULT_MEMORY_BUDGET", "IngestSummary", "ingest_parquet", "parse_size"]

#: The default memory a bounded-memory ingest may hold besides its output.
DEFAULT_MEMORY_BUDGET = 256 << 20


def parse_size(text: str | int, *, field_name: str = "--memory-budget") -> int:
    """Parse ``512M``, ``2G``, ``1.5GiB`` or a plain byte count.

    >>> parse_size("256M"), parse_size("1.5G"), parse_size(4096)
    (268435456, 1610612736, 4096)
    """
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if not m:
        raise ValidationError(f"expected a size such as 512M or 2G, got {text!r}", field=field_name)
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2)]
    return int(float(m.group(1)) * scale)


@dataclass
class IngestSummary:
    """What an ingest read, wrote and skipped."""

    rows: int = 0
    bad_rows: int = 0
    bad_examples: list[BadRow] = field(default_factory=list)
    users: int = 0
    items: int = 0
    nnz: int = 0
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """A human summary, one line each, listing the first bad rows."""
        out = [f"rows read: {self.rows:,} in {self.seconds:.1f}s ({self.rows / max(self.seconds, 1e-9):,.0f} rows/s)"]
        if self.users or self.items:
            out.append(f"matrix: {self.users:,} users x {self.items:,} items, {self.nnz:,} non-zeros")
        if self.files:
            out.append(f"files written: {len(self.files)} ({self.files[0].parent})")
        if self.bad_rows:
            out.append(f"bad rows skipped: {self.bad_rows:,}; the first ones:")
            out.extend(f"  line {b.line}: {b.reason}: {b.text!r}" for b in self.bad_examples)
        return out


def ingest_parquet(
    batches: Iterable[pa.RecordBatch],
    out_dir: str | Path,
    *,
    rows_per_file: int = 10_000_000,
    on_batch: Callable[[pa.RecordBatch], None] | None = None,
) -> list[Path]:
    """Write batches as ``part-NNNNN.parquet`` files in ``out_dir``, atomically.

    The parts are written by a :class:`~mlscale.data.writers.PartWriter`: into
    a hidden temporary folder beside ``out_dir`` which replaces it only once
    every part is complete, so a failed ingest leaves an earlier output
    untouched. An empty stream is an error (and leaves ``out_dir`` as it was).
    """
    with PartWriter(out_dir, rows_per_file=rows_per_file, field="--out") as parts:
        for batch in batches:
            parts.write(batch)
            if on_batch is not None:
                on_batch(batch)
        if parts.rows == 0:
            raise DataError("no interactions to write")
    return parts.files
