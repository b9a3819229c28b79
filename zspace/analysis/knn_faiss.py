"""Exact k nearest neighbours through faiss (the optional extra ``zspace[faiss]``).

``faiss.IndexFlatL2`` is an exact brute-force search (blocked float32 matrix
products with the top-k selection fused in, on all cores), not an approximate
index. It only makes the float32 shortlist of ``zspace.analysis.neighbours.knn``, which
re-ranks it in float64 and proves it exact, so both backends return the same
distances and neighbours; only the speed differs. ``knn`` uses it above ``MIN_PAIRS``
query-reference pairs, where faiss wins (``benchmarks/bench_knn.py``;
docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import torch

from zspace.core.errors import ZspaceError

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


def shortlist(
    ref: torch.Tensor,
) -> Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]:
    """``search(queries, m)``: each query's m nearest rows of ``ref`` by faiss's exact
    float32 flat index (built once), with the float32 squared distance of the m-th,
    for ``neighbours.knn`` to re-rank."""
    faiss = load()
    faiss.omp_set_num_threads(torch.get_num_threads())  # train.threads limits both searches
    index = faiss.IndexFlatL2(ref.shape[1])
    index.add(ref.float().numpy())

    def search(q: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        found, cand = index.search(q.float().numpy(), m)
        return torch.from_numpy(found[:, -1]).double(), torch.from_numpy(cand)

    return search
