"""Per-axis densities and the table of off-centre or broad axes.

Rule (robust, so a handful of odd axes cannot hide themselves by inflating the
spread they are measured against):

* centre of an axis = its median; width = IQR / 1.349 (equals sigma for a Gaussian);
* over all axes: C = median of the centres, S = 1.4826 * MAD of the centres,
  W = median of the widths;
* an axis is **off-centre** when |centre - C| > max(centre_k * S, centre_floor * W)
  and **broad** when width / W > width_ratio.

Defaults: centre_k = 5, centre_floor = 0.5, width_ratio = 2. The floor stops
sampling noise from being flagged when all axes agree closely (S tiny).
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
    column_blocks,
    positive,
    with_params,
)
from zspace.core.errors import ZspaceError


@dataclass(frozen=True)
class AxesParams:
    bin_width: float = 0.25
    centre_k: float = 5.0
    centre_floor: float = 0.5
    width_ratio: float = 2.0
    max_bins: int = 2000

    def __post_init__(self) -> None:  # what needs no data is checked before any work
        for name in ("bin_width", "centre_k", "width_ratio", "max_bins"):
            positive(f"axes.{name}", getattr(self, name))
        positive("axes.centre_floor", self.centre_floor, allow_zero=True)


@dataclass(frozen=True, repr=False, kw_only=True)
class AxesResult(AnalysisResult):
    name = "axes"
    n: int
    z_dim: int
    bin_width: float
    centre_k: float
    centre_floor: float
    width_ratio: float
    centre_median: float
    centre_spread: float
    width_median: float
    flagged: list[dict]  # {axis, centre, width, centre_score, width_ratio, why}
    centres: np.ndarray = array_field(json=True)
    widths: np.ndarray = array_field(json=True)
    densities: np.ndarray = array_field()  # (d, bins) probability density per axis
    edges: np.ndarray = array_field()

    @property
    def flagged_axes(self) -> list[int]:
        return [f["axis"] for f in self.flagged]

    def summary(self) -> str:
        head = (
            f"axis centres have median {self.centre_median:.3g} (robust spread "
            f"{self.centre_spread:.3g}); typical axis width {self.width_median:.3g}. "
        )
        if not self.flagged:
            return head + f"None of the {self.z_dim} axes is off-centre or broad."
        return head + (
            f"{len(self.flagged)} of {self.z_dim} axes are off-centre or broad: "
            + ", ".join(str(a) for a in self.flagged_axes[:30])
            + (" ..." if len(self.flagged) > 30 else "")
        )


def axis_quantiles(z: np.ndarray, qs) -> np.ndarray:
    """(len(qs), d) quantiles of every axis, in z's dtype, from column blocks: one
    pass, no (N, d) copy (``np.quantile(z, q, axis=0)`` would copy all of z)."""
    out = np.empty((len(qs), z.shape[1]), dtype=z.dtype)
    for j, block in column_blocks(z):
        out[:, j : j + len(block)] = np.quantile(block, qs, axis=1)
    return out


def _stats(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (medians) and widths (IQR / 1.349) from rows q25, q50, q75."""
    q1, q2, q3 = q
    return q2.astype(np.float64), ((q3 - q1) / 1.349).astype(np.float64)


def axis_stats(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and IQR/1.349 of every axis."""
    return _stats(axis_quantiles(z, (0.25, 0.5, 0.75)))


def _edges(lo: float, hi: float, bin_width: float, max_bins: int) -> np.ndarray:
    lo = bin_width * math.floor(lo / bin_width)
    hi = bin_width * (math.floor(hi / bin_width) + 1)
    nbins = int(round((hi - lo) / bin_width))
    if nbins > max_bins:
        raise ZspaceError(
            f"axes: {nbins} bins of width {bin_width} over {lo:.4g}..{hi:.4g}; raise "
            f"axes.bin_width (limit axes.max_bins = {max_bins})"
        )
    return lo + bin_width * np.arange(nbins + 1)


def _densities(z: np.ndarray, edges: np.ndarray, bin_width: float) -> np.ndarray:
    dens = np.empty((z.shape[1], len(edges) - 1), dtype=np.float32)
    for j, block in column_blocks(z):
        for i, column in enumerate(block):
            c, _ = np.histogram(column, bins=edges)
            dens[j + i] = c / (len(z) * bin_width)
    return dens


def axis_densities(
    z: np.ndarray, bin_width: float = 0.25, max_bins: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """(d, bins) densities on common edges that cover 0.1 %..99.9 % of every axis."""
    q = axis_quantiles(z, (0.001, 0.999))
    edges = _edges(float(np.min(q[0])), float(np.max(q[1])), bin_width, max_bins)
    return _densities(z, edges, bin_width), edges


def flag_axes(
    centres: np.ndarray,
    widths: np.ndarray,
    centre_k: float = 5.0,
    centre_floor: float = 0.5,
    width_ratio: float = 2.0,
) -> tuple[list[dict], float, float, float]:
    """The flagged axes by the rule in the module docstring, plus C, S and W."""
    c_med = float(np.median(centres))
    c_spread = float(1.4826 * np.median(np.abs(centres - c_med)))
    w_med = float(np.median(widths))
    limit = max(centre_k * c_spread, centre_floor * w_med)
    flagged = []
    for j, (c, w) in enumerate(zip(centres, widths, strict=True)):
        off = abs(c - c_med) > limit
        broad = w_med > 0 and w / w_med > width_ratio
        if off or broad:
            why = " and ".join(x for x, on in (("off-centre", off), ("broad", broad)) if on)
            flagged.append(
                {
                    "axis": j,
                    "centre": float(c),
                    "width": float(w),
                    "centre_score": float((c - c_med) / limit) if limit > 0 else math.inf,
                    "width_ratio": float(w / w_med) if w_med > 0 else math.inf,
                    "why": why,
                }
            )
    return flagged, c_med, c_spread, w_med


def axes_analysis(
    z: np.ndarray,
    params: AxesParams | None = None,
    **overrides: Any,
) -> AxesResult:
    """Density of every axis and the axes whose centre or width stands out."""
    p = with_params(AxesParams, params, overrides)
    z = as_points(z)
    q = axis_quantiles(z, (0.001, 0.25, 0.5, 0.75, 0.999))  # one pass for both steps
    centres, widths = _stats(q[1:4])
    flagged, c_med, c_spread, w_med = flag_axes(
        centres, widths, p.centre_k, p.centre_floor, p.width_ratio
    )
    edges = _edges(float(np.min(q[0])), float(np.max(q[4])), p.bin_width, p.max_bins)
    dens = _densities(z, edges, p.bin_width)
    return AxesResult(
        n=len(z),
        z_dim=z.shape[1],
        bin_width=float(p.bin_width),
        centre_k=float(p.centre_k),
        centre_floor=float(p.centre_floor),
        width_ratio=float(p.width_ratio),
        centre_median=c_med,
        centre_spread=c_spread,
        width_median=w_med,
        flagged=flagged,
        centres=centres,
        widths=widths,
        densities=dens,
        edges=edges,
    )


ANALYSIS = Analysis(
    "axes", "Per-axis densities", AxesParams, lambda lat, p: axes_analysis(lat.z, p)
)
