"""The in-memory form of a data set that every reader returns and training consumes.

Readers turn a source ("KIND:PATH") into an ``ImageData``: uint8 NHWC images at the
requested geometry plus whatever labels the source knows. Everything after that
(splits, tasks, batching) works on this one shape, so adding a source means adding
a reader and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zspace.config.schema import SPLITS  # noqa: F401 - the one list lives in config (the CLI reads it light)
from zspace.core.errors import ZspaceError
from zspace.core.fileio import read_text

if TYPE_CHECKING:
    from zspace.config import DataConfig

PARTITION_CODES = {"train": 0, "valid": 1, "test": 2}
CLASS_FILE = "classes.txt"  # class names beside IDX or npy files, one a line
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights of R, G, B in grey (Pillow's convert("L"))


@dataclass(frozen=True)
class ImageData:
    """Images and what is known about them.

    images: (N, H, W, C) uint8, possibly a read-only ``np.memmap``.
    labels/label_names: class index per image and the class names, when known.
    attr/attr_names: (N, A) int8 in {-1, 0 = unknown, +1}, when known (CelebA).
    partition: (N,) int8 with 0 train, 1 valid, 2 test when the source defines its
        own split; None means a seeded ``data.valid_fraction`` split.
    details: what the reader wants to tell ``data info`` (cache file and state,
        skipped files, ...); JSON-friendly, not needed for training.
    """

    images: np.ndarray
    source: str
    labels: np.ndarray | None = None
    label_names: tuple[str, ...] | None = None
    attr: np.ndarray | None = None
    attr_names: tuple[str, ...] | None = None
    partition: np.ndarray | None = None
    details: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}"
            )
        n = len(self.images)
        for name in ("labels", "attr", "partition"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} rows for {n} images")

    @property
    def count(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        _, h, w, c = self.images.shape
        return int(h), int(w), int(c)

    def describe(self) -> dict:
        """JSON-friendly summary kept in ``meta.json``."""
        return {
            "source": self.source,
            "count": self.count,
            "shape": list(self.shape),
            "label_names": list(self.label_names) if self.label_names else None,
            "attr_names": list(self.attr_names) if self.attr_names else None,
            "has_partition": self.partition is not None,
        }


def source_path(path: str, kind: str) -> Path:
    """The absolute path of a ``KIND:PATH`` source, refused when it does not exist."""
    if not path:
        raise ZspaceError(f"data.source '{kind}:': the path is missing")
    root = Path(path).expanduser().absolute()
    if not root.exists():
        raise ZspaceError(f"{kind}:{path}: path not found: {root}")
    return root


def class_names(
    labels: np.ndarray, names: Sequence[str] | None = None, where: str = ""
) -> tuple[str, ...]:
    """``names`` when they name every label, else "0", "1", ... up to the largest label;
    names a user gave (``where`` says where) that miss a label are an error."""
    count = int(labels.max()) + 1 if len(labels) else 0
    if names is not None and where and len(names) < count:
        raise ZspaceError(f"{where}: {len(names)} class names for labels 0..{count - 1}")
    if names is not None and len(names) >= count:
        return tuple(str(n) for n in names)
    return tuple(str(i) for i in range(count))


def class_file(folder: Path) -> tuple[str, ...] | None:
    """The class names of ``folder/classes.txt`` (one a line), when it is there."""
    file = folder / CLASS_FILE
    if not file.is_file():
        return None
    return tuple(n.strip() for n in read_text(file).splitlines() if n.strip())


def split_indices(data: ImageData, valid_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Index arrays for train/valid(/test).

    The source's own partition wins; otherwise a seeded shuffle puts
    ``valid_fraction`` of the images into ``valid`` (at least one when the
    fraction is positive). ``test`` exists only when the source defines it.
    """
    n = data.count
    if data.partition is not None:
        out = {
            name: np.flatnonzero(data.partition == code).astype(np.int64)
            for name, code in PARTITION_CODES.items()
        }
        if not len(out["test"]):
            del out["test"]
        if not len(out["valid"]) and valid_fraction > 0:
            # A partition without a valid part: carve one from train, seeded.
            out["train"], out["valid"] = _seeded_split(out["train"], valid_fraction, seed)
        return out
    train, valid = _seeded_split(np.arange(n, dtype=np.int64), valid_fraction, seed)
    return {"train": train, "valid": valid}


def held_out_split(splits: dict[str, np.ndarray]) -> str | None:
    """The split that unseen images come from: test when the source has one, else valid;
    None when neither holds an image (e.g. ``data.valid_fraction = 0``)."""
    for name in ("test", "valid"):
        if len(splits.get(name, ())):
            return name
    return None


def _seeded_split(
    index: np.ndarray, valid_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    n = len(index)
    n_valid = 0 if valid_fraction <= 0 else max(1, int(round(n * valid_fraction)))
    if n_valid >= n:
        raise ZspaceError(
            f"data.valid_fraction = {valid_fraction} leaves no training images out of {n}"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(index[perm[n_valid:]]), np.sort(index[perm[:n_valid]])


def match_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Convert uint8 NHWC images to the requested channel count (0 = keep).

    Grey to RGB repeats the channel; RGB to grey weighs the channels by ``LUMA``.
    """
    have = images.shape[-1]
    if channels in (0, have):
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    if have == 3 and channels == 1:
        luma = images.astype(np.float32) @ np.array(LUMA, np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    raise ZspaceError(f"cannot convert images with {have} channels to {channels}")


def conform(data: ImageData, cfg: DataConfig) -> ImageData:
    """What every source goes through after its reader: a non-empty set, the class names
    of ``data.class_names``, the channel conversion of ``data.channels``, colour targets
    for recolor."""
    if data.count == 0:
        raise ZspaceError(f"data.source {cfg.source!r}: no images")
    if cfg.class_names:
        have = class_names(data.labels, data.label_names) if data.labels is not None else ()
        if len(have) != len(cfg.class_names):
            raise ZspaceError(
                f"data.class_names: {len(cfg.class_names)} names for the {len(have)} classes "
                f"of {data.source}" + (f" ({', '.join(have[:3])}, ...)" if have else "")
            )
        data = replace(data, label_names=tuple(cfg.class_names))
    images = match_channels(data.images, cfg.channels)
    if images is not data.images:
        data = replace(
            data, images=images, details={**data.details, "converted_from_channels": data.shape[2]}
        )
    if cfg.task == "recolor" and data.shape[2] != 3:
        raise ZspaceError(
            f"data.task = 'recolor' needs colour images, but {cfg.source!r} gives "
            f"{data.shape[2]} channel(s); use data.channels = 3 only with colour sources"
        )
    return data
