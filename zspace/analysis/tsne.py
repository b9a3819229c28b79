"""t-SNE (openTSNE) of a seeded subsample, optionally after PCA to k components.

openTSNE's FFT-accelerated gradients make a 20,000-point map take seconds to a
minute on two cores, where scikit-learn's Barnes-Hut TSNE takes several times longer.
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
    library_seed,
    positive,
    subsample,
    with_params,
)
from zspace.analysis.pca import principal_axes
from zspace.core.errors import ZspaceError

if TYPE_CHECKING:
    from zspace.latents.store import Latents


@dataclass(frozen=True)
class TsneParams:
    n: int = 20000
    perplexity: float = 30.0
    early_exaggeration: float = 12.0
    pca_components: int = 0  # 0: t-SNE on z itself
    n_iter: int = 250  # 500 (openTSNE's) draws the same map in 1.7x the time (performance.md)
    colour_by: str = "auto"  # "auto", "none", "label" or an attribute name
    seed: int = 0
    n_jobs: int = 0  # 0: OMP_NUM_THREADS when set, else all cores

    def __post_init__(self) -> None:  # what needs no data is checked before any work
        for name in ("n", "perplexity", "early_exaggeration", "n_iter"):
            positive(f"tsne.{name}", getattr(self, name))
        positive("tsne.pca_components", self.pca_components, allow_zero=True)
        positive("tsne.n_jobs", self.n_jobs, allow_zero=True)


@dataclass(frozen=True, repr=False, kw_only=True)
class TsneResult(AnalysisResult):
    name = "tsne"
    n_total: int
    n: int
    z_dim: int
    perplexity: float
    early_exaggeration: float
    pca_components: int
    n_iter: int
    seed: int
    seconds: float
    colour_by: str | None
    colour_names: list[str] | None
    kl_divergence: float | None
    embedding: np.ndarray = array_field()  # (n, 2) float32
    index: np.ndarray = array_field()  # rows of z used
    colour: np.ndarray | None = array_field(default=None)

    def summary(self) -> str:
        pre = f" after PCA to {self.pca_components} components" if self.pca_components else ""
        col = f", coloured by {self.colour_by}" if self.colour_by else ""
        return (
            f"t-SNE map of {self.n:,} of {self.n_total:,} points{pre} (perplexity "
            f"{self.perplexity:g}, early exaggeration {self.early_exaggeration:g}, "
            f"{self.n_iter} iterations, {self.seconds:.1f} s){col}"
        )


def default_jobs() -> int:
    """``OMP_NUM_THREADS`` when set (a sweep worker's share, a cluster job's cores),
    else every core."""
    import os

    text = os.environ.get("OMP_NUM_THREADS", "")
    return int(text) if text.isdigit() and int(text) > 0 else (os.cpu_count() or 1)


def pca_reduce(x: np.ndarray, k: int) -> np.ndarray:
    """The first k principal-component scores of x (k < d)."""
    mean, _, comps = principal_axes(x)
    return ((np.asarray(x, np.float64) - mean) @ comps[:k].T).astype(np.float32)


def tsne_analysis(
    z: np.ndarray,
    params: TsneParams | None = None,
    *,
    colour: np.ndarray | None = None,
    colour_by: str | None = None,
    colour_names: list[str] | None = None,
    **overrides: Any,
) -> TsneResult:
    """2-D openTSNE map of a seeded subsample; ``colour`` (N,) is carried along for the plot."""
    p = with_params(TsneParams, params, overrides)
    import time

    from openTSNE import TSNE

    z = as_points(z)
    if not 0 <= p.pca_components <= z.shape[1]:
        raise ZspaceError(f"tsne.pca_components = {p.pca_components}: must be 0..{z.shape[1]}")
    idx = subsample(len(z), p.n, p.seed)
    if len(idx) < 4:
        raise ZspaceError(f"tsne: {len(idx)} points are too few for a map")
    x = np.ascontiguousarray(z[idx], dtype=np.float32)
    if p.pca_components:
        x = pca_reduce(x, p.pca_components)
    # openTSNE needs 3 * p.perplexity < p.n; shrink it for tiny sets rather than fail.
    perp = float(min(p.perplexity, (len(idx) - 1) / 3.0))
    from zspace.core.progress import bar

    started = time.perf_counter()
    every = 10
    ticker = bar(total=250 + p.n_iter, desc=f"t-SNE of {len(idx):,} points", unit="iter")

    def tick(*_args: Any) -> bool:
        ticker.update(every)
        return False  # keep going

    emb = TSNE(
        perplexity=perp,
        early_exaggeration=p.early_exaggeration,
        n_iter=p.n_iter,
        n_jobs=p.n_jobs if p.n_jobs > 0 else default_jobs(),
        random_state=library_seed(p.seed),
        initialization="pca",
        verbose=False,
        callbacks=tick,
        callbacks_every_iters=every,
    ).fit(x)
    ticker.close()
    secs = time.perf_counter() - started
    kl = getattr(emb, "kl_divergence", None)
    col = None if colour is None else np.asarray(colour)[idx]
    return TsneResult(
        n_total=len(z),
        n=len(idx),
        z_dim=z.shape[1],
        perplexity=perp,
        early_exaggeration=float(p.early_exaggeration),
        pca_components=int(p.pca_components),
        n_iter=int(p.n_iter),
        seed=int(p.seed),
        seconds=secs,
        colour_by=colour_by if col is not None else None,
        colour_names=list(colour_names) if (col is not None and colour_names) else None,
        kl_divergence=float(kl) if kl is not None else None,
        embedding=np.asarray(emb, dtype=np.float32),
        index=idx,
        colour=col,
    )


def colour_for(lat: Latents, choice: str) -> tuple[np.ndarray | None, str | None, list | None]:
    """(values, what they are, class names) to colour the map by: ``auto`` takes the
    labels, else CelebA's Male, else the first attribute; ``none`` no colour."""
    if choice == "none":
        return None, None, None
    if choice in ("auto", "label") and lat.label is not None:
        return lat.label, "label", list(lat.label_names) if lat.label_names else None
    if lat.attr is not None and lat.attr_names:
        names = list(lat.attr_names)
        if choice == "auto":
            choice = "Male" if "Male" in names else names[0]
        if choice in names:
            return lat.attr[:, names.index(choice)], choice, None
    if choice == "auto":
        return None, None, None
    known = (["label"] if lat.label is not None else []) + list(lat.attr_names or ())
    raise ZspaceError(
        f"tsne.colour_by = {choice!r} is not known for these latents; choose from "
        f"{', '.join(['auto', 'none', *known])}"
    )


def _from_latents(lat: Latents, p: TsneParams) -> TsneResult:
    colour, by, names = colour_for(lat, p.colour_by)
    return tsne_analysis(lat.z, p, colour=colour, colour_by=by, colour_names=names)


ANALYSIS = Analysis("tsne", "t-SNE map", TsneParams, _from_latents)
