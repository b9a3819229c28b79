"""Decoded images to PNG grids with a caption, and Pillow sharpening.

Grids are written as PNG bytes through an atomic rename; Pillow's PNG encoder is
deterministic, so the same seed gives the same file byte for byte.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from zspace.data.preview import make_grid, png_bytes
from zspace.errors import ZspaceError
from zspace.fileio import atomic_write_bytes

MIN_CELL = 56  # small images (MNIST) are enlarged pixel-exactly to at least this
LINE_HEIGHT = 12
CHAR_WIDTH = 6  # Pillow's built-in bitmap font


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """NCHW floats in [0, 1] (torch or numpy) to NHWC uint8."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.dtype == np.uint8:
        return x
    return (np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(0, 2, 3, 1)


def sharpen(images: np.ndarray, factor: float | None) -> np.ndarray:
    """Pillow's Sharpness enhancement per image (1 = unchanged, 0 = blurred, > 1 sharper)."""
    if factor is None or factor == 1:
        return images
    if factor < 0:
        raise ZspaceError(f"sharpening factor {factor:g}: must be >= 0")
    out = np.empty_like(images)
    for i, img in enumerate(images):
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        res = np.asarray(ImageEnhance.Sharpness(pil).enhance(float(factor)))
        out[i] = res.reshape(img.shape)
    return out


def tile(rows: Sequence[np.ndarray], cols: int) -> np.ndarray:
    """Tile NHWC uint8 images, ``cols`` per line (the data preview's grid layout)."""
    return make_grid(rows, cols, min_cell=MIN_CELL)


def caption(grid: np.ndarray, text: str) -> np.ndarray:
    """Add a white band below the grid with ``text`` wrapped to its width."""
    width = grid.shape[1]
    # Pillow's built-in bitmap font covers Latin-1 only: other characters (a file
    # name in another script) become "?" instead of failing after the PNGs are half done
    text = text.encode("latin-1", "replace").decode("latin-1")
    lines: list[str] = []
    for part in text.split("\n"):
        lines += textwrap.wrap(part, max(8, (width - 4) // CHAR_WIDTH)) or [""]
    band = Image.new("L", (width, LINE_HEIGHT * len(lines) + 4), 255)
    draw = ImageDraw.Draw(band)
    font = _font()
    for i, line in enumerate(lines):
        draw.text((2, 2 + i * LINE_HEIGHT), line, fill=0, font=font)
    arr = np.asarray(band)[..., None]
    if grid.shape[2] == 3:
        arr = np.repeat(arr, 3, axis=2)
    return np.concatenate([grid, arr], axis=0)


def _font():
    """The small bitmap font built into Pillow (no files, same pixels everywhere)."""
    try:
        return ImageFont.load_default_imagefont()
    except AttributeError:  # Pillow < 10.1
        return ImageFont.load_default()


def write_grid(path: str | Path, rows: Sequence[np.ndarray], cols: int, text: str = "") -> Path:
    """Tile, caption and write one PNG atomically."""
    grid = tile(rows, min(cols, len(rows[0])))
    if text:
        grid = caption(grid, text)
    return atomic_write_bytes(path, png_bytes(grid))


def mean_radius(z: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(z, np.float64), axis=1).mean()) if len(z) else 0.0
