"""The image files of a folder (recursive) or a zip, listed once and opened by name.

Both containers look the same to the decoders: a sorted tuple of relative POSIX
names plus a listing (name, size, mtime or CRC) whose checksum tells the cache
whether the source changed. Zips are read in place, never unpacked, because data
folders are often read-only and CelebA's zip alone is 1.4 GB.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from PIL import Image

from zspace.core.errors import ZspaceError
from zspace.core.fileio import decode_text, read_text, sha256_of
from zspace.data.readers.geometry import Geometry, native_channels, output_size

if TYPE_CHECKING:
    from zspace.config import DataConfig

PROBE_IMAGES = 8

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
    lines = "".join(f"{name}\0{size}\0{stamp}\n" for name, size, stamp in entries)
    return sha256_of(lines.encode("utf-8", "surrogateescape"))


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


def resolve_geometry(
    files: ImageFiles, cfg: DataConfig, label: str, default_size: int = 0
) -> Geometry:
    """The output geometry; native size and channels come from the first readable images.

    ``channels = 0`` gives RGB when any of the first few images is in colour, grey
    otherwise; ``image_size = 0`` keeps the first image's size (after the crop).
    """
    sizes, modes = [], []
    opener = Opener(files.container, files.is_zip)
    first_error = ""
    try:
        for name in files.names:
            try:
                with opener.open(name) as fh, Image.open(fh) as image:
                    sizes.append(image.size)
                    modes.append(image.mode)
            except Exception as exc:  # judged again (and reported) when decoding
                first_error = first_error or f"{name}: {type(exc).__name__}: {exc}"
                continue
            if len(sizes) >= PROBE_IMAGES:
                break
    finally:
        opener.close()
    if not sizes:
        raise ZspaceError(
            f"{label}: none of the {len(files)} image(s) could be read (e.g. {first_error})"
        )
    channels = cfg.channels or max(native_channels(m) for m in modes)
    height, width = output_size(*sizes[0], cfg.image_size or default_size, cfg.crop)
    return Geometry(height, width, channels, cfg.crop)


def find_text(
    name: str, folders: Iterable[Path] = (), zip_path: Path | None = None
) -> tuple[str, str] | None:
    """(text, where) of the text file ``name`` (annotations, labels) in the first of
    ``folders`` that has it, else the shallowest member of that name in the zip."""
    for folder in folders:
        if (folder / name).is_file():
            return read_text(folder / name, "utf-8-sig"), str(folder / name)
    if zip_path is None or not zip_path.is_file() or not zipfile.is_zipfile(zip_path):
        return None
    with zipfile.ZipFile(zip_path) as zf:
        members = [m for m in zf.namelist() if m.rsplit("/", 1)[-1] == name]
        if not members:
            return None
        member = min(members, key=lambda m: m.count("/"))
        return decode_text(
            zf.read(member), f"{zip_path}:{member}", "utf-8-sig"
        ), f"{zip_path}:{member}"
