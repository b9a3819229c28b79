"""The meaningful-point rate of a run's samplers and its bookkeeping in rates.json.

The measurement itself (nearest-neighbour distances, the reference and its
threshold) is ``zspace.generation.rate``; this module decodes, re-encodes, adds the
held-out control and keeps ``samples/rates.json`` consistent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from zspace.core.fileio import atomic_write_json
from zspace.data import held_out_split
from zspace.generation import grids, samplers
from zspace.generation.common import Log, as_run, code, counts, fits, pick, seed_of, train_latents
from zspace.generation.index import samples_dir
from zspace.generation.rate import build_reference
from zspace.generation.results import Rates
from zspace.generation.sampling import parse_samplers, sampler_draw


def meaningful_rates(
    run: Any,
    sampler: str | Sequence[str] = samplers.SAMPLERS,
    *,
    n: int = 1000,
    limits: Sequence[float] | None = None,
    seed: int | None = None,
    reference_size: int = samplers.DEFAULT_SUBSAMPLE,
    quantile: float = 0.95,
    components: int | Sequence[int] | None = None,
    subsample: int = samplers.DEFAULT_SUBSAMPLE,
    log: Log = None,
) -> Rates:
    """Share of decoded-and-re-encoded random points that land within the data, per
    sampler (and per uniform limit), with the data itself as a control; written to
    samples/rates.json (entries for the same sampler and parameters are replaced)."""
    run = as_run(run)
    names = parse_samplers(sampler)
    counts(n=n)
    fits(run, n, f"n = {n:,}")
    seed = seed_of(run, seed)
    lat = train_latents(run)
    use_mu = lat.mu is not None
    ref_z = lat.mu if lat.mu is not None else lat.z
    ref = build_reference(ref_z, reference_size, seed, quantile)
    if ref.warning() and log:
        log(f"warning: {ref.warning()}")

    results = []

    def record(name: str, params: dict, z: np.ndarray) -> None:
        dist = ref.distances(code(run, run.decode(np.asarray(z, np.float32)), seed))
        row = {
            "sampler": name,
            "params": params,
            "rate": float((dist <= ref.threshold).mean()),
            "n": len(z),
            "mean_radius": grids.mean_radius(z),
            "median_distance": float(np.median(dist)),
        }
        results.append(row)
        if log:
            shown = ", ".join(f"{k}={v}" for k, v in params.items())
            log(f"{name}({shown}): rate {row['rate']:.3f}, mean radius {row['mean_radius']:.2f}")

    # control: held-out images (test, else valid split), encoded like the rest, so it
    # shows what a real, unseen point scores. Training latents only when the run truly
    # has no held-out image; a data folder that cannot be read is an error, not that.
    data, splits = run.data()
    split = held_out_split(splits)
    if split is not None:
        held_out = np.ascontiguousarray(data.images[pick(splits[split], n, seed + 1)])
        record("data", {"control": f"{split} images, encoded"}, code(run, held_out, seed))
    else:
        rng = np.random.default_rng(seed + 1)
        record(
            "data",
            {"control": "training latents (no held-out split)"},
            ref_z[rng.choice(len(ref_z), size=min(n, len(ref_z)), replace=False)],
        )
    lims = [samplers.check_limit(x) for x in (limits or samplers.REFERENCE_LIMITS)]
    for name in names:
        for lim in lims if name == "uniform" else [None]:
            draw, params = sampler_draw(
                run,
                name,
                limit=lim,
                components=components,
                subsample=subsample,
                log=log,
                latents=lat.z,
            )
            record(name, params, draw(n, np.random.default_rng(seed)))
    out: dict[str, Any] = {
        "threshold": ref.threshold,
        "quantile": quantile,
        "reference_size": len(ref.points),
        "spread": ref.spread,
        "warning": ref.warning(),
        "space": "mu" if use_mu else "z",
        "seed": seed,
        "results": results,
    }
    path = samples_dir(run) / "rates.json"
    same_ref = ("threshold", "quantile", "reference_size", "space", "seed")
    if path.is_file():
        # keep earlier rows of other samplers only when they were measured against
        # this very reference; otherwise they would show under the wrong threshold
        try:
            old = json.loads(path.read_text())
            if all(old.get(k) == out[k] for k in same_ref):
                keys = {(r["sampler"], json.dumps(r["params"], sort_keys=True)) for r in results}
                kept = [
                    r
                    for r in old["results"]
                    if r["sampler"] != "data"
                    and (r["sampler"], json.dumps(r["params"], sort_keys=True)) not in keys
                ]
                out["results"] = results[:1] + kept + results[1:]  # the control first
        except (ValueError, KeyError, TypeError, AttributeError, OSError):
            pass  # unreadable or foreign: replaced by this measurement
    atomic_write_json(path, out)
    return Rates(**{**out, "results": results})
