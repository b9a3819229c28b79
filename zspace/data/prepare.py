"""The one way every stage gets a run's images: load the source, check it fits the model.

Training, encoding, generation and the evaluators all read data through
``prepare``, so a run's splits are the same everywhere and a bad source or an
impossible geometry is refused before anything is written.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from zspace.config import Config, check_geometry
from zspace.core.errors import ZspaceError
from zspace.data.arrays import RUN_DATA, in_memory, resolve_run_source
from zspace.data.dataset import ImageData, split_indices
from zspace.data.sources import load_data


def prepare(
    cfg: Config, run_dir: str | Path | None = None, *, geometry: bool = True
) -> tuple[ImageData, dict[str, np.ndarray]]:
    """Load the data of ``cfg`` and its splits (train, valid and, when the source has
    one, test), after checking that the images are square and fit the model.
    ``run_dir``: the run folder, for runs trained on in-memory images (``run:data``).
    ``geometry=False``: the model is not built from ``cfg.model`` (an imported one)."""
    source = resolve_run_source(cfg.data.source, Path(run_dir) if run_dir else None)
    data = load_data(replace(cfg.data, source=source))
    return data, check_data(cfg, data, geometry=geometry)


def new_run_data(
    cfg: Config, images: Any, labels: Any, label_names: Any, *, geometry: bool = True
) -> tuple[Config, ImageData, dict[str, np.ndarray]]:
    """A new run's config, data and splits: ``cfg``'s source, or in-memory ``images``
    (whose source becomes ``run:data``: the caller saves them into ``RUN/data/``)."""
    if images is None:
        if labels is not None or label_names is not None:
            raise ZspaceError("labels=... needs data=...: the labels of in-memory images")
        return (cfg, *prepare(cfg, geometry=geometry))
    cfg = replace(cfg, data=replace(cfg.data, source=RUN_DATA))
    data = in_memory(images, labels, label_names, cfg.data)
    return cfg, data, check_data(cfg, data, geometry=geometry)


def check_data(cfg: Config, data: ImageData, *, geometry: bool = True) -> dict[str, np.ndarray]:
    """The splits of ``data`` after checking the images are square and fit the model."""
    h, w, c = data.shape
    if h != w:
        raise ZspaceError(f"data: images are {h}x{w}; zspace models need square images")
    if geometry:
        check_geometry(cfg, h, c)
    return split_indices(data, cfg.data.valid_fraction, cfg.seed)


def input_shape_of(data: ImageData) -> tuple[int, int, int]:
    """(C, H, W) of the images, the shape the model is built for."""
    h, w, c = data.shape
    return c, h, w
