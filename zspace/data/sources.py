"""Source strings ("KIND:PATH") to readers.

A reader is ``fn(path: str, cfg: DataConfig) -> ImageData`` returning images already
at the geometry ``cfg`` asks for (size, crop, channels); ``READERS`` lists them, each
with an optional ``guess(path) -> bool`` so a bare path is recognised by its contents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zspace.core.errors import ZspaceError
from zspace.data.arrays import IMAGES, read_npy
from zspace.data.builtin import read_builtin
from zspace.data.dataset import ImageData, conform
from zspace.data.readers.celeba import guess_celeba, read_celeba
from zspace.data.readers.cifar import guess_cifar10, read_cifar10
from zspace.data.readers.folder import guess_folder, read_folder
from zspace.data.readers.idx import guess_idx, read_idx_source

if TYPE_CHECKING:
    from zspace.config import DataConfig


@dataclass(frozen=True)
class ReaderEntry:
    kind: str
    read: Callable[[str, DataConfig], ImageData]
    guess: Callable[[Path], bool] | None
    description: str


# The readers, in the order a bare path is guessed: the specific layouts first (IDX,
# CIFAR-10, CelebA), any folder or zip of images last.
READERS: dict[str, ReaderEntry] = {
    e.kind: e
    for e in (
        ReaderEntry("builtin", read_builtin, None, "data that ships with the package: digits"),
        ReaderEntry(
            "npy",
            read_npy,
            lambda p: p.suffix == ".npy" or (p / IMAGES).is_file(),
            "uint8 images in a .npy file, or a folder with images.npy (+ labels.npy)",
        ),
        ReaderEntry(
            "mnist",
            read_idx_source,
            guess_idx,
            "IDX files (MNIST, Fashion-MNIST, KMNIST, ...): a folder or one images file",
        ),
        ReaderEntry(
            "cifar10",
            read_cifar10,
            guess_cifar10,
            "CIFAR-10 python batches: cifar-10-batches-py/ or cifar-10-python.tar.gz",
        ),
        ReaderEntry(
            "celeba",
            read_celeba,
            guess_celeba,
            "CelebA aligned: img_align_celeba/ or img_align_celeba.zip (+ attributes)",
        ),
        ReaderEntry(
            "folder",
            read_folder,
            guess_folder,
            "any folder (recursive) or zip of images; sub-folders are class labels",
        ),
    )
}


def parse_source(source: str) -> tuple[str, str]:
    """Split "KIND:PATH"; a bare path is recognised by the readers' guessers."""
    kind, sep, path = source.partition(":")
    known = ", ".join(sorted(READERS))
    if sep and kind in READERS:
        if not path and kind != "builtin":
            raise ZspaceError(f"data.source {source!r}: the path after '{kind}:' is missing")
        return kind, path
    if sep and len(kind) > 1 and not Path(source).exists():
        raise ZspaceError(f"data.source {source!r}: unknown kind '{kind}' (known: {known})")
    bare = Path(source).expanduser()
    if not bare.exists():
        raise ZspaceError(f"data.source {source!r}: path not found")
    for entry in READERS.values():
        if entry.guess is not None and entry.guess(bare):
            return entry.kind, source
    raise ZspaceError(
        f"data.source {source!r}: cannot tell what kind of data this is; "
        f"write it as KIND:PATH with KIND one of {known}"
    )


def load_data(cfg: DataConfig) -> ImageData:
    """Read the configured source at the configured geometry.

    ``data.channels`` converts explicitly (grey repeated to RGB, RGB to luma);
    ``data.task = "recolor"`` needs colour targets and is refused on grey data.
    """
    kind, path = parse_source(cfg.source)
    return conform(READERS[kind].read(path, cfg), cfg)
