"""Input scalings for the perceptron, fitted once and reusable on new points.

Every scaling except the per-sample Normalizer is an affine map per feature,
``k = K * scale + shift``; we fit it with scikit-learn and keep ``scale``/``shift`` so
that any point of the original (K1, K2) plane can be transformed later (the output
contour plot needs exactly that). The per-sample Normalizer has no parameters: it
divides each point by its own length, which is what makes its contours radial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zspace.core.errors import ZspaceError

#: name -> one-line description, in the order of the reference study
SCALINGS: dict[str, str] = {
    "normalizer-feature": "Normalizer per feature: each feature column / its L2 norm over samples",
    "standard": "StandardScaler: each feature to zero mean and unit variance",
    "factor": "one common factor 1 / (largest feature range) for both features",
    "normalizer-sample": "Normalizer per sample: each (K1, K2) point scaled to unit length",
    "minmax": "MinMaxScaler: each feature mapped onto [0, 1]",
    "none": "no scaling: the raw K1, K2 values",
}


@dataclass(frozen=True)
class FittedScaling:
    """A fitted scaling: ``per_sample`` or else the affine ``K * scale + shift``."""

    name: str
    scale: np.ndarray
    shift: np.ndarray
    per_sample: bool = False

    @property
    def description(self) -> str:
        return SCALINGS[self.name]

    def transform(self, K: np.ndarray) -> np.ndarray:
        """Scale points of the original plane; ``K`` has shape (..., 2)."""
        K = np.asarray(K, dtype=np.float64)
        if K.shape[-1] != 2:
            raise ValueError(f"expected points with 2 features, got shape {K.shape}")
        if self.per_sample:
            from sklearn.preprocessing import Normalizer

            flat = K.reshape(-1, 2)
            # Normalizer leaves the zero vector at zero instead of dividing by 0
            return Normalizer(norm="l2").transform(flat).reshape(K.shape)
        return K * self.scale + self.shift


def check_scaling_name(name: str) -> str:
    """Return the canonical name (case and '_' vs '-' don't matter) or raise ZspaceError."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in SCALINGS:
        raise ZspaceError(f"unknown scaling {name!r}; known: {', '.join(SCALINGS)}")
    return key


def fit_scaling(name: str, K: np.ndarray) -> FittedScaling:
    """Fit the named scaling on the samples ``K`` (n, 2)."""
    key = check_scaling_name(name)
    # imported here: the CLI imports this module for the names only, at every start
    from sklearn.preprocessing import MinMaxScaler, StandardScaler, normalize

    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[1] != 2 or K.shape[0] < 2:
        raise ZspaceError(f"need an (n >= 2, 2) array of samples, got shape {K.shape}")
    zero = np.zeros(2)
    if key == "normalizer-feature":
        # axis=0: one L2 norm per feature column, i.e. Normalizer on the (2, n) array
        _, norms = normalize(K, norm="l2", axis=0, return_norm=True)
        if np.any(norms == 0):
            raise ZspaceError("a feature is all zeros; per-feature normalisation is undefined")
        return FittedScaling(key, 1.0 / norms, zero)
    if key == "standard":
        sc = StandardScaler().fit(K)
        return FittedScaling(key, 1.0 / sc.scale_, -sc.mean_ / sc.scale_)
    if key == "factor":
        dmax = float(np.max(K.max(axis=0) - K.min(axis=0)))
        if dmax == 0:
            raise ZspaceError("all samples are equal; the common-factor scaling is undefined")
        return FittedScaling(key, np.full(2, 1.0 / dmax), zero)
    if key == "minmax":
        sc = MinMaxScaler().fit(K)
        return FittedScaling(key, sc.scale_.copy(), sc.min_.copy())
    return FittedScaling(key, np.ones(2), zero, per_sample=key == "normalizer-sample")  # or none
