"""Matplotlib figures from saved analysis records: each returns a ``Figure``.

Inputs are the ``(record, arrays)`` pairs that ``runner.load_result`` returns, so
the figures can be redrawn at any time without touching the latents. Figures are
built with the object-oriented ``matplotlib.figure.Figure`` API and rendered by
``png``: pyplot and the global backend are never touched, so inline plots in a
notebook keep working after a report is written. Every figure is drawn under the
shared style of ``zspace.reporting.style`` (fonts, grid, ticks, legends).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from functools import partial

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from zspace.reporting.style import (
    DPI,
    RC,
    figure,
    legend_outside,
    plain,
    plain_log,
    styled,
    whole_ticks,
)

KIND_COLOURS = {"ae": "C0", "vae": "C1"}


def run_colour(i: int) -> str:
    """The colour of the i-th run on a comparison page (tab10 cycle)."""
    return f"C{i % 10}"


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    return buf.getvalue()


def _series(history: Sequence[dict], key: str) -> list[float]:
    return [np.nan if h.get(key) is None else h[key] for h in history]


@styled
def loss_curves(history: Sequence[dict], colour: str = "C0") -> Figure:
    """Training and validation losses per epoch (total/reco on the left, KL on the right;
    an AE, whose KL term is 0 throughout, gets the left panel only)."""
    has_kl = any(h.get("kl") or h.get("val_kl") for h in history)
    fig, axes = figure(1, 2 if has_kl else 1, size=(10, 3.6) if has_kl else (6.5, 3.6))
    a, b = (axes[0], axes[1]) if has_kl else (axes, None)
    ep = [h["epoch"] for h in history]
    panels = [(a, ("total", "reco"))] + ([(b, ("kl",))] if b is not None else [])
    for ax, keys in panels:
        for key, ls in zip(keys, ("-", ":"), strict=False):
            ax.plot(
                ep, _series(history, key), ls, color=colour, marker="o", ms=3, label=f"train {key}"
            )
            val = _series(history, f"val_{key}")
            if not np.all(np.isnan(val)):
                ax.plot(ep, val, ls, color="0.45", marker="s", ms=3, label=f"valid {key}")
        ax.set_xlabel("epoch")
        whole_ticks(ax)
        ax.legend()
    a.set_ylabel("loss per image")
    if b is None:
        a.set_title("reconstruction loss (an AE: no KL term)")
        return fig
    a.set_title("total (reconstruction + fact * KL) and reconstruction")
    b.set_ylabel("fact * KL per image")
    b.set_title("KL term")
    return fig


def _radius(ax, rec: dict, arr: dict, colour: str, label: str, scale: float = 1.0) -> None:
    """A run's radius density (share of points per unit R) as stairs; ``scale`` divides
    R (and multiplies the density, so the area stays 1)."""
    r = rec["result"]
    dens = arr["counts"] / (max(1, r["n"]) * r["bin_width"]) * scale
    ax.stairs(dens, np.asarray(arr["edges"]) / scale, color=colour, lw=1.5, label=label)
    ax.set_xlabel("radius R = ||z|| (latent units)")
    ax.set_ylabel("share of points per unit R")


@styled
def radius_figure(rec: dict, arr: dict, colour: str = "C0") -> Figure:
    r = rec["result"]
    fig, ax = figure(size=(9, 3.6))
    lo, hi = r["half_lo"], r["half_hi"]
    ax.axvspan(lo, hi, color=colour, alpha=0.12, label=f"densest half: {lo:.3g} to {hi:.3g}")
    _radius(ax, rec, arr, colour, "encoded points")
    ax.axvline(r["peak"], color=colour, ls="-", lw=1, label=f"peak R = {r['peak']:.3g}")
    ax.axvline(r["mean"], color=colour, ls=":", lw=1.2, label=f"mean R = {r['mean']:.3g}")
    where = f"sqrt(z_dim) = {r['expected']:.3g}\n(where N(0, I) peaks)"
    ax.axvline(r["expected"], color="k", ls="--", lw=1, label=where)
    ax.set_title(f"Radius of {r['n']:,} points, z_dim {r['z_dim']}, bin width {r['bin_width']:g}")
    legend_outside(ax)
    return fig


@styled
def axes_figure(rec: dict, arr: dict, colour: str = "C0") -> Figure:
    r = rec["result"]
    edges, dens = arr["edges"], arr["densities"]
    centres, widths = arr["centres"], arr["widths"]
    mid = (edges[:-1] + edges[1:]) / 2
    flagged = {f["axis"] for f in r["flagged"]}
    d = len(dens)
    fig, (a, b) = figure(1, 2, size=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for j in range(d):
        if j not in flagged:
            a.plot(mid, dens[j], color=colour, lw=0.6, alpha=0.35)
    for k, j in enumerate(sorted(flagged)[:10]):
        a.plot(mid, dens[j], color=f"C{(k + 2) % 10}", lw=1.4, label=f"axis {j}")
    rest = f"the other {d - len(flagged)} axes" if flagged else f"all {d} axes (none flagged)"
    a.plot([], [], color=colour, lw=0.8, label=rest)
    a.set_xlabel("coordinate value z[j] (latent units)")
    a.set_ylabel("density (1 / latent unit)")
    a.set_title(f"Density of each of the {d} axes (bin width {r['bin_width']:g})")
    a.legend(ncol=2 if len(flagged) > 4 else 1)
    ok = np.array([j not in flagged for j in range(len(centres))])
    cmed, wmed = r["centre_median"], r["width_median"]
    lim = max(r["centre_k"] * r["centre_spread"], r["centre_floor"] * wmed)
    b.axvspan(cmed - lim, cmed + lim, color="0.85", alpha=0.5, label="centre limit")
    b.axhline(
        r["width_ratio"] * wmed,
        color="k",
        ls="--",
        lw=1,
        label=f"width limit ({r['width_ratio']:g} x median)",
    )
    b.scatter(centres[ok], widths[ok], s=10, color=colour, label="axes within the limits")
    if (~ok).any():
        b.scatter(centres[~ok], widths[~ok], s=25, color="C3", marker="x", label="flagged axes")
        for j in np.flatnonzero(~ok)[:20]:
            b.annotate(
                str(j),
                (centres[j], widths[j]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    b.set_ylim(0, max(float(np.max(widths)), r["width_ratio"] * wmed) * 1.15)
    b.set_xlabel("axis centre (median, latent units)")
    b.set_ylabel("axis width (IQR / 1.349)")
    b.set_title("Centre and width of each axis")
    b.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)  # under the axes
    return fig


@styled
def pca_spectrum_figure(rec: dict, arr: dict, colour: str = "C0", show: int = 60) -> Figure:
    """Explained variance per component (log axis, every bar visible) and cumulative."""
    r = rec["result"]
    ev = 100 * np.asarray(r["explained"])[:show]
    cum = 100 * np.asarray(r["cumulative"])[:show]
    k = np.arange(1, len(ev) + 1)
    fig, a = figure(size=(9, 3.6))
    positive = ev[ev > 0]
    bottom = float(positive.min()) / 3 if len(positive) else 1e-3
    a.bar(k, np.maximum(ev, bottom), bottom=0, color=colour, alpha=0.8, label="per component")
    a.set_yscale("log")
    a.set_ylim(bottom, max(100.0, float(ev.max()) * 1.5) if len(ev) else 100.0)
    plain_log(a, "y", "%")
    a.set_xlabel("principal component (1 = largest variance)")
    a.set_ylabel("explained variance (log)")
    if len(k) <= 30:
        a.set_xticks(k)
    else:
        whole_ticks(a)
    a.set_xlim(0.4, len(k) + 0.6)
    b = a.twinx()
    b.plot(k, cum, color="k", lw=1.2, marker=".", ms=4, label="cumulative (right axis)")
    b.set_ylabel("cumulative explained variance (%)")
    b.set_ylim(0, 101)
    b.grid(False)
    shown = f"first {len(ev)} of {r['z_dim']}" if len(ev) < r["z_dim"] else f"all {r['z_dim']}"
    a.set_title(f"PCA spectrum: {shown} components")
    handles = a.get_legend_handles_labels()[0] + b.get_legend_handles_labels()[0]
    labels = a.get_legend_handles_labels()[1] + b.get_legend_handles_labels()[1]
    b.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.1, 1.0), borderaxespad=0)
    return fig


@styled
def projection_figure(rec: dict, arr: dict, colour: str = "C0", kind: str = "pca") -> Figure:
    """One row per pair (of principal axes, or of original axes for ``kind="axes"``): all
    shown points, then each zoom window around the centre; every panel says how many of
    the points it holds."""
    r = rec["result"]
    pca = kind == "pca"
    pairs = r["pairs"] if pca else r["axis_pairs"]
    proj, centres, counts = arr[f"proj_{kind}"], r[f"centre_{kind}"], r[f"counts_{kind}"]
    # half-widths of each pair's zoom windows (older results: the same for all pairs)
    windows = r.get(f"windows_{kind}") or [list(r["zooms"])] * len(pairs)
    relative = r.get("zoom_mode", "absolute") == "relative"
    n, drawn = r["n"], r.get("n_shown", len(proj[0]) if len(proj) else 0)
    cols = 1 + len(windows[0]) if windows else 1
    fig, axs = figure(len(pairs), cols, size=(3.1 * cols, 3.3 * len(pairs)), squeeze=False)
    name = (lambda i: f"PC{i}") if pca else (lambda i: f"z[{i}]")
    for row, (p, c) in enumerate(zip(pairs, centres, strict=True)):
        pts = proj[row]
        for col in range(cols):
            ax = axs[row, col]
            base = 1.5 if len(pts) > 20_000 else 2.5 if len(pts) < 5_000 else 2.0
            ms, alpha = base + min(col, 3) * 0.7, 0.5 + 0.07 * min(col, 3)
            shown = pts
            if col:
                h = windows[row][col - 1]
                inside = np.abs(pts - np.asarray(c)).max(axis=1) <= h
                shown = pts[inside]
                ax.set_xlim(c[0] - h, c[0] + h)
                ax.set_ylim(c[1] - h, c[1] + h)
                share = counts[row][col - 1] / max(1, n)
                what = f"{r['zooms'][col - 1]:g} x extent" if relative else "fixed"
                ax.set_title(
                    f"window ±{plain(h)} ({what})\n{counts[row][col - 1]:,} of "
                    f"{n:,} points ({100 * share:.3g} %)",
                    fontsize=8.5,
                )
            else:
                every = f"{drawn:,} of {n:,} points drawn" if drawn < n else f"all {n:,} points"
                ax.set_title(f"{name(p[0])} vs {name(p[1])}\n{every}", fontsize=8.5)
            ax.plot(shown[:, 0], shown[:, 1], ".", ms=ms, color=colour, alpha=alpha, mew=0)
            ax.set_aspect("equal", adjustable="box")
            ax.set_xlabel(f"{name(p[0])} (latent units)", fontsize=8)
            ax.set_ylabel(f"{name(p[1])} (latent units)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(4))  # labels of narrow windows run long
    what = "principal axes" if pca else "original axes"
    fig.suptitle(f"Projection on pairs of {what}, with zoom windows around the median")
    return fig


def _colour_label(r: dict, value: int) -> str:
    """What a colour value means: a class name, or yes/no/unknown for an attribute."""
    names = r.get("colour_names")
    if names and 0 <= int(value) < len(names):
        return str(names[int(value)])
    if r.get("colour_by") not in (None, "label"):  # a CelebA attribute: +1 / -1 / 0
        return {1: "yes", -1: "no", 0: "unknown (no row)"}.get(int(value), str(value))
    return str(value)


@styled
def tsne_figure(rec: dict, arr: dict, colour: str = "C0") -> Figure:
    r = rec["result"]
    emb = arr["embedding"]
    fig, ax = figure(size=(8.2, 6.2))
    col = arr.get("colour")
    if col is None:
        ax.scatter(emb[:, 0], emb[:, 1], s=2, color=colour, alpha=0.5, lw=0)
    else:
        values = np.unique(col)
        cmap = matplotlib.colormaps.get_cmap("tab10" if len(values) <= 10 else "tab20")
        for i, v in enumerate(values):
            m = col == v
            ax.scatter(
                emb[m, 0],
                emb[m, 1],
                s=2,
                color=cmap(i % cmap.N),
                alpha=0.6,
                lw=0,
                label=f"{_colour_label(r, v)} ({int(m.sum()):,})",
            )
        legend_outside(
            ax, markerscale=5, title=str(r["colour_by"]), ncol=1 if len(values) <= 12 else 2
        )
    pre = f", after PCA to {r['pca_components']}" if r["pca_components"] else ""
    ax.set_title(
        f"t-SNE of {r['n']:,} points (perplexity {r['perplexity']:g}, "
        f"early exaggeration {r['early_exaggeration']:g}{pre})"
    )
    ax.set_xlabel("t-SNE 1 (arbitrary units)")
    ax.set_ylabel("t-SNE 2 (arbitrary units)")
    ax.set_aspect("equal", adjustable="datalim")
    return fig


@styled
def kmeans_figure(rec: dict, arr: dict, colour: str = "C0") -> Figure:
    r = rec["result"]
    ks, inertia, dist = arr["ks"], arr["inertia"], arr["distance"]
    fig, (a, b) = figure(1, 2, size=(11, 3.8))
    a.plot(ks, inertia, "o-", color=colour, ms=3, label="inertia")
    mark = r["elbow"] if r["elbow"] is not None else r["best_k"]
    i = int(np.flatnonzero(ks == mark)[0])
    label = f"elbow k = {mark}" if r["elbow"] is not None else f"strongest bend k = {mark}"
    a.plot([mark], [inertia[i]], "*", color="C3", ms=14, label=label)
    a.set_yscale("log")
    plain_log(a, "y")
    whole_ticks(a)
    a.set_xlabel("number of clusters k")
    a.set_ylabel("inertia per point")
    a.set_title(f"MiniBatchKMeans inertia on {r['n']:,} points")
    a.legend()
    b.plot(ks, dist, "o-", color=colour, ms=3)
    b.axvline(mark, color="C3", ls=":")
    whole_ticks(b)
    b.set_xlabel("number of clusters k")
    b.set_ylabel("distance below the chord")
    verdict = "pronounced" if r["elbow"] is not None else "not pronounced"
    b.set_title(f"Bend strength {r['strength']:.2f}: {verdict} (from {r['min_strength']:g})")
    return fig


@styled
def vae_figure(rec: dict, arr: dict, colour: str = "C1") -> Figure:
    r = rec["result"]
    fig, (a, b, c) = figure(1, 3, size=(14, 3.8))
    a.stairs(arr["logvar_counts"], arr["logvar_edges"], color=colour, fill=True, alpha=0.6)
    a.axvline(r["logvar_mean"], color="k", ls=":", label=f"mean {r['logvar_mean']:.3g}")
    a.set_xlabel("logvar of a component")
    a.set_ylabel("number of components")
    a.set_title("Encoder log-variances")
    a.legend()
    lv = arr["axis_logvar_mean"]
    b.bar(np.arange(len(lv)), lv, color=colour)
    whole_ticks(b)
    b.set_xlabel("latent axis j")
    b.set_ylabel("mean logvar over points")
    b.set_title("Mean logvar per axis")
    c.stairs(arr["rel_counts"], arr["rel_edges"], color=colour, fill=True, alpha=0.6)
    c.set_xlabel("log10 of | ||z|| - ||mu|| | / ||mu||")
    c.set_ylabel("number of points")
    c.set_title(f"Relative radius difference z vs mu (mean {r['radius_rel_mean']:.2g})")
    return fig


@styled
def overlay_radius(items: Sequence[tuple[str, dict, dict]]) -> Figure:
    """Radius densities of several runs in one plot, as R / sqrt(d) so runs of different
    d share one axis; 1 is where N(0, I) peaks (the report's sqrt(z_dim) line). Items
    are (name, record, arrays)."""
    fig, ax = figure(size=(9, 3.6))
    for i, (name, rec, arr) in enumerate(items):
        r = rec["result"]
        root = math.sqrt(r["z_dim"])
        label = f"{name} (d = {r['z_dim']}): peak R / sqrt(d) = {r['peak'] / root:.3g}"
        _radius(ax, rec, arr, run_colour(i), label, root)
    ax.axvline(1.0, color="k", ls="--", lw=1, label="1 = sqrt(d)\n(where N(0, I) peaks)")
    ax.set_xlabel("R / sqrt(d) (radius over the square root of the latent dimension)")
    ax.set_ylabel("share of points per unit R / sqrt(d)")
    ax.set_title("Radius distributions of the compared runs, scaled by sqrt(d)")
    legend_outside(ax)
    return fig


@styled
def overlay_inertia(items: Sequence[tuple[str, dict, dict]]) -> Figure:
    """Inertia curves, each divided by its value at the smallest k (shapes compare)."""
    fig, ax = figure(size=(9, 3.6))
    for i, (name, rec, arr) in enumerate(items):
        r = rec["result"]
        el = f"elbow {r['elbow']}" if r["elbow"] is not None else "no pronounced elbow"
        ax.plot(
            arr["ks"],
            arr["inertia"] / arr["inertia"][0],
            "o-",
            ms=3,
            color=run_colour(i),
            label=f"{name}: {el}",
        )
    whole_ticks(ax)
    ax.set_xlabel("number of clusters k")
    ax.set_ylabel("inertia / inertia at the smallest k")
    ax.set_title("KMeans inertia curves of the compared runs")
    legend_outside(ax)
    return fig


@styled
def overlay_losses(items: Sequence[tuple[str, list[dict]]]) -> Figure:
    """The runs' total losses per epoch, each in its colour; a run without a history
    (imported) keeps its colour and has no line or legend entry."""
    fig, ax = figure(size=(9, 3.6))
    for i, (name, hist) in enumerate(items):
        if not hist:
            continue
        ep = [h["epoch"] for h in hist]
        ax.plot(ep, _series(hist, "total"), "-", color=run_colour(i), label=f"{name} train")
        val = _series(hist, "val_total")
        if not np.all(np.isnan(val)):
            ax.plot(ep, val, "--", color=run_colour(i), label=f"{name} valid")
    whole_ticks(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel("total loss per image")
    ax.set_title("Loss curves of the compared runs")
    legend_outside(ax)
    return fig


def analysis_figures(name: str, rec: dict, arr: dict, colour: str = "C0") -> list[Figure]:
    """The figures of one saved (or in-memory) analysis, in report order; none for an
    analysis this module has no drawing for."""
    draw: dict[str, list[Callable[..., Figure]]] = {
        "radius": [radius_figure],
        "axes": [axes_figure],
        "pca": [pca_spectrum_figure, projection_figure, partial(projection_figure, kind="axes")],
        "tsne": [tsne_figure],
        "kmeans": [kmeans_figure],
        "vae": [vae_figure],
    }
    return [f(rec, arr, colour) for f in draw.get(name, [])]


@styled
def image_figure(path, caption: str = "") -> Figure:
    """A saved PNG (a generated grid) shown in a Figure, for notebooks."""
    from PIL import Image

    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB"))
    h, w = pixels.shape[:2]
    fig, ax = figure(size=(min(12, w / DPI), min(12, w / DPI) * h / w))
    ax.imshow(pixels, interpolation="nearest")
    ax.set_axis_off()
    if caption:
        ax.set_title(caption, fontsize=8, wrap=True)
    return fig
