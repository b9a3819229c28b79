"""KMeans inertia against the number of clusters, with an elbow estimate.

Elbow (Kneedle-style): put k on [0, 1] and log(inertia) on [0, 1] (1 at the
smallest k, 0 at the largest); a convex decreasing curve lies below the chord
y = 1 - x. The elbow is the k with the largest distance ``d = (1 - x) - y`` below
the chord. Its **strength** is that distance relative to the most it could be at
that k, ``s = d / (1 - x)`` = the share of the chord's remaining drop that the curve
has already made: 0 for a straight line, 1 for a sharp corner (all the drop before
the elbow, flat after it). Below ``min_strength`` (default 0.7) the curve bends too
gently to name a k and the result says "no pronounced elbow": a single Gaussian
blob or a uniform cube reaches about 0.4, well-separated clusters about 0.95.

The sweep runs with ``threads`` BLAS/OpenMP threads (default 1): on shared or busy
cores scikit-learn's OpenMP loops spin-wait and run several times slower with more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from zspace.analysis.common import (
    Analysis,
    AnalysisResult,
    array_field,
    as_points,
    library_seed,
    positive,
    subsample,
    with_params,
)
from zspace.core.errors import ZspaceError


@dataclass(frozen=True)
class KmeansParams:
    k_min: int = 2
    k_max: int = 80
    k_step: int = 4  # the reference's 2 takes 2.5x as long for the same elbow (performance.md)
    sample: int = 20000
    batch_size: int = 4096
    n_init: int = 3
    min_strength: float = 0.7
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:  # what needs no data is checked before any work
        if self.k_min < 1 or self.k_step < 1 or self.k_max < self.k_min:
            raise ZspaceError(
                "kmeans: need 1 <= k_min <= k_max and k_step >= 1 "
                f"(got {self.k_min}, {self.k_max}, {self.k_step})"
            )
        for name in ("sample", "batch_size", "n_init"):
            positive(f"kmeans.{name}", getattr(self, name))


@dataclass(frozen=True, repr=False, kw_only=True)
class KmeansResult(AnalysisResult):
    name = "kmeans"
    n_total: int
    n: int
    ks: list[int] = array_field(json=True)
    # mean squared distance to the nearest centre, per point
    inertia: list[float] = array_field(json=True)
    elbow: int | None  # None: no pronounced elbow
    best_k: int  # the k with the largest distance below the chord, pronounced or not
    strength: float
    min_strength: float
    seconds: float
    distance: np.ndarray = array_field()

    def summary(self) -> str:
        head = (
            f"KMeans inertia for k = {self.ks[0]}..{self.ks[-1]} on {self.n:,} points "
            f"falls from {self.inertia[0]:.4g} to {self.inertia[-1]:.4g} per point; "
        )
        if self.elbow is None:
            return head + (
                f"no pronounced elbow (strongest bend at k = {self.best_k}, "
                f"strength {self.strength:.2f} < {self.min_strength:g})"
            )
        return head + f"elbow at k = {self.elbow} (strength {self.strength:.2f})"


def elbow(ks, inertia, min_strength: float = 0.7) -> tuple[int | None, int, float, np.ndarray]:
    """(elbow or None, k of the strongest bend, its strength, distance per k)."""
    k = np.asarray(ks, dtype=np.float64)
    y = np.log(np.maximum(np.asarray(inertia, dtype=np.float64), 1e-300))
    if len(k) < 3 or y[0] == y[-1]:
        return None, int(k[0]), 0.0, np.zeros(len(k))
    x = (k - k[0]) / (k[-1] - k[0])
    yn = (y - y[-1]) / (y[0] - y[-1])
    dist = (1.0 - x) - yn
    i = int(np.argmax(dist))
    strength = float(dist[i] / (1.0 - x[i])) if x[i] < 1 else 0.0
    best = int(k[i])
    return (best if strength >= min_strength else None), best, strength, dist


def kmeans_analysis(
    z: np.ndarray,
    params: KmeansParams | None = None,
    **overrides: Any,
) -> KmeansResult:
    """MiniBatchKMeans inertia for k in range(k_min, k_max + 1, k_step) on a seeded subsample."""
    p = with_params(KmeansParams, params, overrides)
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    z = as_points(z)
    idx = subsample(len(z), p.sample, p.seed)
    x = np.ascontiguousarray(z[idx], dtype=np.float32)
    ks = list(range(p.k_min, p.k_max + 1, p.k_step))
    if ks[-1] > len(x):
        raise ZspaceError(f"kmeans.k_max = {p.k_max} exceeds the {len(x)} points clustered")
    started = time.perf_counter()
    inertia = []
    from zspace.core.progress import bar

    with threadpool_limits(limits=max(1, p.threads)):
        for k in bar(ks, desc=f"KMeans k = {ks[0]}..{ks[-1]} on {len(x):,} points", unit="k"):
            km = MiniBatchKMeans(
                n_clusters=k,
                batch_size=p.batch_size,
                n_init=p.n_init,
                random_state=library_seed(p.seed),
                max_no_improvement=10,
            ).fit(x)
            inertia.append(float(km.inertia_) / len(x))
    secs = time.perf_counter() - started
    el, best, strength, dist = elbow(ks, inertia, p.min_strength)
    return KmeansResult(
        n_total=len(z),
        n=len(x),
        ks=ks,
        inertia=inertia,
        elbow=el,
        best_k=best,
        strength=strength,
        min_strength=float(p.min_strength),
        seconds=secs,
        distance=dist,
    )


ANALYSIS = Analysis(
    "kmeans", "KMeans inertia and elbow", KmeansParams, lambda lat, p: kmeans_analysis(lat.z, p)
)
