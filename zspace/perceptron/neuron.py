"""The neuron and its cost: A = sigmoid(w1*k1 + w2*k2) on scaled inputs (k1, k2),
C = 0.5 * mean over samples of (A - target)^2.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from zspace.perceptron.scaling import FittedScaling


def outputs(w: tuple[float, float] | np.ndarray, k: np.ndarray) -> np.ndarray:
    """The neuron's output A for scaled inputs ``k`` (..., 2) and weights ``w``."""
    w = np.asarray(w, dtype=np.float64)
    return expit(k[..., 0] * w[0] + k[..., 1] * w[1])


def cost(w: tuple[float, float] | np.ndarray, k: np.ndarray, target: np.ndarray) -> float:
    """C = 0.5 * mean((A - target)^2): the quantity both descents minimise."""
    d = outputs(w, k) - target
    return 0.5 * float(np.mean(d * d))


def relative_errors(a: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The per-sample "Err" column |A - target| / target of the reference tables."""
    return np.abs(a - target) / target


def output_grid(
    scaling: FittedScaling, w: tuple[float, float], K1: np.ndarray, K2: np.ndarray
) -> np.ndarray:
    """The neuron's output over a grid of the ORIGINAL plane; ``A[i, j]`` at (K1[j], K2[i])."""
    G1, G2 = np.meshgrid(np.asarray(K1, float), np.asarray(K2, float))
    return outputs(w, scaling.transform(np.stack((G1, G2), axis=-1)))
