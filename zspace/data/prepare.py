"""The one way every stage gets a run's images: load the source, check it fits the model.

Training, encoding, generation and the evaluators all read data through
``prepare``, so a run's splits are the same everywhere and a bad source or an
impossible geometry is refused before anything is written.
"""

from __future__ import annotations

import numpy as np

from zspace.config import Config, check_geometry
from zspace.data.dataset import ImageData, split_indices
from zspace.data.sources import load_data
from zspace.errors import ZspaceError


def prepare(cfg: Config) -> tuple[ImageData, dict[str, np.ndarray]]:
    """Load the data of ``cfg`` and its splits (train, valid and, when the source has
    one, test), after checking that the images are square and fit the model."""
    data = load_data(cfg.data)
    h, w, c = data.shape
    if h != w:
        raise ZspaceError(f"data: images are {h}x{w}; zspace models need square images")
    check_geometry(cfg, h, c)
    return data, split_indices(data, cfg.data.valid_fraction, cfg.seed)


def input_shape_of(data: ImageData) -> tuple[int, int, int]:
    """(C, H, W) of the images, the shape the model is built for."""
    h, w, c = data.shape
    return c, h, w
