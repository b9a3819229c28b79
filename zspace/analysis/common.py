"""What every analysis shares: its registry entry, its result's file layout, helpers.

An analysis is one module holding a frozen ``*Params`` dataclass, a pure function
``f(arrays, params=None, **overrides) -> *Result`` and an ``ANALYSIS`` entry
(name, title, params class, how to compute it from a run's Latents); the runner
lists the entries. A result dataclass (``kw_only``, so fields with and without
defaults mix) marks its array fields once (``array_field``); ``to_dict`` and
``arrays`` derive from that, so the JSON file and the npz beside it never disagree
about which field goes where.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

import zspace.core.npz as npz
from zspace.core.checks import positive  # noqa: F401 - the shared check, used by the analyses
from zspace.core.display import esc, img, renderer
from zspace.core.errors import ZspaceError
from zspace.core.results import Result

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from zspace.latents.store import Latents

P = TypeVar("P")


def with_params(cls: type[P], params: P | None, overrides: dict[str, Any]) -> P:
    """The params to use: ``params`` (or the defaults) with keyword ``overrides`` applied."""
    base = cls() if params is None else params
    return replace(base, **overrides) if overrides else base  # type: ignore[type-var]


def array_field(
    *, json: bool = False, memory: bool = False, default: Any = dataclasses.MISSING
) -> Any:
    """A result field saved in the npz (and also in the JSON with ``json=True``);
    ``memory=True``: kept in memory only (neither file), e.g. PCA components."""
    return field(repr=False, default=default, metadata={"array": not memory, "json": json})


class AnalysisResult(Result):
    """Behaviour of every analysis result dataclass (declare them ``repr=False,
    kw_only=True``): dict access and ``to_dict`` over the JSON fields, the npz arrays,
    a one-line repr, and inline display in a notebook (``_repr_html_``, ``figure()``)
    drawn by the reporting stage."""

    name: ClassVar[str] = ""  # the analysis's registry name, set by each result class

    if TYPE_CHECKING:

        def summary(self) -> str: ...  # every result class defines its own

    def _keys(self) -> list[str]:
        return [f.name for f in fields(self) if f.metadata.get("json", True)]  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the result (what ``analysis/<name>.json`` holds under "result")."""
        return jsonable({k: getattr(self, k) for k in self._keys()})

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("array") and value is not None:
                out[f.name] = np.asarray(value)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.summary()})"

    def figures(self) -> list[Figure]:
        """Every figure the report draws for this result (matplotlib Figures)."""
        return renderer().figures(self)

    def figure(self) -> Figure:
        """The report's main figure of this result."""
        return self.figures()[0]

    def _repr_html_(self) -> str:
        shown = "".join(img(f, self.name) for f in self.figures())
        return f"<p><b>{esc(self.name)}</b>: {esc(self.summary())}</p>{shown}"


@dataclass(frozen=True)
class Analysis:
    """A registry entry: what ``zspace analyze`` needs to run and save one analysis."""

    name: str
    title: str
    params: type
    compute: Callable[[Latents, Any], AnalysisResult]
    needs_vae: bool = False


def as_points(z: np.ndarray, name: str = "z") -> np.ndarray:
    """A 2-D float array (N, d) with N >= 1, or a one-line user error."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 1:
        raise ZspaceError(f"{name} must be a non-empty (N, d) array, got shape {z.shape}")
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float32)
    return z


ROWS = 65536  # rows per chunk when a pass over all points is made piece by piece
BLOCK_BYTES = 1 << 27  # bytes of one column block (see column_blocks)


def row_chunks(*arrays: np.ndarray, rows: int = ROWS):
    """(start, slices) over consecutive rows of equally long arrays, so a pass over
    memory-mapped latents of millions of points holds one slice (and its float64
    copy) at a time; the mapped pages read are let go after each slice."""
    for s in range(0, len(arrays[0]), rows):
        yield s, [a[s : s + rows] for a in arrays]
        for a in arrays:
            npz.release(a)


def column_blocks(z: np.ndarray, block_bytes: int = BLOCK_BYTES):
    """(first column, block) pairs: ``block`` holds columns ``j:j+w`` of ``z`` as rows
    of a C-contiguous (w, N) array of z's dtype, w chosen so the block stays under
    ``block_bytes``. Per-axis statistics (quantiles, histograms) then run on
    contiguous rows, and no (N, d) copy of z is ever made."""
    n, d = z.shape
    width = max(1, min(d, block_bytes // max(1, n * z.dtype.itemsize)))
    for j in range(0, d, width):
        w = min(width, d - j)
        block = np.empty((w, n), dtype=z.dtype)
        for s, (rows,) in row_chunks(z):
            block[:, s : s + len(rows)] = rows[:, j : j + w].T
        yield j, block


def subsample(n: int, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subsample of ``size`` out of ``n`` (all when size >= n)."""
    if size is None or size <= 0 or size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False))


def library_seed(seed: int) -> int:
    """A seed as scikit-learn and openTSNE take it (0 .. 2**32-1); configs allow 64 bits."""
    return seed % 2**32


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
