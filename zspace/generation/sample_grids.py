"""Grids of decoded random points, one per sampler (and uniform limit, sharpening)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zspace.core.progress import progress as progress_switch
from zspace.generation.common import Log, check_args, fmt, sharpen_list, start_drawing
from zspace.generation.images import decode_u8, mean_radius, sharpened
from zspace.generation.index import publish
from zspace.generation.naming import sample_file
from zspace.generation.results import SampleImages
from zspace.generation.samplers import DEFAULT_SUBSAMPLE, pca_note, samplers_for
from zspace.runs.run import RunLike


def _an(k: Any) -> str:
    """The article before a spoken number: "an 8-component", "a 16-component"."""
    return "an" if str(k).startswith("8") or str(k) in ("11", "18") else "a"


def grid_caption(name: str, p: dict[str, Any], d: int, radius: float) -> str:
    """One sentence for a sampler grid: where its points come from, their parameters,
    and their mean radius (the grid's only caption)."""
    where = {
        "normal": "N(0, I)",
        "uniform": f"the box [-{fmt(p.get('limit', 1.0))}, {fmt(p.get('limit', 1.0))}]^{d}",
        "gauss": f"a Gaussian fitted to {p.get('fitted_on', 0):,} training latents",
        "gmm": f"{_an(p.get('n_components'))} {p.get('n_components')}-component Gaussian "
        "mixture fitted to "
        f"{p.get('subsample', 0):,} of {p.get('fitted_on', 0):,} training latents",
    }[name]
    where += f" {pca_note(p, d)}" if "pca_dims" in p else ""
    sharp = f", sharpened x{fmt(p['sharpen'])}" if p.get("sharpen") is not None else ""
    return f"{p['n']} points from {where}, seed {p['seed']}{sharp}; mean radius |z| {radius:.2f}"


def generate(
    run: RunLike,
    sampler: str | Sequence[str] = "normal",
    *,
    n: int = 64,
    cols: int = 8,
    seed: int | None = None,
    limits: Sequence[float] | None = None,
    sharpen: float | Sequence[float] | None = None,
    components: int | Sequence[int] | None = None,
    subsample: int = DEFAULT_SUBSAMPLE,
    refit: bool = False,
    log: Log = print,
    progress: bool | None = None,
) -> SampleImages:
    """Decode ``n`` random z-points per sampler (and per uniform limit and sharpening
    factor) into captioned PNG grids under samples/; returns the index entries."""
    check_args(sampler=sampler, n=n, cols=cols, seed=seed, limits=limits, sharpen=sharpen,
               components=components, subsample=subsample, refit=refit)  # fmt: skip
    run, names, seed = start_drawing(run, sampler, n, seed)
    factors = sharpen_list(sharpen)
    entries = []
    with progress_switch(progress):
        for s in samplers_for(
            run,
            names,
            limits=limits,
            components=components,
            subsample=subsample,
            refit=refit,
            log=log,
        ):
            z = s.sample(n, np.random.default_rng(seed))
            images, radius = decode_u8(run, z), mean_radius(z)
            for f in factors:
                p = {**s.params, "n": n, "seed": seed, **({} if f is None else {"sharpen": f})}
                file = sample_file(
                    "grid", ("", s.name), ("limit", p.get("limit")), ("k", p.get("n_components")),
                    ("sharp", f), ("n", n), ("seed", seed),
                )  # fmt: skip
                cap = grid_caption(s.name, p, s.d, radius)
                params = {**p, "mean_radius": radius}
                item = publish(
                    run, [sharpened(images, f)], cols, file, "grid", s.name, params, cap, log
                )
                entries.append(item)
    return SampleImages(entries)
