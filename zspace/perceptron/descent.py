"""Stochastic and batch gradient descent for the one-neuron perceptron.

Per sample, the gradient of 0.5 * (A - t)^2 with A = sigmoid(w . k) is
(A - t) * A * (1 - A) * k. Batch descent subtracts eta times the SUM of these over
the samples once per step; stochastic descent makes one pass over the samples (in
their given order) per step, updating after each sample. The learning rate of step
j (0-based) is eta / (1 + decrease * j), so ``decrease=0`` keeps it constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from zspace.core.errors import ZspaceError
from zspace.perceptron.neuron import outputs, relative_errors

MODES = ("stochastic", "batch")


@dataclass(frozen=True)
class DescentResult:
    """The path of one descent run and the resulting per-sample table.

    ``weights`` (steps + 1, 2) and ``costs`` (steps + 1,) include the start; ``outputs``
    and ``errors`` (|A - t| / t) are for the final weights; ``total_error`` is the mean
    of ``errors``.
    """

    mode: str
    start: tuple[float, float]
    eta: float
    decrease: float
    steps: int
    weights: np.ndarray
    costs: np.ndarray
    outputs: np.ndarray
    errors: np.ndarray
    total_error: float

    @property
    def final(self) -> tuple[float, float]:
        return float(self.weights[-1, 0]), float(self.weights[-1, 1])


def check_descent_args(start: tuple[float, ...], eta: float, steps: int, decrease: float) -> None:
    """Raise ZspaceError (one line) for settings that cannot give a meaningful descent."""
    if len(start) != 2 or not all(math.isfinite(float(v)) for v in start):
        raise ZspaceError(f"start must be two finite numbers (w1, w2), got {tuple(start)}")
    if not (math.isfinite(eta) and eta > 0):
        raise ZspaceError(f"eta must be a finite number > 0, got {eta}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ZspaceError(f"steps must be an integer >= 1, got {steps}")
    if not (math.isfinite(decrease) and decrease >= 0):
        raise ZspaceError(f"decrease must be a finite number >= 0, got {decrease}")


def _sigmoid(z: float) -> float:
    """Overflow-free scalar sigmoid (math.exp raises for arguments above ~709)."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _cost_rows(weights: np.ndarray, k: np.ndarray, target: np.ndarray) -> np.ndarray:
    """C for every row of ``weights`` at once (steps x samples is tiny)."""
    d = expit(weights @ k.T) - target
    return 0.5 * np.mean(d * d, axis=1)


def gradient_descent(
    k: np.ndarray,
    target: np.ndarray,
    *,
    mode: str = "batch",
    start: tuple[float, float] = (-0.2, 0.25),
    eta: float = 0.2,
    steps: int = 2500,
    decrease: float = 0.0,
) -> DescentResult:
    """Run ``steps`` steps of ``mode`` ('stochastic' or 'batch') descent on scaled ``k``."""
    if mode not in MODES:
        raise ZspaceError(f"unknown descent mode {mode!r}; known: {', '.join(MODES)}")
    check_descent_args(start, eta, steps, decrease)
    k = np.asarray(k, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    steps, start = int(steps), (float(start[0]), float(start[1]))
    weights = np.empty((steps + 1, 2))
    weights[0] = w1, w2 = start
    if mode == "batch":
        w = weights[0].copy()
        for j in range(steps):
            a = expit(k @ w)
            w -= (eta / (1.0 + decrease * j)) * (((a - target) * a * (1.0 - a)) @ k)
            weights[j + 1] = w
    else:
        # plain floats: 14 tiny updates per step are faster in Python than in NumPy
        rows = [(float(x1), float(x2), float(t)) for (x1, x2), t in zip(k, target, strict=True)]
        for j in range(steps):
            lr = eta / (1.0 + decrease * j)
            for x1, x2, t in rows:
                a = _sigmoid(w1 * x1 + w2 * x2)
                g = lr * (a - t) * a * (1.0 - a)
                w1 -= g * x1
                w2 -= g * x2
            weights[j + 1] = w1, w2
    a = outputs(weights[-1], k)
    err = relative_errors(a, target)
    return DescentResult(
        mode=mode,
        start=start,
        eta=float(eta),
        decrease=float(decrease),
        steps=steps,
        weights=weights,
        costs=_cost_rows(weights, k, target),
        outputs=a,
        errors=err,
        total_error=float(np.mean(err)),
    )
