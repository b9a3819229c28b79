"""Grids of paths through the latent space: interpolation, traversals, attribute
vectors (the paths themselves: ``zspace.generation.paths``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zspace.core.checks import finite_float32
from zspace.core.errors import ZspaceError
from zspace.generation import paths
from zspace.generation.common import (
    Log,
    check_args,
    fits,
    fmt,
    pick,
    seed_of,
    split_images,
    split_index,
)
from zspace.generation.images import code, decode_u8, load_image_file
from zspace.generation.index import publish
from zspace.generation.naming import sample_file
from zspace.generation.results import SampleImage
from zspace.latents.store import load_latents
from zspace.runs.run import RunLike, as_run


def interpolate(
    run: RunLike,
    a: int | str | Path = 0,
    b: int | str | Path = 1,
    *,
    steps: int = 10,
    split: str | None = None,
    seed: int | None = None,
    log: Log = None,
) -> SampleImage:
    """Two rows: the straight line and the spherical path between the z-points of
    two images (positions in the split, or image files)."""
    run = as_run(run)
    seed = seed_of(run, seed)
    fits(run, 2 * steps, f"steps = {steps:,}")
    ends, names, used_split = [], [], None
    for x in (a, b):
        if isinstance(x, int) or (isinstance(x, str) and x.isdigit()):
            used_split, data, index = split_index(run, split)
            if not 0 <= int(x) < len(index):
                raise ZspaceError(
                    f"image {x} does not exist: {used_split} has {len(index)} images (0.."
                    f"{len(index) - 1})"
                )
            ends.append(data.images[index[int(x)]])
            names.append(f"{used_split} image {int(x)}")
        else:
            ends.append(load_image_file(x, run))
            names.append(Path(x).name)
    real = np.stack(ends)
    za, zb = code(run, real, seed)
    first, last = real[:1], real[1:]
    rows = [
        np.concatenate([first, decode_u8(run, path(za, zb, steps)), last])
        for path in (paths.lerp, paths.slerp)
    ]
    labels = [str(int(str(x))) if str(x).isdigit() else str(x) for x in (a, b)]
    file = sample_file(
        "interp", ("", labels[0]), ("", labels[1]), ("", used_split), ("steps", steps),
        ("seed", seed),
    )  # fmt: skip
    where = f" (positions in the {used_split} split)" if used_split else ""
    cap = (
        f"{names[0]} -> {names[1]}{where}: the first and last columns are the two images "
        f"themselves, between them {steps} decoded steps; top row the straight line, bottom "
        f"row the spherical path; radius |z| {np.linalg.norm(za):.2f} -> "
        f"{np.linalg.norm(zb):.2f}"
    )
    params = {"a": str(a), "b": str(b), "split": used_split, "steps": steps, "seed": seed}
    return publish(run, rows, steps + 2, file, "interpolation", "lerp+slerp", params, cap, log)


def traverse(
    run: RunLike,
    *,
    axis: int | None = None,
    pca: int | None = None,
    strengths: Sequence[float] = (-3, -2, -1, 0, 1, 2, 3),
    count: int = 4,
    split: str | None = None,
    seed: int | None = None,
    log: Log = None,
) -> SampleImage:
    """Rows of images (one per base image) moved along an original axis or a PCA
    direction of the training latents, in steps of that direction's std."""
    run = as_run(run)
    if (axis is None) == (pca is None):
        raise ZspaceError("traverse: give exactly one of axis or pca")
    seed = seed_of(run, seed)
    strengths = _strengths(run, count, strengths)
    lat = load_latents(run)
    ref = lat.mu if lat.mu is not None else lat.z
    if axis is not None:
        direction = paths.axis_direction(ref, axis)
    else:
        assert pca is not None  # exactly one of axis and pca, checked above
        direction = paths.pca_direction(ref, pca)
    used_split, imgs = split_images(run, split, count, seed)
    images = _moved(run, imgs, direction, strengths, seed)
    what = f"original axis {axis}" if axis is not None else f"principal direction {pca}"
    file = sample_file(
        "traverse", ("axis", axis), ("pca", pca), ("s", list(strengths)), ("", used_split),
        ("n", len(imgs)), ("seed", seed),
    )  # fmt: skip
    cap = (
        f"{len(imgs)} {used_split} images (one row each, seed {seed}) moved along {what} "
        f"at {', '.join(fmt(s) for s in strengths)} x its std in the training latents "
        f"({np.linalg.norm(direction):.3g})"
    )
    params = {"axis": axis, "pca": pca, "strengths": [float(s) for s in strengths],
              "split": used_split, "n": len(imgs), "seed": seed}  # fmt: skip
    kind = "axis" if axis is not None else "pca"
    return publish(run, [images], len(strengths), file, "traversal", kind, params, cap, log)


def attribute(
    run: RunLike,
    name: str,
    *,
    strengths: Sequence[float] | None = None,
    count: int = 4,
    split: str | None = None,
    seed: int | None = None,
    log: Log = None,
) -> SampleImage:
    """Add the attribute vector (mean z with minus mean z without, from the training
    latents) to images that lack the attribute, at the given strengths (default: 0 up
    to a shift of 3 stds of the latents along the vector, at least 0..2)."""
    run = as_run(run)
    seed = seed_of(run, seed)
    lat = load_latents(run)
    ref = lat.mu if lat.mu is not None else lat.z
    stats = paths.attribute_stats(ref, lat.attr, lat.attr_names, name)
    strengths = _strengths(
        run, count, stats.default_strengths() if strengths is None else strengths
    )
    split, data, index = split_index(run, split)
    values = np.asarray(data.attr)[index, list(data.attr_names).index(name)]
    # images known to lack it; failing that, those with no value; failing that, any
    lacking = next((p for p in (index[values < 0], index[values == 0]) if len(p)), index)
    rows_idx = pick(lacking, count, seed)
    images = _moved(run, data.images[rows_idx], stats.vector, strengths, seed)
    file = sample_file(
        "attribute", ("", name), ("s", strengths), ("", split), ("n", len(rows_idx)),
        ("seed", seed),
    )  # fmt: skip
    cap = (
        f"+ {name} vector v = mean of {stats.n_with:,} training images with {name} minus "
        f"mean of {stats.n_without:,} without (|v| = {stats.length:.2f}, "
        f"{stats.relative:.2g} x the latents' std along it, {stats.spread:.3g}), added at "
        f"{', '.join(fmt(s) for s in strengths)} x v to {len(rows_idx)} {split} images "
        f"without {name} (one row each)"
    )
    params = {
        "attribute": name,
        "strengths": [float(s) for s in strengths],
        "split": split,
        "images": [int(i) for i in rows_idx],
        **{k: getattr(stats, k) for k in ("n_with", "n_without", "length", "spread")},
        "seed": seed,
    }
    return publish(run, [images], len(strengths), file, "attribute", "attribute", params, cap, log)


def _strengths(run: Any, count: int, strengths: Sequence[float]) -> list[float]:
    """Checked strengths, and refused when count x strengths images cannot be decoded."""
    check_args(count=count, strengths=len(strengths))
    checked = [finite_float32("strength", s) for s in strengths]
    fits(run, count * len(checked), f"count = {count:,} x {len(checked)} strengths")
    return checked


def _moved(
    run: Any, images: np.ndarray, direction: np.ndarray, strengths: list[float], seed: int
) -> np.ndarray:
    """Each image's code moved along ``direction`` at each strength, decoded: one line
    per image, its strengths across."""
    codes = code(run, np.ascontiguousarray(images), seed)
    return np.concatenate([decode_u8(run, paths.traverse(z, direction, strengths)) for z in codes])
