"""Images in and out of a run's model, and the PNG grids they are shown in.

Inputs go through the run's task exactly as in training (noise for ``denoise``, grey
for ``recolor``), seeded, so grids reproduce; a user's own image file is cropped and
resized like the training data. Grids are written as PNG bytes through an atomic
rename; Pillow's PNG encoder is deterministic, so the same seed gives the same file
byte for byte. A grid carries no text: its caption lives in ``samples/index.json``
and is shown once, under the image, by the report and in notebooks (the caption rule
of ``zspace.reporting.text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageEnhance

from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_bytes
from zspace.data.preview import make_grid, png_bytes

MIN_CELL = 56  # small images (MNIST) are enlarged pixel-exactly to at least this
TASK_SEED_OFFSET = 104_729  # keeps the task's noise stream apart from other seeded draws


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """NCHW floats in [0, 1] (torch or numpy) to NHWC uint8."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.dtype == np.uint8:
        return x
    return (np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(0, 2, 3, 1)


def sharpened(images: np.ndarray, factor: float | None) -> np.ndarray:
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


def write_grid(path: str | Path, rows: Sequence[np.ndarray], cols: int) -> Path:
    """Tile and write one PNG atomically."""
    return atomic_write_bytes(path, png_bytes(tile(rows, min(cols, len(rows[0])))))


def mean_radius(z: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(z, np.float64), axis=1).mean()) if len(z) else 0.0


def load_image_file(path: str | Path, run: Any) -> np.ndarray:
    """One image file as (H, W, C) uint8 in the run's geometry (crop, size, channels)."""
    from PIL import UnidentifiedImageError

    from zspace.data.readers.geometry import Geometry, fit

    path = Path(path)
    if not path.is_file():
        raise ZspaceError(f"image file not found: {path}")
    c, h, w = run.input_shape
    try:
        with Image.open(path) as img:
            return fit(img, Geometry(h, w, c, run.config.data.crop))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ZspaceError(f"{path} does not decode as an image: {exc}") from None


def model_input(run: Any, target: torch.Tensor, seed: int) -> torch.Tensor:
    """The run's task applied to clean targets (seeded, so grids reproduce)."""
    from zspace.data.tasks import make_input

    gen = torch.Generator().manual_seed(seed + TASK_SEED_OFFSET)
    return make_input(target.clone(), run.config.data, gen)


def decode_u8(run: Any, z: np.ndarray) -> np.ndarray:
    """Decoded z-points as NHWC uint8 images."""
    return to_uint8(run.decode(np.asarray(z, np.float32)))


def code(run: Any, images: np.ndarray | torch.Tensor, seed: int) -> np.ndarray:
    """Encoded points of images (uint8 NHWC or float NCHW; mu for a VAE), after the
    run's task."""
    z, mu, _ = run.encode(model_input(run, run.as_batch(images), seed))
    return (mu if mu is not None else z).numpy()
