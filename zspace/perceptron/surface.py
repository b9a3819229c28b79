"""The cost C(w1, w2) of the neuron over a mesh of weights, and its minimum.

The surface is the expensive part: the reference mesh is 5500 x 5500 weights and 14
samples, i.e. 424 million sigmoids. Holding one mesh-sized array per sample (as the
reference does) costs 14 x 242 MB, so we instead accumulate sample by sample into
the one mesh-sized result, block of rows by block of rows; each block is small enough
to stay in cache, and blocks are shared among threads (NumPy ufuncs release the GIL).
The exps dominate a naive evaluation; since z is linear in the weights,
exp(-z) = exp(-w1*k1) * exp(-w2*k2) is an outer product of two vectors computed once
per sample, which leaves only cheap vectorised arithmetic per mesh point.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from zspace.core.errors import ZspaceError
from zspace.core.resources import cpu_count

#: refuse meshes whose surface alone would need more than ~800 MB of float64
MAX_MESH_POINTS = 100_000_000
#: mesh cells per block of rows (a 512 kB float64 block: two of them fit a 1 MB L2 cache)
BLOCK_CELLS = 65_536


@dataclass(frozen=True)
class MeshSpec:
    """One weight axis as ``numpy.arange(start, stop, step)``, used for both w1 and w2."""

    start: float = -5.5
    stop: float = 5.5
    step: float = 0.002

    def axis(self) -> np.ndarray:
        return np.arange(self.start, self.stop, self.step)

    def count(self) -> int:
        return int(math.ceil((self.stop - self.start) / self.step))

    def validate(self) -> MeshSpec:
        """Return self, or raise ZspaceError saying in one line what is wrong."""
        vals = (self.start, self.stop, self.step)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in vals):
            raise ZspaceError(f"bad mesh {vals}: start, stop and step must be finite numbers")
        if self.step <= 0 or self.stop <= self.start:
            raise ZspaceError(f"bad mesh {vals}: need step > 0 and stop > start")
        n = self.count()
        if n < 2:
            raise ZspaceError(f"bad mesh {vals}: fewer than 2 points per axis")
        if n * n > MAX_MESH_POINTS:
            raise ZspaceError(
                f"bad mesh {vals}: {n} x {n} points exceed the limit of {MAX_MESH_POINTS:,}"
            )
        return self


@dataclass(frozen=True)
class CostSurface:
    """C on the mesh: ``cost[i, j]`` belongs to (w1[j], w2[i]) (meshgrid 'xy' layout).

    ``cost`` is None when the surface was computed with ``keep=False`` (minimum only).
    """

    w1: np.ndarray
    w2: np.ndarray
    cost: np.ndarray | None
    c_min: float
    index: tuple[int, int]
    seconds: float
    threads: int

    @property
    def w_min(self) -> tuple[float, float]:
        """The weights (w1, w2) at the smallest mesh cost."""
        return float(self.w1[self.index[1]]), float(self.w2[self.index[0]])


def cost_surface(
    k: np.ndarray,
    target: np.ndarray,
    w1: np.ndarray,
    w2: np.ndarray,
    *,
    threads: int | None = None,
    keep: bool = True,
) -> CostSurface:
    """C over the mesh w1 x w2 without ever holding a per-sample mesh array.

    Peak extra memory is the result (8 bytes per mesh point, none with ``keep=False``)
    plus one small block per thread.
    """
    w1 = np.ascontiguousarray(w1, dtype=np.float64)
    w2 = np.ascontiguousarray(w2, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    n1, n2, n = w1.size, w2.size, len(target)
    if n1 < 1 or n2 < 1:
        raise ZspaceError("bad mesh: an axis is empty")
    threads = cpu_count() if threads is None else max(1, int(threads))
    # exp(-z) = exp(-w1 k1) * exp(-w2 k2): per sample, one outer product of two
    # precomputed vectors replaces 30 million exps. Only where the factors could
    # overflow (large raw inputs) do we fall back to exp of the sum.
    reach = np.abs(k[:, 0]) * np.abs(w1).max() + np.abs(k[:, 1]) * np.abs(w2).max()
    separable = reach < 700.0
    za = -np.outer(k[:, 0], w1)  # (n, n1)
    zb = -np.outer(k[:, 1], w2)  # (n, n2)
    with np.errstate(over="ignore"):
        ea, eb = np.exp(za), np.exp(zb)
    norm = 0.5 / n
    rows = max(1, min(n2, BLOCK_CELLS // n1))
    starts = list(range(0, n2, rows))
    out = np.empty((n2, n1)) if keep else None

    def block(i0: int) -> tuple[float, int]:
        i1 = min(i0 + rows, n2)
        acc = out[i0:i1] if out is not None else np.empty((i1 - i0, n1))
        buf = np.empty_like(acc)
        acc.fill(0.0)
        for s in range(n):
            if separable[s]:
                np.multiply(eb[s, i0:i1, None], ea[s], out=buf)  # exp(-z)
            else:
                np.add(zb[s, i0:i1, None], za[s], out=buf)
                with np.errstate(over="ignore"):
                    np.exp(buf, out=buf)  # inf is fine: the sigmoid is then 0
            buf += 1.0
            np.divide(1.0, buf, out=buf)  # A = sigmoid(z)
            buf -= target[s]
            np.square(buf, out=buf)
            acc += buf
        acc *= norm
        j = int(np.argmin(acc))
        return float(acc.flat[j]), i0 * n1 + j

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        found = list(pool.map(block, starts))
    seconds = time.perf_counter() - t0
    # first minimum in row-major order, as numpy.argmin on the whole array would give
    c_min, flat = min(found, key=lambda f: (f[0], f[1]))
    return CostSurface(w1, w2, out, c_min, divmod(flat, n1), seconds, threads)
