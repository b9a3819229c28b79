"""Crop, resize and colour-convert images to the training geometry.

One place decides how an image becomes a training sample, so that the JPEG folder,
the zip, the IDX and the CIFAR readers all give the same pixels for the same
geometry. Centre crop to a square (``crop = "center"``) or squash
(``crop = "none"``), then resize:

- downscaling uses Pillow's antialiased HAMMING filter. On CelebA (178x178 crop to
  96x96) it is the Pillow filter closest to an exact area average (mean absolute
  difference 0.5 grey levels, against 1.9 for BOX, 0.9 for BICUBIC and 1.4 for
  LANCZOS), and one of the fastest;
- upscaling (e.g. MNIST 28 -> 32) uses BICUBIC.

For JPEG, ``Image.draft`` lets libjpeg decode at 1/2, 1/4 or 1/8 scale; it is used
only when the reduced image is still at least twice the target size, so the final
antialiased resize keeps its quality (the rule Pillow's own ``thumbnail`` uses).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageOps

from zspace.core.errors import ZspaceError
from zspace.core.resources import check_memory

# Bump when the pixels this module produces change: it is part of the cache key.
PIPELINE_VERSION = 2
DOWN = Image.Resampling.HAMMING
UP = Image.Resampling.BICUBIC
DRAFT_GAP = 2.0
MODES = {1: "L", 3: "RGB"}
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


@dataclass(frozen=True)
class Geometry:
    """Output of the pipeline: ``height x width x channels``, reached with ``crop``."""

    height: int
    width: int
    channels: int
    crop: str = "center"

    @property
    def mode(self) -> str:
        return MODES[self.channels]

    def describe(self) -> dict:
        return {**asdict(self), "pipeline": PIPELINE_VERSION}


def crop_box(width: int, height: int, crop: str) -> tuple[int, int, int, int]:
    """The source rectangle: the centred square for "center", everything for "none"."""
    if crop == "none":
        return 0, 0, width, height
    side = min(width, height)
    left = (width - side) // 2
    top = (height - side) // 2
    return left, top, left + side, top + side


def output_size(width: int, height: int, size: int, crop: str) -> tuple[int, int]:
    """(height, width) of the result for a source of ``width x height``; size 0 = native."""
    if size:
        return size, size
    left, top, right, bottom = crop_box(width, height, crop)
    return bottom - top, right - left


def fit(image: Image.Image, geo: Geometry) -> np.ndarray:
    """Decode (if not yet), orient, convert, crop and resize one image to ``geo``.

    Returns a (H, W, C) uint8 array. Call on a freshly opened, not yet loaded image
    so the JPEG draft can apply.
    """
    _draft(image, geo)
    image = _upright(image)
    image = _to_mode(image, geo.mode)
    box = crop_box(image.width, image.height, geo.crop)
    if box != (0, 0, image.width, image.height):
        # Crop first: a resize with ``box=`` would let the filter reach outside the box.
        image = image.crop(box)
    if image.size == (geo.width, geo.height):
        out = image
    else:
        shrink = geo.width <= image.width and geo.height <= image.height
        out = image.resize((geo.width, geo.height), DOWN if shrink else UP)
    arr = np.asarray(out, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def fit_array(images: np.ndarray, size: int, crop: str) -> np.ndarray:
    """The same pipeline for images that are already uint8 NHWC arrays (IDX, CIFAR, the
    built-in digits, in-memory images): ``crop``, then resize to ``size`` (0 keeps it)."""
    n, h, w, c = images.shape
    if not h or not w:
        raise ZspaceError(f"data: images of {h}x{w} pixels: nothing to train on")
    geo = Geometry(*output_size(w, h, size, crop), c, crop)
    left, top, right, bottom = crop_box(w, h, crop)
    if (bottom - top, right - left) == (geo.height, geo.width):
        return np.ascontiguousarray(images[:, top:bottom, left:right])
    check_memory(
        f"{n:,} images at {geo.height}x{geo.width}x{c}",
        n * geo.height * geo.width * c,
        "use a smaller data.image_size",
    )
    out = np.empty((n, geo.height, geo.width, c), np.uint8)
    for i, img in enumerate(images):
        out[i] = fit(Image.fromarray(np.ascontiguousarray(img[..., 0] if c == 1 else img)), geo)
    return out


def _draft(image: Image.Image, geo: Geometry) -> None:
    if image.format != "JPEG":
        return
    left, top, right, bottom = crop_box(image.width, image.height, geo.crop)
    scale = max(geo.width / (right - left), geo.height / (bottom - top)) * DRAFT_GAP
    if scale >= 1:
        return
    want = (math.ceil(image.width * scale), math.ceil(image.height * scale))
    image.draft(geo.mode, want)


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (phone photos are often stored sideways)."""
    if image.format in ("JPEG", "WEBP", "TIFF", "PNG") and image.getexif().get(0x0112, 1) != 1:
        return ImageOps.exif_transpose(image)
    return image


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    if image.mode == mode:
        return image
    if image.mode.startswith("I;16") or image.mode == "I":
        # 16-bit greys: Pillow's convert("L") would clip at 255 instead of scaling.
        arr = np.asarray(image).astype(np.uint32) >> 8
        image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    elif image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent parts become black instead of whatever colour they hide.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return image.convert(mode)


def native_channels(mode: str) -> int:
    """1 for grey Pillow modes, 3 for everything else."""
    return 1 if mode in GREY_MODES else 3
