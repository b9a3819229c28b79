"""Grids of decoded random points, one per sampler (and uniform limit, sharpening)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from zspace.core.errors import ZspaceError
from zspace.generation import grids, samplers
from zspace.generation.common import (
    Log,
    as_run,
    counts,
    fits,
    fmt,
    seed_of,
    sharpen_list,
    train_latents,
)
from zspace.generation.index import publish
from zspace.generation.naming import sample_file
from zspace.generation.results import SampleImages


def parse_samplers(sampler: str | Sequence[str]) -> list[str]:
    names = sampler.split(",") if isinstance(sampler, str) else list(sampler)
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise ZspaceError(f"no sampler given; choose from {', '.join(samplers.SAMPLERS)}")
    return [samplers.check_sampler(n) for n in names]


def sampler_draw(
    run: Any,
    name: str,
    *,
    limit: float | None = None,
    components: Any = None,
    subsample: int = samplers.DEFAULT_SUBSAMPLE,
    refit: bool = False,
    log: Log = None,
    latents: np.ndarray | None = None,
) -> tuple[Callable[[int, np.random.Generator], np.ndarray], dict[str, Any]]:
    """A function drawing (n, d) points for sampler ``name``, and its parameters.

    Fits use the run's config seed, not the drawing seed, so grids with other seeds
    reuse the saved fit instead of refitting (and overwriting) it. ``latents``: the
    encoded training z when the caller has them already (read from the run if not)."""
    d = run.model.cfg.z_dim
    name = samplers.check_sampler(name)
    if name == "normal":
        return (lambda n, rng: samplers.sample_normal(n, d, rng)), {}
    if name == "uniform":
        lim = samplers.check_limit(1.0 if limit is None else limit)
        return (lambda n, rng: samplers.sample_uniform(n, d, lim, rng)), {"limit": lim}
    z = train_latents(run).z if latents is None else latents
    if z.shape[1] != d:
        raise ZspaceError(
            f"latents have d = {z.shape[1]} but the model has z_dim {d}; "
            f"run `zspace encode {run.path}` again"
        )
    fit = samplers.fitted(
        run.path,
        name,
        z,
        components=components,
        sample_size=subsample,
        seed=run.config.seed,
        refit=refit,
        log=log,
    )
    params: dict[str, Any] = {"fitted_on": int(z.shape[0])}
    if name == "gmm":
        params.update(n_components=fit.info["n_components"], subsample=fit.info["subsample"])
    return fit.sample, params


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
    sharp = f", sharpened x{fmt(p['sharpen'])}" if p.get("sharpen") is not None else ""
    return f"{p['n']} points from {where}, seed {p['seed']}{sharp}; mean radius |z| {radius:.2f}"


def generate(
    run: Any,
    sampler: str | Sequence[str] = "normal",
    *,
    n: int = 64,
    cols: int = 8,
    seed: int | None = None,
    limits: Sequence[float] | None = None,
    sharpen: float | Sequence[float] | None = None,
    components: int | Sequence[int] | None = None,
    subsample: int = samplers.DEFAULT_SUBSAMPLE,
    refit: bool = False,
    log: Log = None,
) -> SampleImages:
    """Decode ``n`` random z-points per sampler (and per uniform limit and sharpening
    factor) into captioned PNG grids under samples/; returns the index entries."""
    run = as_run(run)
    names = parse_samplers(sampler)
    counts(n=n, cols=cols)
    fits(run, n, f"n = {n:,}")
    seed = seed_of(run, seed)
    lims = [samplers.check_limit(x) for x in (limits or samplers.REFERENCE_LIMITS)]
    factors = sharpen_list(sharpen)
    fitted = {"gauss", "gmm"} & set(names)
    z_train = train_latents(run).z if fitted else None  # read once for all fits
    entries = []
    for name in names:
        for lim in lims if name == "uniform" else [None]:
            draw, params = sampler_draw(
                run,
                name,
                limit=lim,
                components=components,
                subsample=subsample,
                refit=refit,
                log=log,
                latents=z_train,
            )
            z = draw(n, np.random.default_rng(seed))
            images = grids.to_uint8(run.decode(torch.from_numpy(z)))
            radius = grids.mean_radius(z)
            for f in factors:
                p = {**params, "n": n, "seed": seed}
                if f is not None:
                    p["sharpen"] = f
                file = sample_file(
                    "grid", ("", name), ("limit", lim), ("k", p.get("n_components")),
                    ("sharp", f), ("n", n), ("seed", seed),
                )  # fmt: skip
                cap = grid_caption(name, p, run.model.cfg.z_dim, radius)
                shown_images = [grids.sharpen(images, f)]
                params_used = {**p, "mean_radius": radius}
                entries.append(
                    publish(run, shown_images, cols, file, "grid", name, params_used, cap, log)
                )
    return SampleImages(tuple(entries))
