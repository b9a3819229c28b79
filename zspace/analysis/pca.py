"""PCA: the explained-variance spectrum and 2-D projections with zoom windows.

The covariance is accumulated in float64 chunks and diagonalised exactly (d is at
most a few hundred), so 170,000 x 256 latents cost one pass and no copy. PCA
pairs are 1-based (PC1, PC2, ...), original-axis pairs 0-based (axis 0 is z[:, 0]),
matching how the axes table numbers axes.

Zoom windows are squares around the median of each projection. By default their
half-widths are shares (1, 0.3, 0.1) of that cloud's robust extent (99 % of its
points lie within the extent), so every window zooms in, whatever the latent
scale; ``zoom_mode="absolute"`` keeps the reference's fixed windows (25, 2.5, 0.25).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
    subsample,
    with_params,
)
from zspace.core.errors import ZspaceError

DEFAULT_PCA_PAIRS = ((1, 2), (1, 18), (8, 35))
DEFAULT_AXIS_PAIRS = ((0, 1), (2, 3))
ZOOM_MODES = ("relative", "absolute")
DEFAULT_FRACTIONS = (1.0, 0.3, 0.1)  # relative windows: shares of the cloud's extent
REFERENCE_ZOOMS = (25.0, 2.5, 0.25)  # the reference's absolute windows (CelebA, z_dim 256)
EXTENT_QUANTILE = 0.99
CLOUD_FIELDS = ("centre", "extent", "windows", "counts", "proj")  # PcaResult's X_pca, X_axes


@dataclass(frozen=True)
class PcaParams:
    pairs: tuple[tuple[int, int], ...] | None = None  # None: defaults that fit z_dim
    axis_pairs: tuple[tuple[int, int], ...] | None = None
    zoom_mode: str = "relative"  # "relative": windows are shares of each cloud's extent
    zooms: tuple[float, ...] | None = None  # relative: (1, 0.3, 0.1); absolute: (25, 2.5, 0.25)
    max_points: int = 50000
    gap: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:  # what needs no data is checked before any work
        positive("pca.max_points", self.max_points)
        positive("pca.gap", self.gap)
        _check_zooms(self.zoom_mode, self.zooms)


@dataclass(frozen=True, repr=False, kw_only=True)
class PcaResult(AnalysisResult):
    name = "pca"
    n: int
    z_dim: int
    # explained-variance ratio per component
    explained: list[float] = array_field(json=True)
    cumulative: list[float]
    n90: int  # components for 90 % / 99 % of the variance
    n99: int
    participation: float  # (sum l)^2 / sum l^2: an effective dimension
    dominant: int  # components before the largest gap, 0 when no gap exceeds `gap`
    gap: float
    largest_gap: float
    pairs: list[list[int]]
    axis_pairs: list[list[int]]
    zoom_mode: str
    zooms: list[float]  # as used: shares of the extent (relative) or half-widths (absolute)
    centre_pca: list[list[float]]  # window centre (median of the projection) per pair
    centre_axes: list[list[float]]
    extent_pca: list[float]  # robust extent of each pair's cloud (99 % of points within)
    extent_axes: list[float]
    windows_pca: list[list[float]]  # half-width of each zoom window, per pair
    windows_axes: list[list[float]]
    counts_pca: list[list[int]]  # points inside each zoom window, per pair, of n
    counts_axes: list[list[int]]
    n_shown: int
    proj_pca: np.ndarray = array_field()  # (pairs, n_shown, 2) float32
    proj_axes: np.ndarray = array_field()
    components: np.ndarray = array_field(memory=True)  # (d, d) rows = principal directions

    def summary(self) -> str:
        lead = ", ".join(f"{100 * e:.1f} %" for e in self.explained[:3])
        dom = (
            f"{self.dominant} dominant component(s) (gap x{self.largest_gap:.3g})"
            if self.dominant
            else f"no dominant component (largest gap x{self.largest_gap:.3g} < x{self.gap:g})"
        )
        return (
            f"leading components explain {lead} of the variance; {dom}; "
            f"{self.n90} components hold 90 %, {self.n99} hold 99 %; effective dimension "
            f"(participation ratio) {self.participation:.3g} of {self.z_dim}"
        )


def covariance(z: np.ndarray, chunk: int = 32768) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance in float64, in chunks (two passes: the mean first, so the
    sums of products are taken about it and lose nothing to cancellation)."""
    d = z.shape[1]
    s = np.zeros(d)
    for _, (rows,) in row_chunks(z, rows=chunk):
        s += rows.sum(axis=0, dtype=np.float64)
    mean = s / len(z)
    cov = np.zeros((d, d))
    for _, (rows,) in row_chunks(z, rows=chunk):
        b = rows.astype(np.float64) - mean
        cov += b.T @ b
    return mean, cov / max(1, len(z) - 1)


def principal_axes(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, variances in decreasing order, components as rows) of the points.

    The one PCA of the package (the analysis, t-SNE's PCA-first variant and the
    PCA traversals use it). Each component's sign is fixed so that its largest
    loading is positive, as scikit-learn's ``svd_flip`` does, so two runs or two
    calls never show mirrored projections."""
    mean, cov = covariance(np.asarray(z))
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    vals = np.clip(vals[order], 0.0, None)
    comps = vecs[:, order].T
    lead = comps[np.arange(len(comps)), np.argmax(np.abs(comps), axis=1)]
    comps = comps * np.where(lead < 0, -1.0, 1.0)[:, None]
    return mean, vals, comps


def _pairs(
    given: Iterable[Sequence[int]] | None,
    defaults: Sequence[tuple[int, int]],
    limit: int,
    base: int,
    what: str,
) -> list[tuple[int, int]]:
    """The ``given`` pairs of ``base``-based indices below ``limit + base``, checked; or,
    when none are given, the reference's pairs where they fit, else the leading ones
    (small z_dim)."""
    if given is None:
        fit = [p for p in defaults if max(p) < limit + base]
        if len(fit) < len(defaults):
            small = ((base, base + 1), (base, base + 2), (base + 1, base + 2))
            fit = [p for p in small if max(p) < limit + base]
        return fit or [(base, base)]
    out: list[tuple[int, int]] = []
    for p in given:
        if len(p) != 2:
            raise ZspaceError(f"pca.{what}: {p} is not a pair")
        a, b = int(p[0]), int(p[1])
        for v in (a, b):
            if not base <= v < limit + base:
                raise ZspaceError(f"pca.{what}: index {v} out of range {base}..{limit + base - 1}")
        out.append((a, b))
    return out


def _windows(
    proj: np.ndarray, zooms: Iterable[float], mode: str
) -> tuple[list[float], float, list[float], list[int]]:
    """(centre, extent, half-widths, points inside each window) of one projection.

    The extent is robust: the 99th percentile of the points' distance (max norm) from
    the centre, so a few outliers cannot stretch the windows. Half-widths are ``zooms``
    times the extent (relative) or as given (absolute); a cloud of extent 0 (all
    points equal) gets relative windows of 1."""
    centre = np.median(proj, axis=0)
    dist = np.abs(proj - centre).max(axis=1)
    extent = float(np.quantile(dist, EXTENT_QUANTILE)) if len(dist) else 0.0
    unit = 1.0 if mode == "absolute" else (extent if extent > 0 else 1.0)
    sizes = [float(h) * unit for h in zooms]
    return centre.tolist(), extent, sizes, [int((dist <= h).sum()) for h in sizes]


def _check_zooms(mode: str, zooms: Iterable[float] | None) -> list[float]:
    if mode not in ZOOM_MODES:
        raise ZspaceError(f"pca.zoom_mode = {mode!r}: choose {' or '.join(ZOOM_MODES)}")
    if zooms is None:
        return list(DEFAULT_FRACTIONS if mode == "relative" else REFERENCE_ZOOMS)
    checked = [float(h) for h in zooms]
    for h in checked:
        positive("pca.zooms", h)
    if mode == "relative" and max(checked) > 1:
        raise ZspaceError(
            f"pca.zooms = {','.join(f'{h:g}' for h in checked)}: relative windows are shares "
            "of the cloud's extent, in (0, 1]; for half-widths in latent units add "
            "pca.zoom_mode=absolute"
        )
    return checked


def pca_analysis(
    z: np.ndarray,
    params: PcaParams | None = None,
    **overrides: Any,
) -> PcaResult:
    """Spectrum of the covariance and projections on chosen PCA / original axis pairs."""
    p = with_params(PcaParams, params, overrides)
    gap = p.gap
    z = as_points(z)
    d = z.shape[1]
    zooms = _check_zooms(p.zoom_mode, p.zooms)
    pairs = _pairs(p.pairs, DEFAULT_PCA_PAIRS, d, 1, "pairs")
    axis_pairs = _pairs(p.axis_pairs, DEFAULT_AXIS_PAIRS, d, 0, "axis_pairs")
    mean, vals, vecs = principal_axes(z)  # vecs: rows
    total = vals.sum()
    ratio = vals / total if total > 0 else np.zeros_like(vals)
    cum = np.cumsum(ratio)
    n90 = int(np.searchsorted(cum, 0.9 - 1e-12) + 1)
    n99 = int(np.searchsorted(cum, 0.99 - 1e-12) + 1)
    part = float(total**2 / (vals**2).sum()) if total > 0 else 0.0
    gaps = vals[:-1] / np.maximum(vals[1:], total * 1e-12 + 1e-300) if d > 1 else np.ones(1)
    kg = int(np.argmax(gaps))
    largest = float(gaps[kg])
    dominant = kg + 1 if largest >= gap else 0

    idx = subsample(len(z), p.max_points, p.seed)
    comps = np.array([[vecs[a - 1], vecs[b - 1]] for a, b in pairs])  # (P, 2, d)
    # every point's projections (N, 2) per pair, for the zoom counts: one chunked pass
    fulls = [np.empty((len(z), 2)) for _ in [*pairs, *axis_pairs]]
    for s, (rows,) in row_chunks(z):
        centred = rows.astype(np.float64) - mean
        for full, comp in zip(fulls, comps, strict=False):
            full[s : s + len(rows)] = centred @ comp.T
        for full, (a, b) in zip(fulls[len(pairs) :], axis_pairs, strict=True):
            full[s : s + len(rows)] = rows[:, [a, b]]
    # per cloud: (centre, extent, half-widths, points inside each window)
    stats = [_windows(f, zooms, p.zoom_mode) for f in fulls]
    centres, extents, windows, counts = (
        map(list, zip(*stats, strict=True)) if stats else ([], [], [], [])
    )
    shown = np.array([f[idx] for f in fulls], np.float32).reshape(len(fulls), len(idx), 2)
    k, per_side = len(pairs), dict[str, Any]()  # the PCA pairs' clouds first, then the axes'
    clouds: tuple[Any, ...] = (centres, extents, windows, counts, shown)
    for key, values in zip(CLOUD_FIELDS, clouds, strict=True):
        per_side |= {f"{key}_pca": values[:k], f"{key}_axes": values[k:]}
    return PcaResult(
        n=len(z),
        z_dim=d,
        explained=ratio.tolist(),
        cumulative=cum.tolist(),
        n90=n90,
        n99=n99,
        participation=part,
        dominant=dominant,
        gap=float(gap),
        largest_gap=largest,
        pairs=[list(p) for p in pairs],
        axis_pairs=[list(p) for p in axis_pairs],
        zoom_mode=p.zoom_mode,
        zooms=zooms,
        n_shown=len(idx),
        **per_side,
        components=vecs.astype(np.float32),
    )


ANALYSIS = Analysis(
    "pca", "PCA spectrum and projections", PcaParams, lambda lat, p: pca_analysis(lat.z, p)
)
