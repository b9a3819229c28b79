"""A PNG grid of samples exactly as the model will see them (after geometry and task).

For ``reconstruct`` the grid shows the images; for ``denoise`` and ``recolor``
each row of inputs is followed by the row of their targets, so the corruption is
visible next to the clean image. The images are a seeded random sample shown in
random order (not the first images of each class), each with its label under it
when the source has labels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from zspace.core.checks import positive
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_bytes
from zspace.data.dataset import ImageData, class_names, split_indices
from zspace.data.loader import epoch_seed, to_float_nchw
from zspace.data.tasks import make_input

if TYPE_CHECKING:
    from zspace.config import DataConfig

PAD = 2
PAD_VALUE = 255
MIN_CELL = 64  # small images (MNIST, CIFAR) are enlarged to at least this, pixel-exact
LABEL_BAND = 12  # pixels of the label line under each line of images


def pick(data: ImageData, cfg: DataConfig, split: str, count: int, seed: int) -> np.ndarray:
    """A seeded random choice of ``count`` image indices from ``split``, in index order."""
    splits = split_indices(data, cfg.valid_fraction, seed)
    if split not in splits:
        raise ZspaceError(f"split '{split}' does not exist here (have: {', '.join(splits)})")
    index = splits[split]
    if not len(index):
        raise ZspaceError(f"split '{split}' is empty")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(index, size=min(count, len(index)), replace=False))


def grid_rows(data: ImageData, cfg: DataConfig, index: np.ndarray, seed: int) -> list[np.ndarray]:
    """Rows of uint8 (N, H, W, C) images: the targets, preceded by the inputs for a task."""
    target = to_float_nchw(torch.from_numpy(np.ascontiguousarray(data.images[index])))
    gen = torch.Generator().manual_seed(epoch_seed(seed, 0, 1))
    model_input = make_input(target, cfg, gen)
    shown = [target] if cfg.task == "reconstruct" else [model_input, target]
    return [
        (t.permute(0, 2, 3, 1) * 255).round().clamp(0, 255).to(torch.uint8).numpy() for t in shown
    ]


def make_grid(rows: Sequence[np.ndarray], columns: int, min_cell: int = MIN_CELL) -> np.ndarray:
    """Tile NHWC uint8 images into a grid; several equal-length row sets interleave line
    by line (e.g. inputs above targets). Small images are enlarged pixel-exactly to at
    least ``min_cell`` pixels so a grid of 28x28 digits stays readable."""
    n, h, w, c = rows[0].shape
    scale = max(1, -(-min_cell // max(h, w)))
    h, w = h * scale, w * scale
    lines = -(-n // columns)
    height = lines * len(rows) * (h + PAD) + PAD
    width = columns * (w + PAD) + PAD
    grid = np.full((height, width, c), PAD_VALUE, np.uint8)
    for k in range(n):
        line, col = divmod(k, columns)
        for r, images in enumerate(rows):
            img = images[k].repeat(scale, 0).repeat(scale, 1) if scale > 1 else images[k]
            top = PAD + (line * len(rows) + r) * (h + PAD)
            left = PAD + col * (w + PAD)
            grid[top : top + h, left : left + w] = img
    return grid


def png_bytes(grid: np.ndarray, compress_level: int = 6) -> bytes:
    """A (H, W, 1|3) uint8 grid as PNG bytes (zlib level 6: Pillow's default)."""
    image = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def labelled_grid(rows: Sequence[np.ndarray], columns: int, labels: Sequence[str]) -> np.ndarray:
    """``make_grid`` with a line of labels under each line of images (one per cell)."""
    n = len(rows[0])
    parts = []
    for start in range(0, n, columns):
        grid = make_grid([r[start : start + columns] for r in rows], columns)
        cell_w = (grid.shape[1] - PAD) // columns
        band = Image.new("L", (grid.shape[1], LABEL_BAND), PAD_VALUE)
        draw = ImageDraw.Draw(band)
        for k, text in enumerate(labels[start : start + columns]):
            text = str(text).encode("latin-1", "replace").decode("latin-1")
            width = max(1, (cell_w - 4) // 6)
            draw.text(
                (PAD + k * cell_w + 1, 0), text[:width], fill=0, font=ImageFont.load_default()
            )
        arr = np.asarray(band)[..., None].repeat(grid.shape[2], axis=2)
        parts += [grid[:-PAD] if start + columns < n else grid, arr]
    return np.concatenate(parts, axis=0)


def preview(
    data: ImageData,
    cfg: DataConfig,
    out: Path,
    *,
    count: int = 64,
    columns: int = 8,
    split: str = "train",
    seed: int = 0,
) -> int:
    """Write the grid PNG to ``out``; returns the number of images shown."""
    positive("count", count)
    positive("columns", columns)
    index = pick(data, cfg, split, count, seed)
    index = index[np.random.default_rng(seed + 1).permutation(len(index))]  # random order
    rows = grid_rows(data, cfg, index, seed)
    cols = min(columns, len(index))
    if data.labels is None:
        grid = make_grid(rows, cols)
    else:
        names = class_names(data.labels, data.label_names)
        grid = labelled_grid(rows, cols, [names[v] for v in np.asarray(data.labels)[index]])
    atomic_write_bytes(out, png_bytes(grid))
    return len(index)
