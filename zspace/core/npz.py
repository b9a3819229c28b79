"""Uncompressed .npz files that may be larger than memory: written member by member;
read memory-mapped with ``fileio.read_npz(path, mmap=True)``.

``np.savez`` stores every array as an uncompressed ("stored") zip member that is a
complete .npy file, so the array's bytes lie in the .npz at a fixed offset, where
``read_npz`` maps them. ``write`` streams arrays, np.memmap views or .npy files on
disk into a file in chunks, so no member is ever held in memory whole. The result is
an ordinary .npz: ``np.load`` reads it.
"""

from __future__ import annotations

import mmap
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

COPY_CHUNK = 1 << 24  # bytes copied at a time from a .npy file into the zip


def write(fh: BinaryIO, members: Mapping[str, np.ndarray | str | Path]) -> None:
    """Write ``members`` (name -> array, or path of a .npy file) as a stored .npz into
    the seekable binary file ``fh``. Arrays are written in 16 MiB pieces (NumPy's own
    buffered writer), files copied in chunks."""
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, value in members.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                if isinstance(value, str | Path):
                    with open(value, "rb") as src:
                        shutil.copyfileobj(src, out, COPY_CHUNK)
                else:
                    np.lib.format.write_array(out, np.asanyarray(value), allow_pickle=False)


def _memmap_of(arr: np.ndarray) -> np.memmap | None:
    base: Any = arr  # then its .base, and so on
    while base is not None:
        if isinstance(base, np.memmap):
            return base
        base = getattr(base, "base", None)
    return None


def is_mapped(arr: np.ndarray) -> bool:
    """True when ``arr`` is (a view of) a memory-mapped file."""
    return _memmap_of(arr) is not None


def release(arr: np.ndarray) -> None:
    """Drop the pages of ``arr``'s memory map from this process's resident memory.

    They stay in the kernel's page cache, so reading them again is cheap; without
    this, one pass over 3 GB of mapped latents leaves 3 GB resident. A no-op for
    arrays that are not mapped, and where the platform has no MADV_DONTNEED."""
    mm = _memmap_of(arr)
    raw = getattr(mm, "_mmap", None)
    if raw is not None and hasattr(raw, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        raw.madvise(mmap.MADV_DONTNEED)
