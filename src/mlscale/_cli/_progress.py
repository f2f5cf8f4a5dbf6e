"""Progress bars on stderr for long commands (quiet when stderr is not a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from tqdm import tqdm

__all__ = ["byte_progress"]


class _Sized(Protocol):
    @property
    def total_bytes(self) -> int: ...

    @property
    def bytes_read(self) -> int: ...


@contextmanager
def byte_progress(source: _Sized, *, disable: bool = False) -> Iterator[Callable[[Any], None]]:
    """Yield a callback that advances a bar by the bytes ``source`` has consumed."""
    bar = tqdm(
        total=source.total_bytes,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="ingest",
        disable=disable or not sys.stderr.isatty(),
        file=sys.stderr,
    )

    def advance(_: Any) -> None:
        bar.update(max(0, source.bytes_read - bar.n))

    try:
        yield advance
    finally:
        bar.close()
