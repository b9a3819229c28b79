"""Exact nearest neighbours and ball membership, shared by the meaningful-point rate
(zspace.generation.rate) and the generation metrics (zspace.evaluation.metrics).

Both functions return float64 results equal to a float64 brute force. ``knn`` ranks
candidates with a chunked float32 matmul (``|a-b|^2 = |a|^2 + |b|^2 - 2ab``, on
points centred at the reference mean so the cancellation stays small), keeps
``k + EXTRA`` of them per query and recomputes their distances exactly in float64:
the shortlist only has to contain the true k nearest, and float32 errors are far
smaller than the gaps between a point's k-th and (k+3)-th neighbour. It is 2.4-2.7x
faster than an all-float64 search (docs/generation.md). Above
``knn_faiss.MIN_PAIRS`` query-reference pairs, where it is faster, ``knn`` runs the
same shortlist-and-re-rank through faiss's exact flat index when the extra
``zspace[faiss]`` is installed (``backend="auto"``); the results are the same.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

import zspace.analysis.knn_faiss as knn_faiss
from zspace.core.errors import ZspaceError

CHUNK = 2048
BACKENDS = ("auto", "torch", "faiss")
EXTRA = 3  # candidates kept beyond k for the exact float64 re-ranking


def _check(queries: tuple[int, ...], reference: tuple[int, ...]) -> None:
    if len(reference) != 2 or len(queries) != 2 or queries[1] != reference[1]:
        raise ZspaceError(
            f"points of shape {queries} and {reference} are not two (N, d) sets of one d"
        )


def _centred(points: np.ndarray, centre: np.ndarray | float) -> torch.Tensor:
    """The points minus ``centre`` (a reference's mean), in float64."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(points, np.float64) - centre))


def _mean(points: np.ndarray) -> np.ndarray | float:
    """The centre the points are searched about: their float64 mean (0 when empty)."""
    return np.asarray(points, np.float64).mean(axis=0) if len(points) else 0.0


def knn(
    queries: np.ndarray,
    reference: np.ndarray,
    k: int = 1,
    *,
    exclude_self: bool = False,
    chunk: int | None = None,
    backend: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest reference points of every query: (distances (n, k) float64,
    indices (n, k) int64), nearest first.

    ``exclude_self``: the queries *are* the reference (same rows, same order), and a
    point is not its own neighbour. ``chunk``: queries per block (default ``CHUNK``).
    ``backend``: "torch" (the search here), "faiss" (``zspace.analysis.knn_faiss``), or "auto":
    faiss from ``knn_faiss.MIN_PAIRS`` query-reference pairs on, when installed.
    """
    if backend not in BACKENDS:
        raise ZspaceError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if int(k) < 1:
        raise ZspaceError(f"k = {k}: must be >= 1")
    _check(np.shape(queries), np.shape(reference))
    pairs = len(queries) * len(reference)
    use_faiss = backend == "faiss" or (
        backend == "auto" and pairs >= knn_faiss.MIN_PAIRS and knn_faiss.available()
    )
    index = NeighbourIndex(reference, faiss=use_faiss)
    return index.query(queries, k, exclude_self=exclude_self, chunk=chunk)


class NeighbourIndex:
    """A reference set prepared once for exact k-NN queries (centred at its mean in
    float64, the float32 shortlist built): ``knn`` makes one per call; a caller that
    asks many times (the explorer, per click) keeps one."""

    def __init__(self, reference: np.ndarray, *, faiss: bool = False) -> None:
        self.centre = _mean(reference)
        self.ref64 = _centred(reference, self.centre)
        # float32 points stored (d, N): one query is a fast vector-matrix product (52 against
        # 84 ms for 162,770 x 256), a block of queries costs the same, the scores are equal
        ref32 = self.ref64.float().T.contiguous().T
        self.search = knn_faiss.shortlist(self.ref64) if faiss else _shortlist(ref32)
        self.bound = float32_error_bound(self.ref64)

    def query(
        self,
        queries: np.ndarray,
        k: int = 1,
        *,
        exclude_self: bool = False,
        chunk: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """As ``knn`` against this reference."""
        k, chunk, ref64 = int(k), int(chunk or CHUNK), self.ref64
        _check(np.shape(queries), tuple(ref64.shape))
        q64 = _centred(queries, self.centre)
        available = len(ref64) - (1 if exclude_self else 0)
        if available < k:
            raise ZspaceError(
                f"the reference has {available} point(s) to compare against; k = {k} needs more"
            )
        # a query's own row may be among the candidates
        m = min(k + EXTRA + (1 if exclude_self else 0), len(ref64))
        dist = torch.empty((len(q64), k), dtype=torch.float64)
        index = torch.empty((len(q64), k), dtype=torch.int64)
        for s in range(0, len(q64), chunk):
            block64 = q64[s : s + chunk]
            # the float32 squared distance of the last candidate: no point left out is nearer
            last, cand = self.search(block64, m)
            if m == len(ref64):
                last = torch.full_like(last, float("inf"))  # nothing was left out
            d2, idx = finish(block64, ref64, cand, last, self.bound, k, exclude_self, s)
            dist[s : s + chunk] = d2
            index[s : s + chunk] = idx
        return dist.sqrt_().numpy(), index.numpy()


def _shortlist(
    ref: torch.Tensor,
) -> Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]:
    """The float32 search: |a|^2 is constant along a row, so ranking needs only
    |b|^2 - 2ab (one addmm per block of queries)."""
    ref_sq = (ref * ref).sum(1)

    def search(q64: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        top = torch.addmm(ref_sq, q64.float(), ref.T, alpha=-2.0).topk(m, dim=1, largest=False)
        return top.values[:, -1].double() + (q64 * q64).sum(1), top.indices

    return search


def float32_error_bound(ref64: torch.Tensor):
    """A function of the queries' norms: the most a float32 squared distance
    ``|a|^2 + |b|^2 - 2ab`` (points cast to float32, dot products of length d in any
    order) can be off from the exact one, for any reference point b:
    (d + 3) u (|a| + max |b|)^2 with u = 2^-24."""
    d = ref64.shape[1]
    top = float(ref64.square().sum(1).max().sqrt()) if len(ref64) else 0.0
    return lambda q_norm: (d + 3) * 2.0**-24 * (q_norm + top) ** 2


def finish(
    block64: torch.Tensor,
    ref64: torch.Tensor,
    cand: torch.Tensor,
    last: torch.Tensor,
    bound,
    k: int,
    exclude_self: bool,
    start: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact k nearest among float32 candidates, proven or searched again.

    ``cand`` (n, m): candidate rows per query (-1 for none), ``last`` (n,): the
    float32 squared distance of the farthest candidate. The candidates' distances are
    recomputed by subtraction in float64. When ``last`` minus the float32 error bound
    is above the k-th exact distance, no point outside the shortlist can be nearer and
    the answer is exact; otherwise (tight clusters far from the mean, where float32
    cannot tell near neighbours apart) the query is searched again in float64 against
    every reference point. Shared by the torch and the faiss search."""
    own = torch.arange(start, start + len(cand)) if exclude_self else None
    d2, idx = _rerank(block64, ref64, cand, k, own)
    q_norm = block64.square().sum(1).sqrt()
    unsure = (last - bound(q_norm) <= d2[:, -1]).nonzero().flatten()
    if len(unsure):
        d2[unsure], idx[unsure] = _float64_search(
            block64[unsure], ref64, k, unsure + start if exclude_self else None
        )
    return d2, idx


def _float64_search(q64, ref64, k, self_rows):
    """k nearest by float64 matrix products (error ~1e-16 relative, far below any
    real gap), re-ranked by subtraction: for the few queries float32 cannot settle."""
    d2 = torch.addmm((ref64 * ref64).sum(1), q64, ref64.T, alpha=-2.0)
    if self_rows is not None:
        d2[torch.arange(len(q64)), self_rows] = float("inf")
    m = min(k + EXTRA, ref64.shape[0] - (1 if self_rows is not None else 0))
    return _rerank(q64, ref64, d2.topk(m, dim=1, largest=False, sorted=False).indices, k, self_rows)


def _rerank(q64, ref64, cand, k, self_rows):
    """(squared distances, rows) of the k nearest candidates (-1: none) by exact
    float64 subtraction; ``self_rows``: each query's own row, never its neighbour."""
    exact = (q64[:, None, :] - ref64[cand.clamp(min=0)]).square_().sum(2)
    exact[cand < 0] = float("inf")
    if self_rows is not None:
        exact[cand == self_rows[:, None]] = float("inf")
    best = exact.topk(k, dim=1, largest=False, sorted=True)
    return best.values, cand.gather(1, best.indices)


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
    _check(np.shape(points), np.shape(centres))
    centre = _mean(centres)
    p64, c64 = _centred(points, centre), _centred(centres, centre)
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
