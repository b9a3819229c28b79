"""VAE internals: how wide the encoder's distributions are and how far z strays from mu.

With a tiny KL weight the VAE learns logvar far below 0, z = mu + exp(logvar/2)*eps
hardly differs from mu, and the VAE behaves like an AE; these numbers show that.

Active units (Burda, Grosse, Salakhutdinov 2016, "Importance Weighted
Autoencoders", section 5.2): latent axis j is active when the variance over the
data of its posterior mean, Var_x(mu_j(x)), exceeds ``active_threshold`` (0.01).
An axis the KL term has collapsed onto the prior has mu_j near 0 for every image
and carries no information; with a tiny KL weight every axis stays active.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
from zspace.analysis.radius import radii
from zspace.core.errors import ZspaceError

if TYPE_CHECKING:
    from zspace.latents.store import Latents


@dataclass(frozen=True)
class VaeParams:
    logvar_thresholds: tuple[float, ...] = (-10.0, -5.0, -1.0, 0.0)
    diff_threshold: float = 0.05
    active_threshold: float = 0.01
    bins: int = 100

    def __post_init__(self) -> None:  # what needs no data is checked before any work
        for name in ("diff_threshold", "active_threshold", "bins"):
            positive(f"vae.{name}", getattr(self, name))


@dataclass(frozen=True, repr=False, kw_only=True)
class VaeResult(AnalysisResult):
    name = "vae"
    n: int
    z_dim: int
    logvar_min: float
    logvar_max: float
    logvar_mean: float
    logvar_thresholds: list[float]
    logvar_above: list[int]  # components (of n * z_dim) with logvar > threshold
    diff_threshold: float
    diff_max: float  # max |z - mu| over all components
    diff_above: int  # components with |z - mu| > diff_threshold
    radius_abs_max: float  # | ||z|| - ||mu|| |
    radius_abs_mean: float
    radius_rel_max: float  # the same divided by ||mu||
    radius_rel_mean: float
    active_threshold: float
    active_units: int  # axes with Var over the data of mu > active_threshold
    axis_logvar_mean: np.ndarray = array_field(json=True)  # (d,) mean logvar per axis
    axis_mu_var: np.ndarray = array_field(json=True)  # (d,) variance of mu over the data
    logvar_counts: np.ndarray = array_field()
    logvar_edges: np.ndarray = array_field()
    rel_counts: np.ndarray = array_field()  # histogram of log10 relative radius diff
    rel_edges: np.ndarray = array_field()

    def summary(self) -> str:
        total = self.n * self.z_dim
        above = ", ".join(
            f"{c:,} above {t:g}"
            for t, c in zip(self.logvar_thresholds, self.logvar_above, strict=True)
        )
        return (
            f"logvar ranges {self.logvar_min:.3g}..{self.logvar_max:.3g}, mean "
            f"{self.logvar_mean:.3g} (of {total:,} components: {above}); max |z - mu| = "
            f"{self.diff_max:.3g}, {self.diff_above:,} components above "
            f"{self.diff_threshold:g}; radius of z vs mu differs by {self.radius_abs_mean:.3g} "
            f"on average (max {self.radius_abs_max:.3g}), relative {self.radius_rel_mean:.3g} "
            f"(max {self.radius_rel_max:.3g}); {self.active_units} of {self.z_dim} axes "
            f"active (Var of mu > {self.active_threshold:g})"
        )


def vae_internals(
    z: np.ndarray,
    mu: np.ndarray,
    logvar: np.ndarray,
    params: VaeParams | None = None,
    **overrides: Any,
) -> VaeResult:
    """logvar statistics, |z - mu| and the radius difference between z and mu."""
    p = with_params(VaeParams, params, overrides)
    z, mu, logvar = as_points(z), as_points(mu, "mu"), as_points(logvar, "logvar")
    if not z.shape == mu.shape == logvar.shape:
        raise ZspaceError(
            f"vae: z {z.shape}, mu {mu.shape} and logvar {logvar.shape} must have one shape"
        )
    th = [float(t) for t in p.logvar_thresholds]
    # one chunked pass over logvar and z - mu, one more for the logvar histogram:
    # no (N, d) temporary, so memory-mapped latents of millions of points fit
    lv_min, lv_max = np.inf, -np.inf
    above = [0] * len(th)
    lv_sum, axis_sum, mu_sum = 0.0, np.zeros(z.shape[1]), np.zeros(z.shape[1])
    diff_max, diff_above = 0.0, 0
    for _, (lv, zs, ms) in row_chunks(logvar, z, mu):
        lv_min, lv_max = min(lv_min, float(lv.min())), max(lv_max, float(lv.max()))
        above = [a + int(np.count_nonzero(lv > t)) for a, t in zip(above, th, strict=True)]
        lv_sum += float(lv.sum(dtype=np.float64))
        axis_sum += lv.sum(axis=0, dtype=np.float64)
        mu_sum += ms.sum(axis=0, dtype=np.float64)
        dz = np.abs(zs.astype(np.float64) - ms)
        diff_max = max(diff_max, float(dz.max()))
        diff_above += int(np.count_nonzero(dz > p.diff_threshold))
    rz, rm = radii(z), radii(mu)
    absd = np.abs(rz - rm)
    rel = absd / np.maximum(rm, 1e-30)
    hi = lv_max if lv_max > lv_min else lv_min + max(1.0, abs(lv_min) * 1e-3)  # float32 steps
    lv_counts = np.zeros(p.bins, dtype=np.int64)
    mu_mean, mu_sq = mu_sum / len(z), np.zeros(z.shape[1])
    for _, (lv, ms) in row_chunks(logvar, mu):  # the histogram and mu's variance (two-pass)
        c, lv_edges = np.histogram(lv, bins=p.bins, range=(lv_min, hi))
        lv_counts += c
        mu_sq += np.square(ms.astype(np.float64) - mu_mean).sum(axis=0)
    logrel = np.log10(np.maximum(rel, 1e-12))
    rel_counts, rel_edges = np.histogram(logrel, bins=p.bins)
    mu_var = mu_sq / len(z)
    return VaeResult(
        n=len(z),
        z_dim=z.shape[1],
        logvar_min=lv_min,
        logvar_max=lv_max,
        logvar_mean=lv_sum / logvar.size,
        logvar_thresholds=th,
        logvar_above=above,
        diff_threshold=float(p.diff_threshold),
        diff_max=diff_max,
        diff_above=diff_above,
        radius_abs_max=float(absd.max()),
        radius_abs_mean=float(absd.mean()),
        radius_rel_max=float(rel.max()),
        radius_rel_mean=float(rel.mean()),
        active_threshold=float(p.active_threshold),
        active_units=int((mu_var > p.active_threshold).sum()),
        axis_logvar_mean=axis_sum / len(z),
        axis_mu_var=mu_var,
        logvar_counts=lv_counts,
        logvar_edges=lv_edges,
        rel_counts=rel_counts,
        rel_edges=rel_edges,
    )


def _from_latents(lat: Latents, p: VaeParams | None) -> VaeResult:
    if lat.mu is None or lat.logvar is None:  # needs_vae: the runner skips AE runs
        raise ZspaceError("vae: the latents hold no mu and logvar (not a VAE run)")
    return vae_internals(lat.z, lat.mu, lat.logvar, p)


ANALYSIS = Analysis("vae", "VAE internals", VaeParams, _from_latents, needs_vae=True)
