"""Small helpers shared by the analyses: input checks, seeded subsampling, JSON-safe numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

from zspace.checks import positive  # noqa: F401 - the shared check, used by the analyses
from zspace.errors import ZspaceError


def as_points(z: np.ndarray, name: str = "z") -> np.ndarray:
    """A 2-D float array (N, d) with N >= 1, or a one-line user error."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 1:
        raise ZspaceError(f"{name} must be a non-empty (N, d) array, got shape {z.shape}")
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float32)
    return z


def subsample(n: int, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subsample of ``size`` out of ``n`` (all when size >= n)."""
    if size is None or size <= 0 or size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False))


def jsonable(value: Any) -> Any:
    """Plain Python numbers/lists for json.dumps (NumPy scalars and arrays included)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return f if np.isfinite(f) else None
    return value
