"""Built-in data: scikit-learn's handwritten digits, shipped inside scikit-learn.

1,797 real 8x8 scans with 17 grey levels, upscaled (bicubic) to a conv-friendly
size (32x32 by default) so that the tool runs end to end without a download.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from zspace.core.errors import ZspaceError
from zspace.core.resources import check_memory
from zspace.data.dataset import ImageData
from zspace.data.readers.geometry import fit_array

if TYPE_CHECKING:
    from zspace.config import DataConfig

BUILTIN_SETS = ("digits",)
DEFAULT_SIZE = 32
DIGITS_COUNT = 1797


def digits_images(size: int = DEFAULT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(N, size, size, 1) uint8 images (upscaled bicubic) and (N,) int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    raw = np.clip(bunch.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    return fit_array(raw[..., None], size, "center"), bunch.target.astype(np.int64)


def read_builtin(path: str, cfg: DataConfig) -> ImageData:
    name = path or "digits"
    if name not in BUILTIN_SETS:
        raise ZspaceError(
            f"data.source 'builtin:{name}': unknown built-in set (known: {', '.join(BUILTIN_SETS)})"
        )
    size = cfg.image_size or DEFAULT_SIZE
    if size < 8:
        raise ZspaceError(f"data.image_size = {size}: the built-in digits need at least 8")
    check_memory(
        f"data.image_size = {size}: the {DIGITS_COUNT:,} built-in digits at {size}x{size}",
        DIGITS_COUNT * size * size,
        "use a smaller data.image_size",
    )
    images, labels = digits_images(size)
    return ImageData(
        images=images,
        source=f"builtin:{name}",
        labels=labels,
        label_names=tuple(str(i) for i in range(10)),
    )
