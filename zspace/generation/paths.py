"""Moving through z-space: straight and spherical interpolation, traversal of one
axis or PCA direction, and attribute vectors (mean z with an attribute minus mean z
without). Pure NumPy; decoding is the caller's business."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zspace.analysis.pca import principal_axes
from zspace.core.errors import ZspaceError


def lerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points on the straight line from a to b (both ends included)."""
    t = np.linspace(0.0, 1.0, _steps(steps))[:, None]
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return ((1 - t) * a + t * b).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation: the angle and the radius both change evenly, so the
    path does not cut through the low-radius interior that a straight line crosses
    (N(0, I) mass lies on a shell near sqrt(d))."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ra, rb = np.linalg.norm(a), np.linalg.norm(b)
    t = np.linspace(0.0, 1.0, _steps(steps))[:, None]
    if ra == 0 or rb == 0:
        return lerp(a, b, steps)
    ua, ub = a / ra, b / rb
    omega = np.arccos(np.clip(ua @ ub, -1.0, 1.0))
    if omega < 1e-6:
        return lerp(a, b, steps)
    dirs = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / np.sin(omega)
    return (dirs * ((1 - t) * ra + t * rb)).astype(np.float32)


def traverse(z0: np.ndarray, direction: np.ndarray, strengths: Sequence[float]) -> np.ndarray:
    """z0 + s * direction for each strength s (direction used as given)."""
    z0 = np.asarray(z0, np.float64)
    d = np.asarray(direction, np.float64)
    if d.shape != z0.shape:
        raise ZspaceError(f"direction of shape {d.shape} does not match z of shape {z0.shape}")
    s = np.asarray(list(strengths), np.float64)[:, None]
    return (z0 + s * d).astype(np.float32)


def axis_direction(z: np.ndarray, axis: int) -> np.ndarray:
    """Unit vector along original axis ``axis``, scaled by that axis's std in the data."""
    d = z.shape[1]
    if not 0 <= axis < d:
        raise ZspaceError(f"axis {axis} does not exist: z has {d} axes (0..{d - 1})")
    out = np.zeros(d)
    out[axis] = float(np.asarray(z[:, axis], np.float64).std()) or 1.0
    return out


def pca_direction(z: np.ndarray, component: int) -> np.ndarray:
    """The ``component``-th principal direction (1 = largest variance), scaled by its
    standard deviation, so strength 1 is one sigma along it."""
    d = np.asarray(z).shape[1]
    if not 1 <= component <= d:
        raise ZspaceError(f"PCA component {component}: choose 1..{d}")
    _, vals, comps = principal_axes(z)
    return comps[component - 1] * np.sqrt(vals[component - 1])


@dataclass(frozen=True)
class AttributeVector:
    """An attribute vector and what it is made of: the labelled points behind each
    mean, its length, and the latents' spread along it (std of the points projected
    on its direction), the scale at which a step along it becomes visible."""

    name: str
    vector: np.ndarray
    n_with: int
    n_without: int
    spread: float

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.vector))

    @property
    def relative(self) -> float:
        """|v| in units of the spread along v."""
        return self.length / self.spread if self.spread > 0 else float("inf")

    def default_strengths(self, count: int = 5, sigmas: float = 3.0) -> list[float]:
        """0 up to the strength that moves a point ``sigmas`` spreads along v (at least
        2, the classic 0..2 of the vector), so the default grid shows a visible change."""
        top = max(2.0, sigmas / self.relative) if self.relative > 0 else 2.0
        top = float(f"{top:.2g}")
        return [float(f"{x:.3g}") for x in np.linspace(0.0, top, count)]


def attribute_stats(
    z: np.ndarray, attr: np.ndarray | None, names: Sequence[str] | None, name: str
) -> AttributeVector:
    """The attribute vector of ``name`` with its counts and the spread along it."""
    vec = attribute_vector(z, attr, names, name)
    col = np.asarray(attr)[:, list(names or []).index(name)]
    z64 = np.asarray(z, np.float64)
    unit = vec / (np.linalg.norm(vec) or 1.0)
    spread = float((z64 @ unit).std())
    return AttributeVector(name, vec, int((col > 0).sum()), int((col < 0).sum()), spread)


def attribute_vector(
    z: np.ndarray, attr: np.ndarray | None, names: Sequence[str] | None, name: str
) -> np.ndarray:
    """Mean z of the points with attribute ``name`` minus the mean of those without.

    Attributes are CelebA's +1 (has it) / -1 (has not); 0 marks an image the
    attribute file does not cover (e.g. a cut-down ``list_attr_celeba.txt``) and
    takes part in neither mean, rather than being counted as "without".
    """
    names = list(names or [])
    if attr is None or not names:
        raise ZspaceError("these latents carry no attributes (attribute vectors need e.g. CelebA)")
    if name not in names:
        lower = {n.lower(): n for n in names}
        close = difflib.get_close_matches(name.lower(), list(lower), n=5, cutoff=0.6)
        near = [n for n in names if name.lower() in n.lower()] or [lower[c] for c in close]
        hint = f"; did you mean {', '.join(near[:5])}?" if near else f"; have {', '.join(names)}"
        raise ZspaceError(f"unknown attribute {name!r}{hint}")
    col = np.asarray(attr)[:, names.index(name)]
    on, off = col > 0, col < 0
    if not on.any() or not off.any():
        known = int(on.sum() + off.sum())
        raise ZspaceError(
            f"attribute {name!r}: {int(on.sum())} of the {known} points with a "
            f"known value have it; need some with and some without"
        )
    z = np.asarray(z, np.float64)
    return z[on].mean(axis=0) - z[off].mean(axis=0)


def _steps(steps: int) -> int:
    if steps < 2:
        raise ZspaceError(f"steps = {steps}: need at least 2")
    return int(steps)
