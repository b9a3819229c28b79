"""Images from files (folder, zip, CelebA) through the uint8 cache.

The first use decodes every file once (in parallel) into the cache; later uses
memory-map the result. Which files were skipped as unreadable is kept in the
cache's meta, so the kept names (and with them labels and attributes) are known
again on reuse without decoding anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from zspace.core.errors import ZspaceError
from zspace.data.cache import CacheSpec, cache_root, open_or_build
from zspace.data.readers.decode import decode_to_npy
from zspace.data.readers.geometry import Geometry, native_channels, output_size
from zspace.data.readers.imagefiles import ImageFiles, Opener

if TYPE_CHECKING:
    from zspace.config import DataConfig

log = logging.getLogger("zspace.data")
PROBE_IMAGES = 8


@dataclass(frozen=True)
class CachedImages:
    images: np.ndarray  # (N, H, W, C) uint8, memory-mapped
    names: tuple[str, ...]  # the file of each row
    details: dict = field(default_factory=dict)


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


def read_cached(
    files: ImageFiles, geo: Geometry, cfg: DataConfig, *, kind: str, label: str
) -> CachedImages:
    """Decode ``files`` at ``geo`` into the cache (or reuse it) and return the images."""
    spec = CacheSpec(
        kind, files.container, geo.describe(), files.listing_sha256, cache_root(cfg.cache_dir)
    )

    def build(tmp: Path) -> dict:
        report = decode_to_npy(files, geo, tmp, label=label)
        return {"source": label, "skipped": [list(f) for f in report.failures]}

    cached = open_or_build(spec, build)
    skipped = cached.meta.get("skipped", [])
    bad = {name for name, _ in skipped}
    names = tuple(n for n in files.names if n not in bad)
    if len(names) != cached.images.shape[0]:  # cannot happen unless the cache was edited
        raise ZspaceError(
            f"{label}: cache {cached.meta_path} does not match the source; delete it to rebuild"
        )
    if skipped:
        name, reason = skipped[0]
        log.warning(
            "%s: skipped %d unreadable image(s) of %d (e.g. %s: %s)",
            label,
            len(skipped),
            len(files),
            name,
            reason,
        )
    details = {
        "cache": {
            "path": str(cached.meta_path),
            "data": str(cached.meta_path.with_name(cached.meta["data_file"])),
            "state": cached.state,
            "bytes": int(cached.images.nbytes),
            "build_seconds": cached.meta.get("build_seconds"),
        },
        "files": len(files),
        "skipped": len(skipped),
        "skipped_examples": skipped[:5],
    }
    return CachedImages(cached.images, names, details)
