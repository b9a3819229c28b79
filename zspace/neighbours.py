"""Exact nearest neighbours and ball membership, shared by the meaningful-point rate
(zspace.generation.rate) and the generation metrics (zspace.evaluation.metrics).

Both functions return float64 results equal to a float64 brute force. ``knn`` ranks
candidates with a chunked float32 matmul (``|a-b|^2 = |a|^2 + |b|^2 - 2ab``, on
points centred at the reference mean so the cancellation stays small), keeps
``k + EXTRA`` of them per query and recomputes their distances exactly in float64:
the shortlist only has to contain the true k nearest, and float32 errors are far
smaller than the gaps between a point's k-th and (k+3)-th neighbour. It is 2.4-2.7x
faster than an all-float64 search (docs/generation.md). A faster backend (faiss)
can sit behind the same signatures.
"""

from __future__ import annotations

import numpy as np
import torch

from zspace.errors import ZspaceError

CHUNK = 2048
EXTRA = 3  # candidates kept beyond k for the exact float64 re-ranking


def _centred(queries: np.ndarray, reference: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    ref64 = np.asarray(reference, np.float64)
    q64 = np.asarray(queries, np.float64)
    if ref64.ndim != 2 or q64.ndim != 2 or q64.shape[1] != ref64.shape[1]:
        raise ZspaceError(
            f"points of shape {q64.shape} and {ref64.shape} are not two (N, d) sets of one d"
        )
    centre = ref64.mean(axis=0) if len(ref64) else 0.0
    return (
        torch.from_numpy(np.ascontiguousarray(q64 - centre)),
        torch.from_numpy(np.ascontiguousarray(ref64 - centre)),
    )


def knn(
    queries: np.ndarray,
    reference: np.ndarray,
    k: int = 1,
    *,
    exclude_self: bool = False,
    chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest reference points of every query: (distances (n, k) float64,
    indices (n, k) int64), nearest first.

    ``exclude_self``: the queries *are* the reference (same rows, same order), and a
    point is not its own neighbour. ``chunk``: queries per block (default ``CHUNK``).
    """
    k = int(k)
    chunk = int(chunk or CHUNK)
    if k < 1:
        raise ZspaceError(f"k = {k}: must be >= 1")
    q64, ref64 = _centred(queries, reference)
    available = len(ref64) - (1 if exclude_self else 0)
    if available < k:
        raise ZspaceError(
            f"the reference has {available} point(s) to compare against; k = {k} needs more"
        )
    ref = ref64.float()
    ref_sq = (ref * ref).sum(1)
    shortlist = min(k + EXTRA, available)
    dist = torch.empty((len(q64), k), dtype=torch.float64)
    index = torch.empty((len(q64), k), dtype=torch.int64)
    for s in range(0, len(q64), chunk):
        block64 = q64[s : s + chunk]
        # |a|^2 is constant along a row, so ranking needs only |b|^2 - 2ab (one addmm)
        score = torch.addmm(ref_sq, block64.float(), ref.T, alpha=-2.0)
        if exclude_self:
            rows = torch.arange(len(block64))
            score[rows, rows + s] = float("inf")
        cand = score.topk(shortlist, dim=1, largest=False, sorted=False).indices
        exact = (block64[:, None, :] - ref64[cand]).square_().sum(2)
        best = exact.topk(k, dim=1, largest=False, sorted=True)
        dist[s : s + chunk] = best.values
        index[s : s + chunk] = cand.gather(1, best.indices)
    return dist.sqrt_().numpy(), index.numpy()


def kth_distances(points: np.ndarray, k: int) -> np.ndarray:
    """Each point's distance to its k-th nearest *other* point of the same set: the
    radius of its k-NN ball (Kynkaanniemi et al. 2019)."""
    return knn(points, points, k, exclude_self=True)[0][:, k - 1]


def within_balls(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(n_points, n_centres) bool: point i lies in the closed ball of centre j
    (``|p_i - c_j| <= radii[j]``), from exact float64 distances, chunked.

    Squared distances come from a float64 matmul on centred points; entries within
    1e-9 (relative to the points' squared norms) of their ball's edge are
    recomputed by subtraction, so the answer equals a brute force even for points
    on the boundary or copies of a centre."""
    p64, c64 = _centred(points, centres)
    r = np.asarray(radii, np.float64)
    if r.shape != (len(c64),):
        raise ZspaceError(f"{len(r)} radii for {len(c64)} centres")
    r2 = torch.from_numpy(r * r)
    c_sq = (c64 * c64).sum(1)
    out = np.empty((len(p64), len(c64)), dtype=bool)
    rows = max(1, (CHUNK * 1024) // max(1, len(c64)))
    for s in range(0, len(p64), rows):
        block = p64[s : s + rows]
        d2 = torch.addmm(c_sq, block, c64.T, alpha=-2.0).add_((block * block).sum(1)[:, None])
        scale = c_sq[None, :] + (block * block).sum(1)[:, None]  # the matmul's error scale
        edge = (d2 - r2).abs() <= 1e-9 * (r2 + scale)
        if bool(edge.any()):
            i, j = edge.nonzero(as_tuple=True)
            d2[i, j] = (block[i] - c64[j]).square().sum(1)
        out[s : s + rows] = (d2 <= r2).numpy()
    return out
