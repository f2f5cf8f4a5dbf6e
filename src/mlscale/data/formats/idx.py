"""NumPy arrays from IDX files, the MNIST family's binary format.

An IDX file starts with a 4-byte magic number: two zero bytes, a type code
(``0x08`` unsigned byte ... ``0x0E`` double) and the number of dimensions;
then one big-endian 32-bit size per dimension, then the values, big-endian
and row-major. Images are ``0x00000803`` (N x rows x cols, uint8), labels
``0x00000801`` (N, uint8). gzip-compressed files are read transparently.

>>> import pathlib, struct, tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp, "labels-idx1-ubyte")
...     _ = path.write_bytes(struct.pack(">IIBBB", 0x801, 3, 7, 0, 9))
...     labels = read_idx(path)
>>> labels.tolist(), labels.dtype
([7, 0, 9], dtype('uint8'))
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlscale.data.streams import open_binary
from mlscale.errors import DataFormatError

__all__ = ["IDX_TYPES", "read_idx"]

#: IDX type code -> NumPy dtype (big-endian, as stored).
IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: Path, *, ndim: int | None = None) -> NDArray[Any]:
    """Read an IDX file (plain or gzip) into an array in native byte order.

    Checks the magic number, the type code, ``ndim`` when given, and that the
    file holds exactly the bytes its header announces; raises
    :class:`~mlscale.errors.DataFormatError` otherwise.
    """
    with open_binary(Path(path)) as stream:
        data = stream.read()
    where = str(path)
    if len(data) < 4:
        raise DataFormatError(f"too short for an IDX file ({len(data)} bytes)", path=where)
    zero, code, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in IDX_TYPES:
        raise DataFormatError(
            f"bad IDX magic number 0x{data[:4].hex()}: expected 0x0000TTNN with type TT in "
            + ", ".join(f"{c:02x}" for c in IDX_TYPES),
            path=where,
            hint="is this an IDX file (such as train-images-idx3-ubyte.gz)?",
        )
    if ndim is not None and dims != ndim:
        raise DataFormatError(f"expected a {ndim}-dimensional IDX array, the header says {dims}", path=where)
    header = 4 + 4 * dims
    if len(data) < header:
        raise DataFormatError(f"truncated IDX header (needs {header} bytes, file has {len(data)})", path=where)
    shape = struct.unpack(f">{dims}I", data[4:header])
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataFormatError(
            f"the header announces shape {shape} ({expected} bytes of data), "
            f"the file holds {len(data) - header} bytes after the header",
            path=where,
            hint="the file is truncated or not an IDX file; download it again",
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    # A copy: writable, and in the machine's byte order.
    return array.astype(dtype.newbyteorder("="))
