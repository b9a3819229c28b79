"""Uncompressed .npz files that may be larger than memory: written member by member,
read memory-mapped.

``np.savez`` stores every array as an uncompressed ("stored") zip member that is a
complete .npy file, so the array's bytes lie in the .npz at a fixed offset: after
the member's local zip header and the .npy header. ``load`` maps every such member
in place (files written by ``np.savez`` before this module existed included) and
reads the rest (compressed members, empty arrays) into memory. ``write`` streams
arrays, np.memmap views or .npy files on disk into a file in chunks, so no member
is ever held in memory whole. The result is an ordinary .npz: ``np.load`` reads it.
"""

from __future__ import annotations

import mmap
import shutil
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from zspace.core.errors import ZspaceError
from zspace.core.fileio import NPZ_MAGIC

COPY_CHUNK = 1 << 24  # bytes copied at a time from a .npy file into the zip
_LOCAL_HEADER = struct.Struct("<4s22sHH")  # signature, fixed fields, name and extra lengths


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


def load(path: str | Path, *, mmap: bool = True, hint: str = "") -> dict[str, np.ndarray]:
    """Every member of the .npz at ``path``: stored members memory-mapped read-only
    (plain ndarray views of an np.memmap) when ``mmap``, the others read. A truncated
    or foreign file, or one holding object arrays (pickles, refused), is a one-line
    error naming the file, with ``hint`` (what to do) after it."""
    import zlib

    path = Path(path)
    more = f"; {hint}" if hint else ""
    out: dict[str, np.ndarray] = {}
    try:
        with open(path, "rb") as raw:
            if raw.read(4) not in NPZ_MAGIC:
                raise ZspaceError(f"{path} is not an .npz archive (truncated or foreign){more}")
            with zipfile.ZipFile(raw) as zf:
                for info in zf.infolist():
                    if not info.filename.endswith(".npy"):
                        continue
                    key = info.filename[: -len(".npy")]
                    arr = _mapped(path, raw, info) if mmap else None
                    if arr is None:
                        with zf.open(info) as member:
                            arr = np.lib.format.read_array(member, allow_pickle=False)
                    out[key] = arr
    except ValueError as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "pickle" in text.lower() or "object" in text.lower():
            raise ZspaceError(
                f"{path} holds object arrays (pickled Python objects); refused{more}"
            ) from None
        raise ZspaceError(f"{path} is truncated or corrupt ({text}){more}") from None
    except (zipfile.BadZipFile, EOFError, zlib.error, KeyError, struct.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ZspaceError(f"{path} is truncated or corrupt ({reason}){more}") from None
    return out


def _mapped(path: Path, raw: BinaryIO, info: zipfile.ZipInfo) -> np.ndarray | None:
    """The member as a read-only memory map, or None when it cannot be mapped
    (compressed, encrypted, an unknown .npy version, object dtype or empty)."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    raw.seek(info.header_offset)
    sig, _, name_len, extra_len = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
    if sig != b"PK\x03\x04":
        return None
    raw.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
    version = np.lib.format.read_magic(raw)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(raw)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(raw)
    else:
        return None
    if dtype.hasobject or int(np.prod(shape)) == 0:
        return None
    mm = np.memmap(
        path, dtype=dtype, mode="r", offset=raw.tell(), shape=shape, order="F" if fortran else "C"
    )
    return mm.view(np.ndarray)


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
