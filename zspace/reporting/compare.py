"""Several runs side by side: radius curves overlaid, losses, inertia curves, logvar stats,
meaningful-point rates and the sampler grids.

Each run keeps one colour (tab10 by its position) on every figure of the page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib.colors import to_hex

from zspace.analysis.runner import load_result
from zspace.core.display import esc, img
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_text, check_writable
from zspace.reporting import figures as F
from zspace.reporting.evaluation import check_samples, compare_html, labelled, row_key, samples_json
from zspace.reporting.html import Html, page, section, table
from zspace.reporting.report import grid_figure
from zspace.runs.folder import latent_shape, origin_of, origin_text, read_history, read_meta

LOSSES = {"total": "total", "reco": "reco", "kl": "fact * KL", "val_total": "valid total"}
LOSSES |= {"val_reco": "valid reco"}
VAE = {"logvar_min": "logvar min", "logvar_max": "logvar max", "logvar_mean": "logvar mean"}
VAE |= {"diff_max": "max |z-mu|", "radius_abs_mean": "mean |R(z)-R(mu)|"}
VAE |= {"radius_rel_mean": "mean relative"}
OVERLAYS = {"radius": ("Radius distributions", F.overlay_radius)}
OVERLAYS |= {"kmeans": ("KMeans inertia curves", F.overlay_inertia)}
# each run's latent space in one figure, side by side (the runs may differ in d)
MAPS = {"pca": ("PCA spectrum", lambda r, a, c: F.pca_spectrum_figure(r, a, c))}
MAPS |= {"tsne": ("t-SNE map", F.tsne_figure)}
NAV = [("runs", "Runs"), ("losses", "Losses"), ("latent", "Latent spaces"), ("radius", "Radius")]
NAV += [("kmeans", "KMeans")]
NAV += [("vae", "VAE internals"), ("generation", "Generation")]


def swatch(colour: str) -> Html:
    """A small block of the run's colour, as on every figure of the page."""
    return Html(f'<span class="swatch" style="background:{to_hex(colour)}"></span>')


def _names(dirs: Sequence[Path]) -> list[str]:
    names = [d.name for d in dirs]
    if len(set(names)) < len(names):  # same leaf name: add the parent
        names = [f"{d.parent.name}/{d.name}" for d in dirs]
    return names


def build_compare(
    runs: Sequence[str | Path], out: str | Path, log: Callable[[str], None] | None = None
) -> Path:
    """Write ``out/compare.html`` for the given run folders; returns its path."""
    dirs = [Path(r) for r in runs]
    if len(dirs) < 2:
        raise ZspaceError("compare needs at least two runs")
    metas = [read_meta(d) for d in dirs]  # refuses a folder without config.toml or meta.json
    for d in dirs:
        check_samples(d)  # before any figure is drawn
    check_writable(Path(out) / "compare.html", "--out")  # before any figure is drawn
    names = _names(dirs)
    hists = [read_history(d) for d in dirs]
    legend = []
    for i, (n, d, h) in enumerate(zip(names, dirs, hists, strict=True)):
        meta, shape = metas[i], latent_shape(d)
        origin, epochs = origin_text(meta), len(h) if origin_of(meta) is None else "imported"
        kind, dim = str(meta.get("kind", "?")).upper(), f"{math.prod(shape)} {shape}"
        legend.append([n, swatch(F.run_colour(i)), kind, origin, str(d), dim, epochs])
    head = ["run", "colour", "kind", "origin", "folder", "d (latent shape)", "epochs"]
    runs_table = table(head, legend, left=6)
    body = [section("runs", "Runs and their colours", runs_table)]
    last = [h[-1] if h else {} for h in hists]
    loss = "<p>Losses per image in the last epoch:</p>" + table(
        ["run", "epochs", *LOSSES.values()],
        [
            [n, r.get("epoch"), *(r.get(k) for k in LOSSES)]
            for n, r in zip(names, last, strict=True)
        ],
    )
    if any(hists):
        loss = img(F.overlay_losses(list(zip(names, hists, strict=True))), "loss curves") + loss
    if none := [n for n, m in zip(names, metas, strict=True) if origin_of(m) is not None]:
        loss = (
            f'<p class="key">No training history (imported) for {esc(", ".join(none))}.</p>' + loss
        )
    body.append(section("losses", "Losses", loss))
    body.append(section("latent", "Latent spaces side by side", latent_html(names, dirs)))
    for name, (title, overlay) in OVERLAYS.items():
        got = {n: load_result(d, name) for n, d in zip(names, dirs, strict=True)}
        items = [(n, *g) for n, g in got.items() if g is not None]
        words = "".join(
            f"<li><b>{esc(n)}</b>: {esc(rec['summary'].rstrip('.'))}.</li>" for n, rec, _ in items
        )
        html = (img(overlay(items), title) if items else "") + f"<ul>{words}</ul>"
        if lacking := [n for n, g in got.items() if g is None]:
            html += (
                f'<p class="missing">No {name} analysis for {esc(", ".join(lacking))}: '
                f"run <code>zspace analyze RUN --only {name}</code>.</p>"
            )
        body.append(section(name, title, html))
    vae = [(n, load_result(d, "vae")) for n, d in zip(names, dirs, strict=True)]
    rows = [[n, *((g[0]["result"].get(k) if g else None) for k in VAE)] for n, g in vae]
    html = (
        "<p>Encoder log-variances and how far z strays from mu:</p>"
        + table(["run", *VAE.values()], rows)
        + "<p>A dash: an AE, or a VAE whose vae analysis has not been run.</p>"
    )
    body.append(section("vae", "VAE internals", html))
    body.append(section("generation", "Generation", generation_html(names, dirs)))
    text = page("zspace comparison", " vs ".join(names), NAV, "\n".join(body))
    path = atomic_write_text(Path(out) / "compare.html", text)
    if log:
        log(f"comparison: {path}")
    return path


def latent_html(names: Sequence[str], dirs: Sequence[Path]) -> str:
    """Each run's PCA spectrum and t-SNE map in a row, captioned with its dimension."""
    parts = []
    for name, (title, draw) in MAPS.items():
        cells = []
        for i, (n, d) in enumerate(zip(names, dirs, strict=True)):
            if (got := load_result(d, name)) is not None:
                shape = latent_shape(d)
                what = f"{title} of {n}, d = {math.prod(shape)}"
                what += f" {shape}" if len(shape) > 1 else ""
                cells.append(img(draw(*got, F.run_colour(i)), what, what))
        if cells:
            parts.append(f'<h3>{title}</h3><div class="row">{"".join(cells)}</div>')
    return "\n".join(parts) or '<p class="missing">No run has a pca or tsne analysis.</p>'


def generation_html(names: Sequence[str], dirs: Sequence[Path]) -> str:
    """Rates per sampler with one column per run, then each sampler's grids side by side
    (the latest unsharpened grid of that sampler and limit in each run)."""
    by_run = [{k: r["rate"] for k, r in labelled(d, "rates")} for d in dirs]
    keys = list(dict.fromkeys(k for rows in by_run for k in rows))
    parts = []
    if keys:
        parts.append(
            "<p>Meaningful-point rate per sampler (a proxy; thresholds differ "
            "between runs, see docs/generation.md).</p>"
        )
        parts.append(
            table(["sampler", *names], [[k, *(rows.get(k, "-") for rows in by_run)] for k in keys])
        )
    parts.append(compare_html(names, dirs))  # the evaluation, per sampler, runs side by side
    grids: dict[str, dict[str, tuple[Path, dict]]] = {}
    for n, d in zip(names, dirs, strict=True):
        for e in samples_json(d, "index") or []:
            params = e.get("params") or {}
            if e.get("kind") == "grid" and "sharpen" not in params:
                key = row_key(str(e.get("sampler", "?")), params)
                grids.setdefault(key, {})[n] = (d / "samples", e)
    for key, per_run in grids.items():
        cells = [grid_figure(*per_run[n], label=n) for n in names if n in per_run]
        parts.append(f'<h3>Sampler {esc(key)}</h3><div class="row">{"".join(cells)}</div>')
    lacking = [
        n
        for n, rows, d in zip(names, by_run, dirs, strict=True)
        if not rows and not (d / "samples" / "index.json").is_file()
    ]
    if lacking:
        parts.append(
            f'<p class="missing">No samples for {esc(", ".join(lacking))}: run '
            f"<code>zspace generate RUN --rate --sampler normal,gauss,gmm</code>.</p>"
        )
    return "\n".join(parts) or "<p>No run has generated samples yet.</p>"
