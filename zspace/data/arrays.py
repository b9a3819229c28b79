"""Images given in memory (a notebook's arrays or tensors) and the ``npy:`` source.

``as_image_data`` checks and converts what a user passes to ``zspace.train(data=...)``
into the uint8 NHWC ``ImageData`` every stage works on; ``save_arrays`` writes it
into the run folder (``RUN/data/images.npy`` + ``labels.npy`` + ``label_names.json``)
and the run's config names it ``run:data``, so encode, generate, report and a later
``load_run`` read that run exactly like a file-backed one. ``npy:PATH`` (a folder in
that layout, or one ``.npy`` file of uint8 images) is also a source users can name.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write, atomic_write_json, read_json
from zspace.data.dataset import ImageData, class_file, class_names, conform
from zspace.data.readers.geometry import fit_array

if TYPE_CHECKING:
    from zspace.config import DataConfig

RUN_DATA = "run:data"  # the source of a run trained on in-memory images
IMAGES, LABELS, NAMES = "images.npy", "labels.npy", "label_names.json"


def _numpy(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise ZspaceError(f"{what}: cannot be read as an array ({exc})") from None
    return x


FORMS = {"NHWC": "(N, H, W, C)", "NCHW": "(N, C, H, W)", "NHW": "(N, H, W)"}


def image_layout(shape: tuple[int, ...], uint8: bool, one: tuple[int, ...] | None = None) -> str:
    """The one layout rule of every entry point that takes images: uint8 as NHWC (as
    stored), NCHW or NHW; floats in [0, 1] as NCHW or NHW; C is 1 or 3. ``one``: the
    (C, H, W) a model expects, which the layout must give, and then one image may omit N.
    A tie (uint8 (N, 3, 3, 3) without a model) reads NHWC and warns."""
    forms = [f for f in FORMS if uint8 or f != "NHWC"]
    forms += [f[1:] for f in forms] if one is not None else []
    fit = []
    for form in (f for f in forms if len(f) == len(shape)):
        dims = dict(zip(form, shape, strict=True))
        chw = (dims.get("C", 1), dims["H"], dims["W"])
        if chw[0] in (1, 3) and (one is None or chw == tuple(one)):
            fit.append(form)
    if {"NHWC", "NCHW"} <= set(fit) and np.prod(shape[1:]) > 1:
        what = f"uint8 images of shape {tuple(shape)} fit (N, H, W, C) and (N, C, H, W)"
        warnings.warn(f"{what}: read as (N, H, W, C), as stored", stacklevel=3)
    if fit:
        return fit[0]
    kind = "uint8" if uint8 else "float"
    *most, last = (FORMS[f] for f in forms if f in FORMS)
    want = f"{', '.join(most)} or {last} with C 1 or 3"
    if one is not None:
        want += f"; this model takes (C, H, W) = {tuple(one)}"
    hint = ""
    if not uint8 and len(shape) == 4 and shape[3] in (1, 3):
        hint = "; these look like (N, H, W, C): use x.permute(0, 3, 1, 2), or pass uint8"
    raise ZspaceError(f"{kind} images of shape {tuple(shape)}: expected {want}{hint}")


def to_nchw(x: Any, form: str) -> Any:
    """``x`` (NumPy or torch) in ``form`` (``image_layout``) as (N, C, H, W): a view."""
    x, form = (x, form) if "N" in form else (x[None], "N" + form)
    x, form = (x, form) if "C" in form else (x[:, None], "NCHW")
    axes = [form.index(a) for a in "NCHW"]
    return x.permute(*axes) if hasattr(x, "permute") else x.transpose(axes)


def as_image_data(
    images: Any, labels: Any = None, label_names: Any = None, source: str = RUN_DATA
) -> ImageData:
    """Images in a layout of ``image_layout`` (uint8 kept, floats in [0, 1] scaled to
    uint8, rounded) as uint8 NHWC; optional integer labels (N,) and their class names."""
    x = _numpy(images, "data")
    if x.ndim and len(x) < 2:  # before any reduction over the images
        raise ZspaceError(f"data: {len(x)} image(s); training needs at least 2")
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise ZspaceError(f"data: images of dtype {x.dtype}; expected uint8 or float")
    x = to_nchw(x, image_layout(x.shape, x.dtype == np.uint8)).transpose(0, 2, 3, 1)
    if x.dtype != np.uint8:
        if not np.isfinite(x).all():
            raise ZspaceError("data: the images hold NaN or inf values")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 1:
            hint = " (uint8-like values: pass a uint8 array or divide by 255)" if hi > 1.5 else ""
            raise ZspaceError(f"data: float images must lie in [0, 1]; got {lo:g}..{hi:g}{hint}")
        x = np.rint(x * 255.0).astype(np.uint8)
    lab = names = None
    if labels is not None:
        lab = _numpy(labels, "labels")
        if lab.shape != (len(x),):
            raise ZspaceError(f"labels: shape {lab.shape} does not match {len(x)} images")
        if not np.issubdtype(lab.dtype, np.integer) or (len(lab) and lab.min() < 0):
            raise ZspaceError("labels: expected non-negative integers (class indices)")
        lab = lab.astype(np.int64)
        names = class_names(lab, label_names, "label_names" if source == RUN_DATA else source)
    return ImageData(images=np.ascontiguousarray(x), source=source, labels=lab, label_names=names)


def save_arrays(folder: Path, data: ImageData) -> None:
    """Write the images (and labels) in the ``npy:`` layout, atomically."""
    atomic_write(folder / IMAGES, lambda fh: np.save(fh, np.asarray(data.images)))
    if data.labels is not None:
        atomic_write(folder / LABELS, lambda fh: np.save(fh, np.asarray(data.labels)))
        atomic_write_json(folder / NAMES, list(data.label_names or ()))


def read_npy(path: str, cfg: DataConfig) -> ImageData:
    """The ``npy:`` reader: a folder written by ``save_arrays`` or one .npy of images."""
    root = Path(path).expanduser()
    file = root / IMAGES if root.is_dir() else root
    if not file.is_file():
        raise ZspaceError(f"npy:{path}: no {IMAGES} found at {root}")
    images = _load_npy(file, f"npy:{path}", mmap=True)
    labels = names = None
    if root.is_dir() and (root / LABELS).is_file():
        labels = _load_npy(root / LABELS, f"npy:{path}")
        if (root / NAMES).is_file():
            names = read_json(root / NAMES)
            if not isinstance(names, list):
                raise ZspaceError(f"npy:{path}: {root / NAMES} is not a list of class names")
        names = names or class_file(root)
    return fit(as_image_data(images, labels, names, source=f"npy:{path}"), cfg)


def _load_npy(file: Path, source: str, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as exc:  # truncated, foreign, or pickled objects
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ZspaceError(f"{source}: {file} is not a readable .npy file ({first})") from None


def fit(data: ImageData, cfg: DataConfig) -> ImageData:
    """Crop/resize to ``data.image_size`` (0 keeps the size), as the file readers do."""
    return replace(data, images=fit_array(data.images, cfg.image_size, cfg.crop))


def in_memory(images: Any, labels: Any, label_names: Any, cfg: DataConfig) -> ImageData:
    """In-memory images as a run's data: checked, at the configured geometry and channels."""
    return conform(fit(as_image_data(images, labels, label_names), cfg), cfg)


def resolve_run_source(source: str, run_dir: Path | None) -> str:
    """``run:data`` -> ``npy:<run folder>/data``; other sources unchanged."""
    kind, _, rest = source.partition(":")
    if kind != "run":
        return source
    if run_dir is None:
        raise ZspaceError(
            f"data.source {source!r} names images saved inside a run folder; open the run "
            "(zspace.load_run) instead of reading its config alone"
        )
    return f"npy:{Path(run_dir) / rest}"
