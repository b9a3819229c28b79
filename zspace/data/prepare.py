"""The one way every stage gets a run's images: load the source, check it fits the model.

Training, encoding, generation and the evaluators all read data through
``prepare``, so a run's splits are the same everywhere and a bad source or an
impossible geometry is refused before anything is written.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from zspace.config import Config, check_geometry
from zspace.core.errors import ZspaceError
from zspace.data.arrays import resolve_run_source
from zspace.data.dataset import ImageData, split_indices
from zspace.data.sources import load_data


def prepare(
    cfg: Config, run_dir: str | Path | None = None
) -> tuple[ImageData, dict[str, np.ndarray]]:
    """Load the data of ``cfg`` and its splits (train, valid and, when the source has
    one, test), after checking that the images are square and fit the model.
    ``run_dir``: the run folder, for runs trained on in-memory images (``run:data``)."""
    source = resolve_run_source(cfg.data.source, Path(run_dir) if run_dir else None)
    data = load_data(replace(cfg.data, source=source))
    return data, check_data(cfg, data)


def check_data(cfg: Config, data: ImageData) -> dict[str, np.ndarray]:
    """The splits of ``data`` after checking the images are square and fit the model."""
    h, w, c = data.shape
    if h != w:
        raise ZspaceError(f"data: images are {h}x{w}; zspace models need square images")
    check_geometry(cfg, h, c)
    return split_indices(data, cfg.data.valid_fraction, cfg.seed)


def input_shape_of(data: ImageData) -> tuple[int, int, int]:
    """(C, H, W) of the images, the shape the model is built for."""
    h, w, c = data.shape
    return c, h, w
