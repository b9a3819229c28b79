"""The image files of a folder (recursive) or a zip, listed once and opened by name.

Both containers look the same to the decoders: a sorted tuple of relative POSIX
names plus a listing (name, size, mtime or CRC) whose checksum tells the cache
whether the source changed. Zips are read in place, never unpacked, because data
folders are often read-only and CelebA's zip alone is 1.4 GB.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from zspace.core.errors import ZspaceError

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".webp",
        ".bmp",
        ".gif",
        ".tif",
        ".tiff",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".jfif",
    }
)


@dataclass(frozen=True)
class ImageFiles:
    """Image members of one container, sorted by name."""

    container: str  # absolute path of the folder or zip
    is_zip: bool
    names: tuple[str, ...]
    listing_sha256: str

    def __len__(self) -> int:
        return len(self.names)


def is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    if base.startswith(".") or "__MACOSX/" in name:
        return False
    return os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def list_images(path: Path, label: str) -> ImageFiles:
    """All image files under a folder or inside a zip; ``label`` names the source in errors."""
    if not path.exists():
        raise ZspaceError(f"{label}: path not found: {path}")
    if path.is_dir():
        return _list_folder(path, label)
    if zipfile.is_zipfile(path):
        return _list_zip(path, label)
    raise ZspaceError(f"{label}: {path} is neither a folder nor a zip file")


def _list_folder(root: Path, label: str) -> ImageFiles:
    entries: list[tuple[str, int, int]] = []
    stack = [root]
    seen: set[tuple[int, int]] = set()  # (device, inode) of folders listed: a symlink
    while stack:  # back to an ancestor (a loop) is listed once, not until ELOOP
        folder = stack.pop()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=True):
                        stack.append(Path(entry.path))
                    elif is_image_name(entry.name):
                        try:
                            st = entry.stat()
                        except FileNotFoundError:  # a dangling link: no image to list
                            continue
                        rel = Path(entry.path).relative_to(root).as_posix()
                        entries.append((rel, st.st_size, st.st_mtime_ns))
        except OSError as exc:  # no permission, a dangling link, a name too long
            raise ZspaceError(
                f"{label}: cannot read {exc.filename or folder}: {exc.strerror or exc}"
            ) from None
    if not entries:
        raise ZspaceError(f"{label}: no image files in {root}")
    entries.sort()
    return ImageFiles(str(root.resolve()), False, tuple(e[0] for e in entries), _digest(entries))


def _list_zip(path: Path, label: str) -> ImageFiles:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir() and is_image_name(i.filename)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise ZspaceError(f"{label}: cannot read zip {path}: {exc}") from None
    if not infos:
        raise ZspaceError(f"{label}: no image files in {path}")
    st = path.stat()
    entries = sorted((i.filename, i.file_size, i.CRC) for i in infos)
    header = [(f"zip:{path.resolve()}", st.st_size, st.st_mtime_ns)]
    return ImageFiles(
        str(path.resolve()), True, tuple(e[0] for e in entries), _digest(header + entries)
    )


def _digest(entries: list[tuple[str, int, int]]) -> str:
    h = hashlib.sha256()
    for name, size, stamp in entries:
        h.update(f"{name}\0{size}\0{stamp}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


class Opener:
    """Opens members of one container; keeps a zip open across calls (one per process)."""

    def __init__(self, container: str, is_zip: bool) -> None:
        self.container = container
        self.is_zip = is_zip
        self._zip: zipfile.ZipFile | None = None

    def open(self, name: str) -> BinaryIO:
        if not self.is_zip:
            return open(os.path.join(self.container, name), "rb")
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.container)
        # Reading the member whole is faster than Pillow seeking in a zip stream.
        return io.BytesIO(self._zip.read(name))

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None
