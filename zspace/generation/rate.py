"""The meaningful-point rate: how many random z-points decode to something the
encoder places back among the data.

For a batch of random z-points: decode, re-encode, and measure each re-encoded
point's distance to its nearest neighbour in a seeded reference subsample of the
encoded training points. A point counts as meaningful when that distance is below
the ``quantile`` (default 95th percentile) of the nearest-neighbour distances of the
reference points among themselves (each point's nearest *other* reference point).
Held-out points of the data distribution therefore score about ``quantile``; points
far outside it score 0.

It is a proxy: it asks whether the decoder's output looks like data *to the
encoder*, not to a person. An encoder can map garbage near the data (then the rate
is too high), and a distance threshold in d dimensions depends on the reference
size (more reference points, smaller distances). Compare rates of one run between
samplers, or of runs with the same z_dim and reference size.

``meaningful_rates`` decodes, re-encodes, adds the held-out control and keeps
``samples/rates.json`` consistent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zspace.analysis.common import subsample
from zspace.analysis.neighbours import knn
from zspace.core.errors import ZspaceError
from zspace.core.fileio import digest, update_json
from zspace.data import held_out_split
from zspace.generation.common import Log, check_args, pick, start_drawing
from zspace.generation.images import code, mean_radius
from zspace.generation.index import samples_dir
from zspace.generation.results import Rates, params_text
from zspace.generation.samplers import DEFAULT_SUBSAMPLE, SAMPLERS, samplers_for
from zspace.latents.store import load_latents
from zspace.runs.run import RunLike


def nearest_distances(
    queries: np.ndarray, reference: np.ndarray, *, exclude_self: bool = False
) -> np.ndarray:
    """Euclidean distance from each query to its nearest reference point
    (``exclude_self`` when the queries are the reference): the exact float64
    search of ``zspace.analysis.neighbours.knn`` with k = 1."""
    return knn(queries, reference, 1, exclude_self=exclude_self)[0][:, 0]


@dataclass
class Reference:
    """Reference points and the distance threshold of "within the data"."""

    points: np.ndarray
    threshold: float
    quantile: float
    self_distances: np.ndarray
    spread: float  # median distance of the reference points from their mean

    @property
    def too_sparse(self) -> bool:
        """True when "near a data point" is no tighter than "near the data's middle":
        too few reference points for z_dim, so nearly any point inside the cloud
        counts and rates near 1 say little."""
        return self.threshold >= self.spread

    def warning(self) -> str | None:
        if not self.too_sparse:
            return None
        return (
            f"the rate's threshold ({self.threshold:.3g}) is not below the data's median "
            f"distance from their mean ({self.spread:.3g}): {len(self.points)} reference "
            f"points are too few for d = {self.points.shape[1]}, so rates say little"
        )

    def distances(self, queries: np.ndarray) -> np.ndarray:
        return nearest_distances(queries, self.points)

    def rate(self, queries: np.ndarray) -> float:
        """The share of queries within the threshold of the data."""
        return float((self.distances(queries) <= self.threshold).mean()) if len(queries) else np.nan


def build_reference(
    z: np.ndarray, size: int = DEFAULT_SUBSAMPLE, seed: int = 0, quantile: float = 0.95
) -> Reference:
    """A seeded subsample of encoded training points and its NN-distance threshold."""
    if not 0 < quantile < 1:
        raise ZspaceError(f"quantile {quantile}: must lie between 0 and 1")
    z = np.asarray(z)
    if z.ndim != 2 or len(z) < 3:
        raise ZspaceError(f"need at least 3 encoded points of shape (N, d); got {z.shape}")
    z = z[subsample(len(z), size, seed)]
    d = nearest_distances(z, z, exclude_self=True)
    z64 = np.asarray(z, np.float64)
    spread = float(np.median(np.linalg.norm(z64 - z64.mean(axis=0), axis=1)))
    return Reference(
        np.ascontiguousarray(z, np.float32), float(np.quantile(d, quantile)), quantile, d, spread
    )


SAME_REFERENCE = ("threshold", "quantile", "reference_size", "space", "seed")


def meaningful_rates(
    run: RunLike,
    sampler: str | Sequence[str] = SAMPLERS,
    *,
    n: int = 1000,
    limits: Sequence[float] | None = None,
    seed: int | None = None,
    reference_size: int = DEFAULT_SUBSAMPLE,
    quantile: float = 0.95,
    components: int | Sequence[int] | None = None,
    subsample: int = DEFAULT_SUBSAMPLE,
    log: Log = None,
) -> Rates:
    """Share of decoded-and-re-encoded random points that land within the data, per
    sampler (and per uniform limit), with the data itself as a control; written to
    samples/rates.json (entries for the same sampler and parameters are replaced)."""
    check_args(sampler=sampler, n=n, limits=limits, seed=seed, reference_size=reference_size,
               quantile=quantile, components=components, subsample=subsample)  # fmt: skip
    run, names, seed = start_drawing(run, sampler, n, seed)
    lat = load_latents(run)
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
            "mean_radius": mean_radius(z),
            "median_distance": float(np.median(dist)),
        }
        results.append(row)
        if log:
            rate, radius = row["rate"], row["mean_radius"]
            log(f"{name}({params_text(params)}): rate {rate:.3f}, mean radius {radius:.2f}")

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
    for s in samplers_for(
        run,
        names,
        limits=limits,
        components=components,
        subsample=subsample,
        log=log,
        latents=lat.z,
    ):
        record(s.name, s.params, s.sample(n, np.random.default_rng(seed)))
    out: dict[str, Any] = {
        "threshold": ref.threshold,
        "quantile": quantile,
        "reference_size": len(ref.points),
        "spread": ref.spread,
        "warning": ref.warning(),
        "space": "mu" if lat.mu is not None else "z",
        "seed": seed,
        "results": results,
    }
    keys = {(r["sampler"], digest(r["params"])) for r in results}

    def merged(old: Any) -> dict[str, Any]:
        """Earlier rows of other samplers stay when they were measured against this very
        reference; otherwise they would show under the wrong threshold."""
        try:
            if all(old.get(k) == out[k] for k in SAME_REFERENCE):
                kept = [
                    r
                    for r in old["results"]
                    if r["sampler"] != "data" and (r["sampler"], digest(r["params"])) not in keys
                ]
                return {**out, "results": results[:1] + kept + results[1:]}  # the control first
        except (KeyError, TypeError, AttributeError):
            pass  # missing or foreign: replaced by this measurement
        return out

    update_json(samples_dir(run) / "rates.json", merged)
    return Rates(**out)
