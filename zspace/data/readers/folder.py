"""Any folder (recursive) or zip of images, with labels from sub-folders or a CSV.

Layout rules, applied to the image paths relative to the folder (or zip):

1. leading folders shared by every image are ignored (``test/`` in
   ``cifar10-jpg/test/<class>/``, ``img_align_celeba/`` in a zip);
2. when the top folders are split names (``train``, ``val``/``valid``/``validation``,
   ``test``) and there are at least two of them, they give the partition;
3. when every image then sits in a sub-folder and there are at least two, the
   sub-folder names are the class labels (sorted naturally: 2 before 10).

A ``labels.csv`` (rows ``filename,label``, optional header) in the folder, in the
zip or beside the zip overrides the sub-folder labels. Its file names are paths
relative to the folder or zip, or bare file names when those are unique.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zspace.core.errors import ZspaceError
from zspace.data.cache import read_images
from zspace.data.dataset import ImageData, source_path
from zspace.data.readers.imagefiles import find_text

if TYPE_CHECKING:
    from zspace.config import DataConfig

log = logging.getLogger("zspace.data")
SPLIT_DIRS = {
    "train": 0,
    "training": 0,
    "val": 1,
    "valid": 1,
    "validation": 1,
    "test": 2,
    "testing": 2,
}
CSV_NAME = "labels.csv"
CSV_HEADERS = {"filename", "file", "image", "image_id", "name", "path"}


@dataclass(frozen=True)
class Structure:
    labels: np.ndarray | None
    label_names: tuple[str, ...] | None
    partition: np.ndarray | None


def natural_key(text: str) -> list:
    """Sort key that orders embedded numbers by value ("class2" before "class10")."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def infer_structure(names: tuple[str, ...] | list[str]) -> Structure:
    """Partition and class labels from the folder layout (see the module docstring)."""
    parts = [n.split("/") for n in names]
    rel = _strip_common(parts)
    partition = None
    if rel and all(len(r) > 1 for r in rel):
        tops = {r[0].lower() for r in rel}
        if len(tops) >= 2 and tops <= SPLIT_DIRS.keys():
            partition = np.array([SPLIT_DIRS[r[0].lower()] for r in rel], np.int8)
            rel = [r[1:] for r in rel]
    if rel and all(len(r) > 1 for r in rel) and len({r[0] for r in rel}) >= 2:
        return Structure(*encode_labels([r[0] for r in rel]), partition)
    return Structure(None, None, partition)


def encode_labels(values: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class indices (int64) of ``values`` and the class names, sorted naturally."""
    classes = tuple(sorted(set(values), key=natural_key))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in values], np.int64), classes


def _strip_common(parts: list[list[str]]) -> list[list[str]]:
    if not parts:
        return parts
    depth = 0
    shortest = min(len(p) for p in parts) - 1  # never strip the file name itself
    while depth < shortest and all(p[depth] == parts[0][depth] for p in parts):
        depth += 1
    return [p[depth:] for p in parts]


def read_label_csv(text: str, source: str, names: tuple[str, ...]) -> tuple[np.ndarray, tuple]:
    """Labels for ``names`` from CSV text; every image needs a row."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if rows and rows[0][0].strip().lower() in CSV_HEADERS:
        rows = rows[1:]
    by_path: dict[str, str] = {}
    for lineno, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise ZspaceError(f"{source}: row {lineno}: expected filename,label, got {row!r}")
        by_path[row[0].strip().replace("\\", "/").removeprefix("./")] = row[1].strip()
    stripped = ["/".join(p) for p in _strip_common([n.split("/") for n in names])]
    basenames = [n.rsplit("/", 1)[-1] for n in names]
    by_base: dict[str, str] = {}
    if len(set(basenames)) == len(basenames):
        by_base = {k.rsplit("/", 1)[-1]: k for k in by_path}
    keys = [
        name if name in by_path else short if short in by_path else by_base.get(base)
        for name, short, base in zip(names, stripped, basenames, strict=True)
    ]
    missing = [n for n, k in zip(names, keys, strict=True) if k is None]
    if missing:
        raise ZspaceError(
            f"{source}: no label for {len(missing)} of {len(names)} image(s) (e.g. {missing[0]})"
        )
    unused = len(by_path) - len(set(keys))
    if unused > 0:
        log.warning("%s: %d row(s) name no image of the source", source, unused)
    return encode_labels([by_path[k] for k in keys if k is not None])  # none is missing


def find_label_csv(root: Path) -> tuple[str, str] | None:
    """(text, where) of ``labels.csv`` in the folder, in the zip or beside the zip."""
    if root.is_dir():
        return find_text(CSV_NAME, [root])
    return find_text(CSV_NAME, zip_path=root) or find_text(CSV_NAME, [root.parent])


def read_folder(path: str, cfg: DataConfig) -> ImageData:
    root = source_path(path, "folder")
    images, names, details = read_images(root, cfg, kind="folder", label=f"folder:{path}")
    struct = infer_structure(names)
    labels, label_names = struct.labels, struct.label_names
    found = find_label_csv(root)
    if found is not None:
        labels, label_names = read_label_csv(found[0], found[1], names)
        details["labels_from"] = found[1]
    return ImageData(
        images=images,
        source=f"folder:{root}",
        labels=labels,
        label_names=label_names,
        partition=struct.partition,
        details=details,
    )


def guess_folder(path: Path) -> bool:
    return path.is_dir() or (path.is_file() and zipfile.is_zipfile(path))
