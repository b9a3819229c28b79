"""IDX files: MNIST, Fashion-MNIST, KMNIST, notMNIST and others in MNIST's format.

An IDX file is a big-endian header (two zero bytes, a type code, the number of
dimensions, one uint32 per dimension) followed by the raw array; the published
files are gzipped. PATH is a folder holding the usual ``train-*``/``t10k-*`` files
(either set or both) or one images file (its labels are looked for beside it).
With both sets the t10k files become the ``test`` split.

IDX sets are small arrays that decode in well under a second, so they are read
directly on every run and do not go through the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import re
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zspace.core.errors import ZspaceError
from zspace.core.fileio import read_bytes
from zspace.data.dataset import CLASS_FILE, ImageData, class_file, class_names, source_path
from zspace.data.download import SETS
from zspace.data.readers.geometry import fit_array

if TYPE_CHECKING:
    from zspace.config import DataConfig

TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
NAME = re.compile(
    r"^(?:(?P<prefix>.+?)[-_])?(?P<split>train|t10k|test)-(?P<what>images|labels)"
    r"[-.]idx(?P<ndim>\d)-ubyte(?P<gz>\.gz)?$"
)


def gunzipped(raw: bytes, path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise ZspaceError(f"{path}: truncated or corrupt gzip file ({exc})") from None


def parse_idx(data: bytes, where: str) -> np.ndarray:
    """The array of one IDX file, with the header checked against the data length."""
    if len(data) < 4:
        raise ZspaceError(f"{where}: too short for an IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or code not in TYPES or ndim == 0:
        raise ZspaceError(f"{where}: not an IDX file (magic number 0x{magic:08x})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ZspaceError(f"{where}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = TYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: a forged header cannot wrap
    have = len(data) - header
    if have < expected:
        raise ZspaceError(
            f"{where}: truncated: the header announces {'x'.join(map(str, dims))} values "
            f"({expected} bytes) but only {have} bytes follow"
        )
    if have > expected:
        raise ZspaceError(f"{where}: {have - expected} unexpected bytes after the data")
    return np.frombuffer(data, dtype, count=expected // dtype.itemsize, offset=header).reshape(dims)


def read_images_file(path: Path) -> np.ndarray:
    arr = parse_idx(gunzipped(read_bytes(path), path), str(path))
    if (
        arr.dtype != np.uint8
        or arr.ndim not in (3, 4)
        or (arr.ndim == 4 and arr.shape[3] not in (1, 3))
    ):
        raise ZspaceError(
            f"{path}: expected images (IDX magic 2051: ubyte, N x H x W), got "
            f"{arr.dtype} with shape {arr.shape}"
        )
    if not len(arr):
        raise ZspaceError(f"{path}: no images (its header says 0)")
    return arr if arr.ndim == 4 else arr[..., None]


def read_labels_file(path: Path, count: int) -> tuple[np.ndarray, tuple[str, ...] | None]:
    raw = read_bytes(path)
    arr = parse_idx(gunzipped(raw, path), str(path))
    if arr.ndim != 1 or arr.dtype.kind not in "ui":
        raise ZspaceError(
            f"{path}: expected labels (IDX magic 2049: ubyte, N), got {arr.dtype} "
            f"with shape {arr.shape}"
        )
    if len(arr) != count:
        raise ZspaceError(f"{path}: {len(arr)} labels for {count} images")
    md5 = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    known = (s.classes for s in SETS.values() for f in s.files if f.md5 == md5)
    return arr.astype(np.int64), next(known, None)  # the class names of a published set


def _idx_in(folder: Path) -> dict[tuple[str, str, str], Path]:
    """(prefix, "train" | "t10k", "images" | "labels") -> file, of the IDX files in a
    folder; with both the raw and the .gz copy present, the raw one (it reads faster)."""
    found: dict[tuple[str, str, str], Path] = {}
    for p in sorted(folder.iterdir(), key=lambda q: (q.suffix == ".gz", q.name)):
        m = NAME.match(p.name)
        if m and p.is_file():
            split = "t10k" if m["split"] in ("t10k", "test") else "train"
            found.setdefault((m["prefix"] or "", split, m["what"]), p)
    return found


def find_sets(root: Path) -> dict[str, dict[str, Path]]:
    """{"train"|"t10k": {"images": path, "labels": path}} for the IDX files in a folder."""
    found = _idx_in(root)
    prefixes = {prefix for prefix, _, _ in found}
    if len(prefixes) > 1:
        raise ZspaceError(
            f"mnist:{root}: several IDX sets in one folder ({', '.join(sorted(prefixes))}); "
            "point at one images file"
        )
    sets: dict[str, dict[str, Path]] = {}
    for (_, split, what), path in found.items():
        sets.setdefault(split, {})[what] = path
    return sets


def labels_beside(images: Path) -> Path | None:
    m = NAME.match(images.name)
    if not m or m["what"] != "images":
        return None
    split = "t10k" if m["split"] in ("t10k", "test") else "train"
    return _idx_in(images.parent).get((m["prefix"] or "", split, "labels"))


def read_idx_source(path: str, cfg: DataConfig) -> ImageData:
    root = source_path(path, "mnist")
    if root.is_dir():
        sets = find_sets(root)
        parts = [
            (split, sets[split]) for split in ("train", "t10k") if "images" in sets.get(split, {})
        ]
        if not parts:
            raise ZspaceError(
                f"mnist:{path}: no IDX images file (train-images-idx3-ubyte[.gz] or "
                f"t10k-images-idx3-ubyte[.gz]) in {root}"
            )
    else:
        beside = labels_beside(root)
        parts = [("file", {"images": root, **({"labels": beside} if beside else {})})]
    images, labels, split_codes, names = [], [], [], None
    have_labels = all("labels" in files for _, files in parts)
    for split, files in parts:
        images.append(read_images_file(files["images"]))
        split_codes.append(np.full(len(images[-1]), 2 if split == "t10k" else 0, np.int8))
        if have_labels:
            lab, known = read_labels_file(files["labels"], len(images[-1]))
            labels.append(lab)
            names = names or known
    shapes = {a.shape[1:] for a in images}
    if len(shapes) > 1:
        raise ZspaceError(f"mnist:{path}: train and t10k images differ in shape: {sorted(shapes)}")
    label_arr = np.concatenate(labels) if have_labels else None
    folder = root if root.is_dir() else root.parent
    listed = class_file(folder)
    where = str(folder / CLASS_FILE) if listed else ""
    return ImageData(
        images=fit_array(np.concatenate(images), cfg.image_size, cfg.crop),
        source=f"mnist:{root}",
        labels=label_arr,
        label_names=None if label_arr is None else class_names(label_arr, listed or names, where),
        partition=np.concatenate(split_codes) if len(parts) == 2 else None,
        details={
            "files": [str(f) for _, files in parts for f in files.values()],
            "cache": {"state": "not used (IDX arrays are read directly)"},
        },
    )


def guess_idx(path: Path) -> bool:
    if path.is_file():
        return bool(NAME.match(path.name))
    return path.is_dir() and any(NAME.match(p.name) for p in path.iterdir())
