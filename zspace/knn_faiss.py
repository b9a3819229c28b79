"""Exact k nearest neighbours through faiss (the optional extra ``zspace[faiss]``).

``faiss.IndexFlatL2`` is an exact brute-force search (blocked float32 matrix
products with the top-k selection fused in, on all cores), not an approximate
index. Like the search in ``zspace.neighbours`` it works on points centred at the
reference mean, keeps ``k + EXTRA`` float32 candidates per query and hands them to
``neighbours.finish``, which recomputes their distances in float64 and proves,
from a float32 error bound, that no point left out is nearer (or searches that
query again in float64), so both return the same float64 distances and the same
neighbours; only the speed differs. ``zspace.neighbours.knn`` calls this
above ``MIN_PAIRS`` query-reference pairs, where faiss wins (measured by
``benchmarks/bench_knn.py``; docs/performance.md).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import torch

from zspace.errors import ZspaceError

EXTRA = 3  # float32 candidates kept beyond k for the exact float64 re-ranking
RERANK_ROWS = 4096  # queries re-ranked at a time
# Query-reference pairs from which "auto" uses faiss. On 2 shared cores (load ~15) the two
# searches were within noise from 1e6 to 2.5e7 pairs, faiss lost the rate's 1,000 x 20,000
# queries (0.6-0.85x) and won its 20,000 x 20,000 reference (1.3x): benchmarks/bench_knn.py,
# docs/performance.md. Only that size goes to faiss until a quieter machine says more.
MIN_PAIRS = 100_000_000

_faiss: ModuleType | None = None


def available() -> bool:
    """True when faiss can be imported."""
    try:
        load()
    except ZspaceError:
        return False
    return True


def load() -> ModuleType:
    """The faiss module, or a one-line error naming the extra."""
    global _faiss
    if _faiss is None:
        try:
            import faiss
        except ImportError:
            raise ZspaceError(
                "the faiss nearest-neighbour backend needs faiss: pip install 'zspace[faiss]'"
            ) from None
        _faiss = faiss
    return _faiss


def knn(
    queries: np.ndarray, reference: np.ndarray, k: int = 1, *, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(distances (n, k) float64, indices (n, k) int64) of the k nearest reference points
    of every query, nearest first; ``exclude_self``: the queries are the reference."""
    import zspace.neighbours as neighbours  # which imports this module

    faiss = load()
    faiss.omp_set_num_threads(torch.get_num_threads())  # train.threads limits both searches
    k = int(k)
    ref64 = np.asarray(reference, np.float64)
    q64 = np.asarray(queries, np.float64)
    if ref64.ndim != 2 or q64.ndim != 2 or q64.shape[1] != ref64.shape[1]:
        raise ZspaceError(
            f"points of shape {q64.shape} and {ref64.shape} are not two (N, d) sets of one d"
        )
    if k < 1:
        raise ZspaceError(f"k = {k}: must be >= 1")
    available_points = len(ref64) - (1 if exclude_self else 0)
    if available_points < k:
        raise ZspaceError(
            f"the reference has {available_points} point(s) to compare against; k = {k} needs more"
        )
    centre = ref64.mean(axis=0)
    ref_t = torch.from_numpy(np.ascontiguousarray(ref64 - centre))
    q_t = torch.from_numpy(np.ascontiguousarray(q64 - centre))
    del ref64, q64  # the centred copies from here on (the float64 inputs can go)
    index = faiss.IndexFlatL2(ref_t.shape[1])
    index.add(ref_t.float().numpy())
    shortlist = min(k + EXTRA + (1 if exclude_self else 0), len(ref_t))
    found, cand = index.search(q_t.float().numpy(), shortlist)
    found, cand = torch.from_numpy(found).double(), torch.from_numpy(cand)
    bound = neighbours.float32_error_bound(ref_t)
    dist = torch.empty((len(q_t), k), dtype=torch.float64)
    index_out = torch.empty((len(q_t), k), dtype=torch.int64)
    for s in range(0, len(q_t), RERANK_ROWS):
        c = cand[s : s + RERANK_ROWS]
        last = found[s : s + RERANK_ROWS, -1].clone()  # float32 |a - b|^2 of the last one
        if shortlist >= available_points + (1 if exclude_self else 0):
            last.fill_(float("inf"))  # every point is a candidate
        d2, idx = neighbours.finish(
            q_t[s : s + RERANK_ROWS], ref_t, c, last, bound, k, exclude_self, s
        )
        dist[s : s + RERANK_ROWS] = d2
        index_out[s : s + RERANK_ROWS] = idx
    return dist.sqrt_().numpy(), index_out.numpy()
