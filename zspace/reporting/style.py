"""The one look of every figure zspace draws: sizes, fonts, grid, ticks and legends.

Every figure function runs inside ``styled`` (matplotlib's ``rc_context`` with
``RC``), so no figure sets fonts or grids of its own and a notebook's global
settings are left alone. The helpers are the rules a reader would otherwise miss
one figure at a time: whole-number ticks where only whole numbers exist (epochs,
k), plain numbers on log axes instead of ``9 x 10^0``, legends outside the data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

DPI = 96
RC: dict[RcKeyType, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "legend.framealpha": 0.9,
    "legend.edgecolor": "0.85",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.titlepad": 6,
    "axes.formatter.useoffset": False,
    "axes.formatter.limits": (-4, 6),
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.constrained_layout.use": True,
}

F = TypeVar("F", bound=Callable[..., Figure | None])  # some figures may have nothing to show


def styled(fn: F) -> F:
    """Build the figure under the shared rc settings (and only there)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Figure | None:
        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def figure(rows: int = 1, cols: int = 1, *, size: tuple[float, float], **kwargs: Any):
    """A Figure (no pyplot, constrained layout) and its axes, like ``plt.subplots``."""
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(rows, cols, **kwargs)


def whole_ticks(ax) -> None:
    """Ticks on whole numbers only on the x axis (epochs, cluster counts)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins="auto"))


def plain(value: float) -> str:
    """A tick label as a person writes it: 0.01, 2, 150, 2e+06 only when huge."""
    if value == 0:
        return "0"
    text = f"{value:.3g}"
    return text.replace("e+0", "e").replace("e-0", "e-")


def plain_log(ax, axis: str = "y", unit: str = "") -> None:
    """A log axis labelled with plain numbers (``0.1 %``, ``2``, ``50``): within one
    decade every digit is labelled, within two the 2 and 5 of each decade."""
    target = getattr(ax, f"{axis}axis")
    lo, hi = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    label = FuncFormatter(lambda v, _: plain(v) + (f" {unit}" if unit else ""))
    target.set_major_locator(LogLocator(base=10))
    target.set_major_formatter(label)
    if lo > 0 and hi / lo < 100:
        subs = tuple(range(2, 10)) if hi / lo < 10 else (2.0, 5.0)
        target.set_minor_locator(LogLocator(base=10, subs=subs))
        target.set_minor_formatter(label)
    else:
        target.set_minor_formatter(NullFormatter())


def legend_outside(ax, **kwargs: Any):
    """A legend to the right of the axes, where it cannot cover data."""
    opts = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
    return ax.legend(**{**opts, **kwargs})
