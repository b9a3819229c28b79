"""Radius distribution: how far the encoded points lie from the origin.

For N(0, I) in d dimensions the radius concentrates near sqrt(d); comparing the
measured peak with that number shows at a glance whether the encoder filled a
Gaussian-like shell or something else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from zspace.analysis.common import (
    Analysis,
    AnalysisResult,
    array_field,
    as_points,
    positive,
    row_chunks,
    with_params,
)
from zspace.core.errors import ZspaceError


@dataclass(frozen=True)
class RadiusParams:
    bin_width: float = 0.5
    r_min: float = 0.0
    r_max: float | None = None  # None: just above the largest radius
    max_bins: int = 5000

    def __post_init__(self) -> None:  # what needs no data is checked before any work
        positive("radius.bin_width", self.bin_width)
        positive("radius.max_bins", self.max_bins)
        _check_range(self.r_min, self.r_max)


def _check_range(r_min: float, r_max: float | None) -> None:
    if r_max is not None and r_max <= r_min:
        raise ZspaceError(f"radius.r_max = {r_max} must be above radius.r_min = {r_min}")


@dataclass(frozen=True, repr=False, kw_only=True)
class RadiusResult(AnalysisResult):
    name = "radius"
    n: int
    z_dim: int
    bin_width: float
    r_min: float
    r_max: float
    peak: float  # centre of the fullest bin
    mean: float
    std: float
    min: float
    max: float
    expected: float  # sqrt(z_dim): where N(0, I) would peak
    half_lo: float  # the narrowest shell holding half of the points
    half_hi: float
    p01: float  # 1 % and 99 % quantiles: "almost all points"
    p99: float
    peak_share: float  # share of points in the fullest bin
    outside: int  # points beyond [r_min, r_max)
    counts: np.ndarray = array_field()
    edges: np.ndarray = array_field()

    def summary(self) -> str:
        return (
            f"radius peaks at R = {self.peak:.3g} (sqrt(z_dim) = {self.expected:.3g}), "
            f"mean {self.mean:.4g}, range {self.min:.3g}..{self.max:.3g}; half of the points "
            f"lie within {self.half_lo:.3g} <= R <= {self.half_hi:.3g}, 98 % within "
            f"{self.p01:.3g}..{self.p99:.3g}"
        )


def radii(z: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """L2 norm per row, in float64, chunked so no (N, d) float64 copy is made."""
    z = as_points(z)
    out = np.empty(len(z), dtype=np.float64)
    for s, (rows,) in row_chunks(z, rows=chunk):
        block = rows.astype(np.float64)
        out[s : s + len(block)] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return out


def shortest_interval(values_sorted: np.ndarray, share: float) -> tuple[float, float]:
    """The narrowest [lo, hi] that holds ``share`` of the sorted values."""
    n = len(values_sorted)
    m = max(1, math.ceil(share * n))
    if m >= n:
        return float(values_sorted[0]), float(values_sorted[-1])
    widths = values_sorted[m - 1 :] - values_sorted[: n - m + 1]
    i = int(np.argmin(widths))
    return float(values_sorted[i]), float(values_sorted[i + m - 1])


def radius_distribution(
    z: np.ndarray,
    params: RadiusParams | None = None,
    **overrides: Any,
) -> RadiusResult:
    """Histogram of ||z|| with its peak, mean, spread and densest half-shell."""
    p = with_params(RadiusParams, params, overrides)
    bin_width, r_min, r_max, max_bins = p.bin_width, p.r_min, p.r_max, p.max_bins
    z = as_points(z)
    r = radii(z)
    rs = np.sort(r)
    top = float(rs[-1])
    if r_max is None:
        r_max = r_min + bin_width * (math.floor((top - r_min) / bin_width) + 1)
    _check_range(r_min, r_max)
    nbins = int(math.ceil((r_max - r_min) / bin_width - 1e-9))
    if nbins > max_bins:
        raise ZspaceError(
            f"radius: {float(nbins):.3g} bins of width {bin_width:g} over {r_min}..{r_max:.4g}; "
            f"raise radius.bin_width or set radius.r_max (limit radius.max_bins = {max_bins})"
        )
    edges = r_min + bin_width * np.arange(nbins + 1)
    counts, _ = np.histogram(r, bins=edges)
    ipk = int(np.argmax(counts))
    lo, hi = shortest_interval(rs, 0.5)
    return RadiusResult(
        n=len(r),
        z_dim=z.shape[1],
        bin_width=float(bin_width),
        r_min=float(r_min),
        r_max=float(edges[-1]),
        peak=float(edges[ipk] + bin_width / 2),
        mean=float(r.mean()),
        std=float(r.std()),
        min=float(rs[0]),
        max=top,
        expected=math.sqrt(z.shape[1]),
        half_lo=lo,
        half_hi=hi,
        p01=float(np.quantile(rs, 0.01)),
        p99=float(np.quantile(rs, 0.99)),
        peak_share=float(counts[ipk] / len(r)),
        outside=int(len(r) - counts.sum()),
        counts=counts.astype(np.int64),
        edges=edges,
    )


ANALYSIS = Analysis(
    "radius", "Radius distribution", RadiusParams, lambda lat, p: radius_distribution(lat.z, p)
)
