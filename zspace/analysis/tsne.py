"""t-SNE (openTSNE) of a seeded subsample, optionally after PCA to k components.

openTSNE's FFT-accelerated gradients make a 20,000-point map take seconds to a
minute on two cores, where scikit-learn's Barnes-Hut TSNE takes several times longer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from zspace.analysis.common import as_points, jsonable, positive, subsample
from zspace.errors import ZspaceError


@dataclass(frozen=True)
class TsneParams:
    n: int = 20000
    perplexity: float = 30.0
    early_exaggeration: float = 12.0
    pca_components: int = 0  # 0: t-SNE on z itself
    n_iter: int = 500
    colour_by: str = "auto"  # "auto", "none", "label" or an attribute name
    seed: int = 0
    n_jobs: int = 0  # 0: all cores


@dataclass(frozen=True)
class TsneResult:
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
    embedding: np.ndarray = field(repr=False)  # (n, 2) float32
    index: np.ndarray = field(repr=False)  # rows of z used
    colour: np.ndarray | None = field(repr=False, default=None)

    def to_json(self) -> dict:
        keys = [k for k in self.__dataclass_fields__ if k not in ("embedding", "index", "colour")]
        return jsonable({k: getattr(self, k) for k in keys})

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"embedding": self.embedding, "index": self.index}
        if self.colour is not None:
            out["colour"] = self.colour
        return out

    def summary(self) -> str:
        pre = f" after PCA to {self.pca_components} components" if self.pca_components else ""
        col = f", coloured by {self.colour_by}" if self.colour_by else ""
        return (
            f"t-SNE map of {self.n:,} of {self.n_total:,} points{pre} (perplexity "
            f"{self.perplexity:g}, early exaggeration {self.early_exaggeration:g}, "
            f"{self.n_iter} iterations, {self.seconds:.1f} s){col}"
        )


def pca_reduce(x: np.ndarray, k: int) -> np.ndarray:
    """The first k principal-component scores of x (k < d)."""
    xc = x.astype(np.float64) - x.mean(axis=0)
    _, vecs = np.linalg.eigh(xc.T @ xc)
    return (xc @ vecs[:, ::-1][:, :k]).astype(np.float32)


def tsne_analysis(
    z: np.ndarray,
    n: int = TsneParams.n,
    perplexity: float = TsneParams.perplexity,
    early_exaggeration: float = TsneParams.early_exaggeration,
    pca_components: int = TsneParams.pca_components,
    n_iter: int = TsneParams.n_iter,
    seed: int = TsneParams.seed,
    n_jobs: int = TsneParams.n_jobs,
    colour: np.ndarray | None = None,
    colour_by: str | None = None,
    colour_names: list[str] | None = None,
) -> TsneResult:
    """2-D openTSNE map of a seeded subsample; ``colour`` (N,) is carried along for the plot."""
    import os
    import time

    from openTSNE import TSNE

    z = as_points(z)
    positive("tsne.perplexity", perplexity)
    positive("tsne.early_exaggeration", early_exaggeration)
    positive("tsne.n", n)
    positive("tsne.n_iter", n_iter)
    if not 0 <= pca_components <= z.shape[1]:
        raise ZspaceError(f"tsne.pca_components = {pca_components}: must be 0..{z.shape[1]}")
    idx = subsample(len(z), n, seed)
    if len(idx) < 4:
        raise ZspaceError(f"tsne: {len(idx)} points are too few for a map")
    x = np.ascontiguousarray(z[idx], dtype=np.float32)
    if pca_components:
        x = pca_reduce(x, pca_components)
    # openTSNE needs 3 * perplexity < n; shrink it for tiny sets rather than fail.
    perp = float(min(perplexity, (len(idx) - 1) / 3.0))
    started = time.perf_counter()
    emb = TSNE(
        perplexity=perp,
        early_exaggeration=early_exaggeration,
        n_iter=n_iter,
        n_jobs=n_jobs if n_jobs > 0 else (os.cpu_count() or 1),
        random_state=seed,
        initialization="pca",
        verbose=False,
    ).fit(x)
    secs = time.perf_counter() - started
    kl = getattr(emb, "kl_divergence", None)
    col = None if colour is None else np.asarray(colour)[idx]
    return TsneResult(
        n_total=len(z),
        n=len(idx),
        z_dim=z.shape[1],
        perplexity=perp,
        early_exaggeration=float(early_exaggeration),
        pca_components=int(pca_components),
        n_iter=int(n_iter),
        seed=int(seed),
        seconds=secs,
        colour_by=colour_by if col is not None else None,
        colour_names=list(colour_names) if (col is not None and colour_names) else None,
        kl_divergence=float(kl) if kl is not None else None,
        embedding=np.asarray(emb, dtype=np.float32),
        index=idx,
        colour=col,
    )
