"""CelebA aligned & cropped faces: the image folder or the official zip, in place.

PATH may be the ``img_align_celeba/`` folder, ``img_align_celeba.zip``, or the
folder holding either (also the official Google-Drive layout with ``Img/``,
``Anno/`` and ``Eval/``). ``list_attr_celeba.txt`` and ``list_eval_partition.txt``
are looked for beside the images, in ``Anno/``/``Eval/`` and inside the zip.

Images are 178x218; without ``data.image_size`` they are cropped to the centre
178x178 square and resized to 96x96, the size the reference worked with.
Attributes become ``attr`` (+1/-1, 0 for images without a row in the file).
"""

from __future__ import annotations

import logging
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
IMAGES = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
DEFAULT_SIZE = 96
ID_COLUMNS = {"image_id", "filename", "file", "image", "name"}


def locate_images(root: Path) -> Path:
    """The folder or zip holding the images, given any of the accepted PATHs."""
    if root.is_dir():
        for base in (root, root / "Img"):
            for candidate in (base / IMAGES, base / f"{IMAGES}.zip"):
                if candidate.exists():
                    return candidate
    return root


def annotation(name: str, root: Path, container: Path) -> tuple[str, str] | None:
    """(text, where) of an annotation file on disk near the images, or inside the zip."""
    near = (root if root.is_dir() else root.parent, container.parent, container.parent.parent)
    bases = dict.fromkeys([container, *near] if container.is_dir() else near)  # in order, once
    return find_text(name, [b / sub for b in bases for sub in ("", "Anno", "Eval")], container)


def parse_attributes(text: str, where: str) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """Attribute names and a row per image name from ``list_attr_celeba.txt``.

    Line 1 is the image count, line 2 the names: the official 40, or the common
    variant with a leading ``image_id``. Values are +1/-1 (0/1 files are read too).
    """
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise ZspaceError(f"{where}: line 1 should be the number of images, got {lines[:1]!r}")
    count = int(lines[0])
    names = lines[1].split()
    if names and names[0].lower() in ID_COLUMNS:
        names = names[1:]
    if not names:
        raise ZspaceError(f"{where}: line 2 should name the attributes")
    rows: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(lines[2:], start=3):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != len(names) + 1:
            raise ZspaceError(
                f"{where}: line {lineno}: {len(tokens) - 1} values for {len(names)} attributes"
            )
        try:
            values = np.array([int(t) for t in tokens[1:]])
        except ValueError:
            raise ZspaceError(f"{where}: line {lineno}: values must be integers") from None
        rows[tokens[0]] = np.where(values > 0, 1, -1).astype(np.int8)
    if len(rows) != count:
        raise ZspaceError(
            f"{where}: line 1 says {count} images but {len(rows)} rows follow (truncated?)"
        )
    return tuple(names), rows


def parse_partition(text: str, where: str) -> dict[str, int]:
    """Image name -> 0 train, 1 valid, 2 test, from ``list_eval_partition.txt``."""
    out = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 2 or tokens[1] not in ("0", "1", "2"):
            raise ZspaceError(f"{where}: line {lineno}: expected 'IMAGE 0|1|2', got {line!r}")
        out[tokens[0]] = int(tokens[1])
    return out


def read_celeba(path: str, cfg: DataConfig) -> ImageData:
    root = source_path(path, "celeba")
    label = f"celeba:{path}"
    container = locate_images(root)
    images, names, details = read_images(
        container, cfg, kind="celeba", label=label, default_size=DEFAULT_SIZE
    )
    basenames = [n.rsplit("/", 1)[-1] for n in names]

    attr = attr_names = None
    found = annotation(ATTR_FILE, root, container)
    if found is not None:
        attr_names, rows = parse_attributes(*found)
        missing = np.zeros(len(attr_names), np.int8)
        attr = np.stack([rows.get(b, missing) for b in basenames])
        with_row = sum(b in rows for b in basenames)
        details["attributes"] = {
            "file": found[1],
            "images_with_row": with_row,
            "images_without_row": len(basenames) - with_row,
        }
    partition = None
    found = annotation(PARTITION_FILE, root, container)
    if found is not None:
        table = parse_partition(*found)
        partition = np.array([table.get(b, 0) for b in basenames], np.int8)
        absent = sum(b not in table for b in basenames)
        details["partition"] = {"file": found[1], "images_without_row": absent}
        if absent:
            log.warning(
                "%s: %d image(s) have no row in %s and go to train", label, absent, found[1]
            )
    return ImageData(
        images=images,
        source=f"celeba:{root}",
        attr=attr,
        attr_names=attr_names,
        partition=partition,
        details=details,
    )


def guess_celeba(path: Path) -> bool:
    if IMAGES in path.name:
        return True
    return path.is_dir() and (locate_images(path) != path or (path / ATTR_FILE).exists())
