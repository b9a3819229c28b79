"""Figures of the perceptron study, drawn from a PerceptronResult (no computation here
beyond evaluating the fitted neuron on a plotting grid).

Each function returns a matplotlib Figure built without pyplot (no global state), in
the shared style of ``zspace.reporting.style``; ``zspace.reporting.figures.png`` renders it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from zspace.perceptron.neuron import output_grid
from zspace.reporting.style import figure, plain_log, styled, whole_ticks

if TYPE_CHECKING:
    from zspace.perceptron.study import PerceptronResult

#: how the two target classes are drawn everywhere
CLASS_STYLE = {0.3: ("o", "tab:blue"), 0.7: ("^", "tab:red")}


def _scatter_classes(ax, xy: np.ndarray, target: np.ndarray, **kw) -> None:
    for t in np.unique(target):
        m, c = CLASS_STYLE.get(round(float(t), 6), ("s", "tab:gray"))
        sel = target == t
        ax.scatter(xy[sel, 0], xy[sel, 1], marker=m, c=c, label=f"target {t:g}", **kw)


@styled
def fig_samples(result: PerceptronResult) -> Figure:
    """The samples before and after scaling: how the scaling moves the two clusters."""
    fig, (ax0, ax1) = figure(1, 2, size=(11, 5))
    t = result.samples.target
    _scatter_classes(ax0, result.samples.K, t, s=45)
    ax0.set(xlabel="K1 (original)", ylabel="K2 (original)", title="original samples")
    _scatter_classes(ax1, result.k, t, s=45)
    if result.scaling.per_sample:
        phi = np.linspace(0.0, np.pi / 2, 100)
        ax1.plot(np.cos(phi), np.sin(phi), "k--", lw=0.8, label="unit circle")
        ax1.set_aspect("equal")
    ax1.set(xlabel="k1 (scaled)", ylabel="k2 (scaled)", title=f"scaled: {result.scaling.name}")
    for ax in (ax0, ax1):
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    fig.suptitle("Samples in feature space")
    return fig


@styled
def fig_surface(result: PerceptronResult) -> Figure | None:
    """The cost over the (w1, w2) mesh: 3-D wireframe and log-scaled filled contours
    with both descent paths and the mesh minimum."""
    s = result.surface
    if s is None or s.cost is None:
        return None
    fig = Figure(figsize=(14, 6), layout="constrained")
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    st = max(1, math.ceil(max(s.w1.size, s.w2.size) / 45))
    W1, W2 = np.meshgrid(s.w1[::st], s.w2[::st])
    ax3.plot_wireframe(W1, W2, s.cost[::st, ::st], color="tab:green", linewidth=0.6)
    ax3.view_init(20, 135)
    ax3.set(xlabel="w1", ylabel="w2", zlabel="cost C", title="cost surface")

    ax = fig.add_subplot(1, 2, 2)
    st = max(1, math.ceil(max(s.w1.size, s.w2.size) / 500))
    logc = np.log10(np.maximum(s.cost[::st, ::st], 1e-300))
    cs = ax.contourf(s.w1[::st], s.w2[::st], logc, levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="log10 C")
    # batch wide underneath, stochastic thin on top: the two paths nearly coincide
    for run, c, ls, lw in ((result.batch, "orange", "-", 4), (result.stochastic, "k", "--", 1.3)):
        ax.plot(run.weights[:, 0], run.weights[:, 1], ls, color=c, lw=lw, label=f"{run.mode} path")
    ax.plot(*s.w_min, "r*", ms=14, label=f"mesh minimum C = {s.c_min:.4g}")
    ax.plot(*result.batch.start, "wo", ms=6, label="start")
    ax.set(xlabel="w1", ylabel="w2", title="log10 of the cost, with the descent paths")
    ax.legend(loc="lower left", fontsize=9)
    fig.suptitle(f"Cost C(w1, w2) after scaling '{result.scaling.name}'")
    return fig


@styled
def fig_evolution(result: PerceptronResult) -> Figure:
    """Cost and weights step by step, stochastic next to batch descent."""
    fig, axes = figure(2, 2, size=(12, 7), sharex="col")
    for col, run in enumerate((result.stochastic, result.batch)):
        steps = np.arange(run.steps + 1)
        a = axes[0, col]
        a.plot(steps, run.costs, color="tab:purple")
        a.set_yscale("log")
        plain_log(a, "y")
        a.set(ylabel="cost C (log)", title=f"{run.mode} descent (eta {run.eta:g})")
        b = axes[1, col]
        b.plot(steps, run.weights[:, 0], label="w1")
        b.plot(steps, run.weights[:, 1], label="w2")
        b.set(xlabel="step", ylabel="weight")
        whole_ticks(b)
        b.legend(loc="best")
        for ax in (a, b):
            ax.grid(alpha=0.3)
    fig.suptitle(f"Evolution of cost and weights ('{result.scaling.name}' scaling)")
    return fig


@styled
def fig_output(result: PerceptronResult) -> Figure:
    """The trained neuron's output over the ORIGINAL (K1, K2) plane: the geometry a
    scaling imposes (parallel lines for affine scalings, rays for per-sample)."""
    # a grid over the original plane around the samples (margin 20) and A on it
    K1, K2 = (np.linspace(k.min() - 20, k.max() + 20, 400) for k in result.samples.K.T)
    A = output_grid(result.scaling, result.batch.final, K1, K2)
    fig, ax = figure(size=(9, 7.5))
    norm = TwoSlopeNorm(vcenter=0.5, vmin=min(A.min(), 0.499), vmax=max(A.max(), 0.501))
    cs = ax.contourf(K1, K2, A, levels=25, cmap="RdYlBu_r", norm=norm)
    fig.colorbar(cs, ax=ax, label="neuron output A")
    levels = [v for v in (0.3, 0.5, 0.7) if A.min() < v < A.max()]
    if levels:
        lines = ax.contour(K1, K2, A, levels=levels, colors="k", linewidths=1.2)
        ax.clabel(lines, fmt="A=%.1f", fontsize=9)
    _scatter_classes(ax, result.samples.K, result.samples.target, s=60, edgecolors="k")
    w1, w2 = result.batch.final
    ax.set(
        xlabel="K1 (original units)",
        ylabel="K2 (original units)",
        title=f"output of the batch-trained neuron, w = ({w1:.4f}, {w2:.4f}), "
        f"scaling '{result.scaling.name}'",
    )
    ax.legend(loc="upper right")
    return fig
