"""What the streamed log readers share: record line numbers, required columns, readable Arrow CSV errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

from mlscale.data.streams import open_binary
from mlscale.errors import DataFormatError

__all__ = ["csv_error", "line_numbers", "require_columns"]

_CONVERSION = re.compile(r"column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'$", re.S)


def line_numbers(start: int, n: int, first_line: int) -> npt.NDArray[np.int64]:
    """File line of each of ``n`` records from record ``start`` on, the first record being on ``first_line``."""
    return np.arange(start, start + n, dtype=np.int64) + first_line


def require_columns(names: list[str], required: tuple[str, ...], where: str, what: str, line: int | None) -> None:
    """Raise a :class:`~mlscale.errors.DataFormatError` ("``what``: missing column(s) ...") unless all are there."""
    absent = [n for n in required if n not in names]
    if absent:
        raise DataFormatError(
            f"{what}: missing column(s) {', '.join(absent)}",
            path=where,
            line=line,
            hint=f"expected the columns {', '.join(required)}; found {', '.join(names[:20])}",
        )


def csv_error(message: str, names: list[str], source: Path | None) -> tuple[str, int | None]:
    """A readable reason for an Arrow CSV error, and its line when the file can be searched."""
    message = message.replace("CSV parse error: ", "").strip()
    m = _CONVERSION.search(message)
    if not m:
        return message, None
    index, target, value = int(m.group(1)), m.group(2), m.group(3)
    name = names[index] if index < len(names) else f"#{index}"
    reason = f"column {name!r}: expected {target}, found {value!r}"
    if source is None:
        return reason, None
    # Only reached on a failure: find the line by scanning the text once.
    with open_binary(source) as stream:
        for number, raw in enumerate(stream, start=1):
            if number == 1:
                continue
            fields = raw.decode("utf-8", "replace").rstrip("\r\n").split(",")
            if index < len(fields) and fields[index].strip('"') == value:
                return reason, number
    return reason, None
