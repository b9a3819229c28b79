"""Matplotlib figures from saved analysis records: each returns a ``Figure``.

Inputs are the ``(record, arrays)`` pairs that ``runner.load_result`` returns, so
the figures can be redrawn at any time without touching the latents. Figures are
built with the object-oriented ``matplotlib.figure.Figure`` API and rendered by
``png``: pyplot and the global backend are never touched, so inline plots in a
notebook keep working after a report is written.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

DPI = 96
KIND_COLOURS = {"ae": "C0", "vae": "C1"}


def run_colour(i: int) -> str:
    """The colour of the i-th run on a comparison page (tab10 cycle)."""
    return f"C{i % 10}"


def subplots(*args, figsize=None, **kwargs):
    """``plt.subplots`` without pyplot: a Figure not registered with any backend."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    return buf.getvalue()


def loss_curves(history: Sequence[dict], colour: str = "C0", title: str = "") -> Figure:
    """Training and validation losses per epoch (total/reco on the left, KL on the right)."""
    fig, (a, b) = subplots(1, 2, figsize=(10, 3.6))
    ep = [h["epoch"] for h in history]
    for ax, keys in ((a, ("total", "reco")), (b, ("kl",))):
        for key, ls in zip(keys, ("-", ":"), strict=False):
            ax.plot(
                ep,
                [h.get(key) for h in history],
                ls,
                color=colour,
                marker="o",
                ms=3,
                label=f"train {key}",
            )
            val = [h.get(f"val_{key}") for h in history]
            if any(v is not None for v in val):
                ax.plot(
                    ep,
                    [np.nan if v is None else v for v in val],
                    ls,
                    color="0.45",
                    marker="s",
                    ms=3,
                    label=f"valid {key}",
                )
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    a.set_ylabel("loss per image (reconstruction + fact * KL)")
    a.set_title(f"{title}total and reconstruction loss")
    b.set_ylabel("fact * KL per image")
    b.set_title(f"{title}KL term")
    return fig


def radius_figure(rec: dict, arr: dict, colour: str = "C0") -> Figure:
    r = rec["result"]
    edges, counts = arr["edges"], arr["counts"]
    dens = counts / (max(1, r["n"]) * r["bin_width"])
    fig, ax = subplots(figsize=(8, 3.8))
    ax.axvspan(
        r["half_lo"],
        r["half_hi"],
        color=colour,
        alpha=0.12,
        label=f"densest half: {r['half_lo']:.3g}..{r['half_hi']:.3g}",
    )
    ax.stairs(dens, edges, color=colour, fill=False, lw=1.5, label="encoded points")
    ax.axvline(r["peak"], color=colour, ls="-", lw=1, label=f"peak R = {r['peak']:.3g}")
    ax.axvline(r["mean"], color=colour, ls=":", lw=1.2, label=f"mean R = {r['mean']:.4g}")
    ax.axvline(
        r["expected"],
        color="k",
        ls="--",
        lw=1,
        label=f"sqrt(z_dim) = {r['expected']:.3g} (N(0, I) peak)",
    )
    ax.set_xlabel("radius R = ||z|| (latent units)")
    ax.set_ylabel("share of points per unit R")
    ax.set_title(
        f"Radius distribution of {r['n']:,} points, z_dim {r['z_dim']}, "
        f"bin width {r['bin_width']:g}"
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def axes_figure(rec: dict, arr: dict, colour: str = "C0") -> Figure:
    r = rec["result"]
    edges, dens = arr["edges"], arr["densities"]
    centres, widths = arr["centres"], arr["widths"]
    mid = (edges[:-1] + edges[1:]) / 2
    flagged = {f["axis"] for f in r["flagged"]}
    fig, (a, b) = subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for j in range(len(dens)):
        if j not in flagged:
            a.plot(mid, dens[j], color=colour, lw=0.6, alpha=0.35)
    for k, j in enumerate(sorted(flagged)[:10]):
        a.plot(mid, dens[j], color=f"C{(k + 2) % 10}", lw=1.4, label=f"axis {j}")
    a.plot([], [], color=colour, lw=0.8, label=f"other axes ({len(dens) - len(flagged)})")
    a.set_xlabel("coordinate value z[j] (latent units)")
    a.set_ylabel("density (1 / latent unit)")
    a.set_title(f"Density of each of the {len(dens)} axes (bin {r['bin_width']:g})")
    a.legend(fontsize=7, ncol=2)
    a.grid(alpha=0.3)
    ok = np.array([j not in flagged for j in range(len(centres))])
    b.scatter(centres[ok], widths[ok], s=10, color=colour, label="normal axes")
    if (~ok).any():
        b.scatter(centres[~ok], widths[~ok], s=25, color="C3", marker="x", label="flagged")
        for j in np.flatnonzero(~ok)[:20]:
            b.annotate(
                str(j),
                (centres[j], widths[j]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
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
    b.set_xlabel("axis centre (median, latent units)")
    b.set_ylabel("axis width (IQR / 1.349)")
    b.set_title("Centre and width per axis")
    b.legend(fontsize=7)
    b.grid(alpha=0.3)
    return fig


def pca_spectrum_figure(rec: dict, arr: dict, colour: str = "C0", show: int = 60) -> Figure:
    r = rec["result"]
    ev = np.asarray(r["explained"])[:show]
    cum = np.asarray(r["cumulative"])[:show]
    k = np.arange(1, len(ev) + 1)
    fig, a = subplots(figsize=(8, 3.6))
    a.bar(k, 100 * ev, color=colour, alpha=0.8, label="per component")
    a.set_yscale("log")
    a.set_xlabel("principal component (1 = largest variance)")
    a.set_ylabel("explained variance (%)")
    b = a.twinx()
    b.plot(k, 100 * cum, color="k", lw=1.2, label="cumulative")
    b.set_ylabel("cumulative explained variance (%)")
    b.set_ylim(0, 101)
    a.set_title(f"PCA spectrum: first {len(ev)} of {r['z_dim']} components")
    a.legend(loc="center right", fontsize=8)
    b.legend(loc="lower right", fontsize=8)
    a.grid(alpha=0.3)
    return fig


def projection_figure(rec: dict, arr: dict, kind: str, colour: str = "C0") -> Figure:
    """One row per pair: all shown points, then each zoom window around the centre."""
    r = rec["result"]
    pca = kind == "pca"
    pairs = r["pairs"] if pca else r["axis_pairs"]
    proj = arr["proj_pca"] if pca else arr["proj_axes"]
    centres = r["centre_pca"] if pca else r["centre_axes"]
    counts = r["counts_pca"] if pca else r["counts_axes"]
    zooms = r["zooms"]
    cols = 1 + len(zooms)
    fig, axs = subplots(len(pairs), cols, figsize=(3.2 * cols, 3.2 * len(pairs)), squeeze=False)
    name = (lambda i: f"PC{i}") if pca else (lambda i: f"z[{i}]")
    for row, (p, c) in enumerate(zip(pairs, centres, strict=True)):
        pts = proj[row]
        for col in range(cols):
            ax = axs[row, col]
            ms, alpha = ((1.5, 0.5), (1.5, 0.5), (2.5, 0.6), (3.5, 0.7))[min(col, 3)]
            shown = pts
            if col:
                h = zooms[col - 1]
                inside = np.abs(pts - np.asarray(c)).max(axis=1) <= h
                shown = pts[inside]
                ax.set_xlim(c[0] - h, c[0] + h)
                ax.set_ylim(c[1] - h, c[1] + h)
                ax.set_title(
                    f"window +-{h:g}: {counts[row][col - 1]:,} of {r['n']:,} pts", fontsize=9
                )
            else:
                ax.set_title(f"{name(p[0])} vs {name(p[1])}: {len(pts):,} points", fontsize=9)
            ax.plot(shown[:, 0], shown[:, 1], ".", ms=ms, color=colour, alpha=alpha, mew=0)
            ax.set_aspect("equal", adjustable="box")
            ax.set_xlabel(f"{name(p[0])} (latent units)", fontsize=8)
            ax.set_ylabel(f"{name(p[1])} (latent units)", fontsize=8)
            ax.tick_params(labelsize=7)
    what = "principal axes" if pca else "original axes"
    fig.suptitle(f"Projection on pairs of {what}, with zoom windows around the centre")
    fig.subplots_adjust(wspace=0.45, hspace=0.45, top=1 - 0.5 / (3.2 * len(pairs)))
    return fig


def tsne_figure(rec: dict, arr: dict, colour: str = "C0") -> Figure:
    r = rec["result"]
    emb = arr["embedding"]
    fig, ax = subplots(figsize=(7, 6.2))
    col = arr.get("colour")
    if col is None:
        ax.scatter(emb[:, 0], emb[:, 1], s=2, color=colour, alpha=0.5, lw=0)
    else:
        values = np.unique(col)
        names = r.get("colour_names")
        cmap = matplotlib.colormaps.get_cmap("tab10" if len(values) <= 10 else "tab20")
        for i, v in enumerate(values):
            m = col == v
            label = names[int(v)] if names and 0 <= int(v) < len(names) else str(v)
            ax.scatter(
                emb[m, 0],
                emb[m, 1],
                s=2,
                color=cmap(i % cmap.N),
                alpha=0.6,
                lw=0,
                label=f"{r['colour_by']} {label}",
            )
        ax.legend(markerscale=5, fontsize=7, loc="best", ncol=2)
    pre = f", after PCA to {r['pca_components']}" if r["pca_components"] else ""
    ax.set_title(
        f"t-SNE of {r['n']:,} points (perplexity {r['perplexity']:g}, "
        f"early exaggeration {r['early_exaggeration']:g}{pre})",
        fontsize=10,
    )
    ax.set_xlabel("t-SNE 1 (arbitrary units)")
    ax.set_ylabel("t-SNE 2 (arbitrary units)")
    return fig


def kmeans_figure(rec: dict, arr: dict, colour: str = "C0") -> Figure:
    r = rec["result"]
    ks, inertia, dist = arr["ks"], arr["inertia"], arr["distance"]
    fig, (a, b) = subplots(1, 2, figsize=(11, 3.8))
    a.plot(ks, inertia, "o-", color=colour, ms=3)
    mark = r["elbow"] if r["elbow"] is not None else r["best_k"]
    i = int(np.flatnonzero(ks == mark)[0])
    label = (
        f"elbow k = {mark}"
        if r["elbow"] is not None
        else f"strongest bend k = {mark} (not pronounced)"
    )
    a.plot([mark], [inertia[i]], "*", color="C3", ms=14, label=label)
    a.set_yscale("log")
    a.set_xlabel("number of clusters k")
    a.set_ylabel("inertia: mean squared distance to centre")
    a.set_title(f"MiniBatchKMeans inertia on {r['n']:,} points")
    a.legend(fontsize=8)
    a.grid(alpha=0.3, which="both")
    b.plot(ks, dist, "o-", color=colour, ms=3)
    b.axvline(mark, color="C3", ls=":")
    b.set_xlabel("number of clusters k")
    b.set_ylabel("distance below chord (normalised log inertia)")
    b.set_title(f"Elbow strength {r['strength']:.2f} (pronounced from {r['min_strength']:g})")
    b.grid(alpha=0.3)
    return fig


def vae_figure(rec: dict, arr: dict, colour: str = "C1") -> Figure:
    r = rec["result"]
    fig, (a, b, c) = subplots(1, 3, figsize=(14, 3.8))
    a.stairs(arr["logvar_counts"], arr["logvar_edges"], color=colour, fill=True, alpha=0.6)
    a.axvline(r["logvar_mean"], color="k", ls=":", label=f"mean {r['logvar_mean']:.3g}")
    a.set_xlabel("logvar of a component")
    a.set_ylabel("number of components")
    a.set_title("Encoder log-variances")
    a.legend(fontsize=8)
    lv = arr["axis_logvar_mean"]
    b.bar(np.arange(len(lv)), lv, color=colour)
    b.set_xlabel("latent axis j")
    b.set_ylabel("mean logvar over points")
    b.set_title("Mean logvar per axis")
    c.stairs(arr["rel_counts"], arr["rel_edges"], color=colour, fill=True, alpha=0.6)
    c.set_xlabel("log10 of | ||z|| - ||mu|| | / ||mu||")
    c.set_ylabel("number of points")
    c.set_title(f"Relative radius difference z vs mu (mean {r['radius_rel_mean']:.2g})")
    for ax in (a, b, c):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def overlay_radius(items: Sequence[tuple[str, dict, dict]]) -> Figure:
    """Radius densities of several runs in one plot; items are (name, record, arrays)."""
    fig, ax = subplots(figsize=(8, 3.8))
    for i, (name, rec, arr) in enumerate(items):
        r = rec["result"]
        dens = arr["counts"] / (max(1, r["n"]) * r["bin_width"])
        ax.stairs(
            dens,
            arr["edges"],
            color=run_colour(i),
            lw=1.5,
            label=f"{name}: peak {r['peak']:.3g}, sqrt(d) {r['expected']:.3g}",
        )
    ax.set_xlabel("radius R = ||z|| (latent units)")
    ax.set_ylabel("share of points per unit R")
    ax.set_title("Radius distributions of the compared runs")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def overlay_inertia(items: Sequence[tuple[str, dict, dict]]) -> Figure:
    """Inertia curves, each divided by its value at the smallest k (shapes compare)."""
    fig, ax = subplots(figsize=(8, 3.8))
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
    ax.set_xlabel("number of clusters k")
    ax.set_ylabel("inertia / inertia at smallest k")
    ax.set_title("KMeans inertia curves of the compared runs")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def overlay_losses(items: Sequence[tuple[str, list[dict]]]) -> Figure:
    fig, ax = subplots(figsize=(8, 3.8))
    for i, (name, hist) in enumerate(items):
        ep = [h["epoch"] for h in hist]
        ax.plot(ep, [h.get("total") for h in hist], "-", color=run_colour(i), label=f"{name} train")
        val = [h.get("val_total") for h in hist]
        if any(v is not None for v in val):
            ax.plot(
                ep,
                [np.nan if v is None else v for v in val],
                "--",
                color=run_colour(i),
                label=f"{name} valid",
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("total loss per image")
    ax.set_title("Loss curves of the compared runs")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def analysis_figures(name: str, rec: dict, arr: dict, colour: str = "C0") -> list[Figure]:
    """The figures of one saved (or in-memory) analysis, in report order; none for an
    analysis this module has no drawing for."""
    draw = {
        "radius": [radius_figure],
        "axes": [axes_figure],
        "pca": [
            pca_spectrum_figure,
            lambda r, a, c: projection_figure(r, a, "pca", c),
            lambda r, a, c: projection_figure(r, a, "axes", c),
        ],
        "tsne": [tsne_figure],
        "kmeans": [kmeans_figure],
        "vae": [vae_figure],
    }
    return [f(rec, arr, colour) for f in draw.get(name, [])]


def image_figure(path, caption: str = "") -> Figure:
    """A saved PNG (a generated grid) shown in a Figure, for notebooks."""
    from PIL import Image

    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB"))
    h, w = pixels.shape[:2]
    fig, ax = subplots(figsize=(min(12, w / DPI), min(12, w / DPI) * h / w))
    ax.imshow(pixels)
    ax.set_axis_off()
    if caption:
        ax.set_title(caption, fontsize=8, wrap=True)
    return fig
