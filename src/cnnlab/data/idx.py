"""The IDX format of MNIST and Fashion-MNIST (gzip-compressed or not).

Layout: two zero bytes, a type code, the number of dimensions ``d``, then ``d``
big-endian uint32 sizes, then the values big-endian in C order.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) into a numpy array of its shape and type."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise CnnlabError(f"cannot read the IDX file ({error})", where=str(path),
                          fix="replace it with a complete copy of the original file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise CnnlabError("is not an IDX file (bad magic number)", where=str(path),
                          fix="use the original MNIST / Fashion-MNIST *-idx*-ubyte(.gz) files")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(x) for x in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise CnnlabError(f"holds {len(raw) - header} data bytes, its header announces {expected} for shape {shape}",
                          where=str(path), fix="the file is truncated or damaged: replace it")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` in IDX format (gzip when the name ends in .gz); used by tests and tools."""
    from cnnlab.files import atomic_write_bytes

    codes = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}
    code = codes[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = header + array.astype(np.dtype(_TYPES[code])).tobytes()
    atomic_write_bytes(path, gzip.compress(body, mtime=0) if str(path).endswith(".gz") else body)
