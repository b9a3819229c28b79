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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zspace.analysis.common import subsample
from zspace.analysis.neighbours import knn
from zspace.core.errors import ZspaceError
from zspace.generation.samplers import DEFAULT_SUBSAMPLE

CHUNK = 2048  # queries per block of the search


def nearest_distances(
    queries: np.ndarray, reference: np.ndarray, *, exclude_self: bool = False
) -> np.ndarray:
    """Euclidean distance from each query to its nearest reference point
    (``exclude_self`` when the queries are the reference): the exact float64
    search of ``zspace.analysis.neighbours.knn`` with k = 1."""
    if len(reference) - (1 if exclude_self else 0) < 1:
        raise ZspaceError("the reference has no points to compare against")
    return knn(queries, reference, 1, exclude_self=exclude_self, chunk=CHUNK)[0][:, 0]


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
        queries = np.asarray(queries)
        if queries.ndim != 2 or queries.shape[1] != self.points.shape[1]:
            raise ZspaceError(
                f"points of shape {queries.shape} do not match the reference "
                f"(d = {self.points.shape[1]})"
            )
        return nearest_distances(queries, self.points)

    def inside(self, queries: np.ndarray) -> np.ndarray:
        return self.distances(queries) <= self.threshold

    def rate(self, queries: np.ndarray) -> float:
        return float(self.inside(queries).mean()) if len(queries) else float("nan")


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
