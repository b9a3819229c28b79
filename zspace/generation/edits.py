"""Paths through the latent space: interpolation, traversals, attribute vectors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zspace.errors import ZspaceError
from zspace.generation import paths
from zspace.generation.common import (
    Log,
    as_run,
    code,
    counts,
    decode_u8,
    fmt,
    seed_of,
    split_images,
    split_index,
    train_latents,
)
from zspace.generation.index import publish
from zspace.generation.recon import load_image_file
from zspace.generation.results import SampleImage


def interpolate(
    run: Any,
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
    ends = []
    for x in (a, b):
        if isinstance(x, int) or (isinstance(x, str) and x.isdigit()):
            split_, data, index = split_index(run, split)
            if not 0 <= int(x) < len(index):
                raise ZspaceError(f"image {x} does not exist: {split_} has {len(index)} images")
            ends.append(data.images[index[int(x)]])
        else:
            ends.append(load_image_file(x, run))
    za, zb = code(run, np.stack(ends), seed)
    rows = [decode_u8(run, paths.lerp(za, zb, steps)), decode_u8(run, paths.slerp(za, zb, steps))]
    file = f"interp-{a}-{b}.png".replace("/", "_")
    file = file if len(file) < 80 else f"interp-seed{seed}.png"
    cap = (
        f"{a} -> {b} in {steps} steps; top: straight line, bottom: spherical; "
        f"radius {np.linalg.norm(za):.2f} -> {np.linalg.norm(zb):.2f}"
    )
    params = {"a": str(a), "b": str(b), "steps": steps}
    return publish(run, rows, steps, file, "interpolation", "lerp+slerp", params, cap, log)


def traverse(
    run: Any,
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
    counts(count=count, strengths=len(strengths))
    lat = train_latents(run)
    ref = lat.mu if lat.mu is not None else lat.z
    direction = (
        paths.axis_direction(ref, axis) if axis is not None else paths.pca_direction(ref, pca)
    )
    _, imgs = split_images(run, split, count, seed)
    codes = code(run, imgs, seed)
    rows = [decode_u8(run, paths.traverse(z0, direction, strengths)) for z0 in codes]
    images = np.concatenate(rows)  # one line per image, its strengths across
    what = f"axis {axis}" if axis is not None else f"PCA direction {pca}"
    file = f"traverse-axis{axis}.png" if axis is not None else f"traverse-pca{pca}.png"
    cap = (
        f"{what}, strengths {', '.join(fmt(s) for s in strengths)} x its std "
        f"({np.linalg.norm(direction):.3g}); one row per image"
    )
    kind = "axis" if axis is not None else "pca"
    params = {"axis": axis, "pca": pca, "strengths": list(strengths)}
    return publish(run, [images], len(strengths), file, "traversal", kind, params, cap, log)


def attribute(
    run: Any,
    name: str,
    *,
    strengths: Sequence[float] = (0, 0.5, 1, 1.5, 2),
    count: int = 4,
    split: str | None = None,
    seed: int | None = None,
    log: Log = None,
) -> SampleImage:
    """Add the attribute vector (mean z with minus mean z without, from the training
    latents) to images that lack the attribute, at the given strengths."""
    run = as_run(run)
    seed = seed_of(run, seed)
    counts(count=count, strengths=len(strengths))
    lat = train_latents(run)
    ref = lat.mu if lat.mu is not None else lat.z
    vec = paths.attribute_vector(ref, lat.attr, lat.attr_names, name)
    split, data, index = split_index(run, split)
    col = list(data.attr_names).index(name)
    values = np.asarray(data.attr)[index, col]
    # images known to lack it; failing that, those with no value; failing that, any
    pick = next((p for p in (index[values < 0], index[values == 0]) if len(p)), index)
    rows_idx = np.sort(np.random.default_rng(seed).choice(pick, min(count, len(pick)), False))
    codes = code(run, np.ascontiguousarray(data.images[rows_idx]), seed)
    rows = [decode_u8(run, paths.traverse(z0, vec, strengths)) for z0 in codes]
    images = np.concatenate(rows)  # one line per image, its strengths across
    file = f"attribute-{name}.png"
    cap = (
        f"+ {name} vector (|v| = {np.linalg.norm(vec):.2f}) at strengths "
        f"{', '.join(fmt(s) for s in strengths)}; {split} images without {name}"
    )
    params = {
        "attribute": name,
        "strengths": list(strengths),
        "split": split,
        "images": [int(i) for i in rows_idx],
    }
    return publish(run, [images], len(strengths), file, "attribute", "attribute", params, cap, log)
