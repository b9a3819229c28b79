"""The self-contained report page of one run: config, losses, every analysis, samples."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

from zspace.analysis.runner import ANALYSES, VARIANT_SEP, load_result, variants
from zspace.core.display import esc, img
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_text, read_text, sha256_of
from zspace.reporting import figures as F
from zspace.reporting.evaluation import beside_grid, check_samples, eval_table, samples_json
from zspace.reporting.html import key, missing, page, section, table
from zspace.reporting.references import references_html
from zspace.reporting.text import num
from zspace.runs.folder import NO_HISTORY, latent_shape, origin_of, origin_text

# short navigation labels; an analysis without one shows its registry title
NAV = {"pca": "PCA", "tsne": "t-SNE", "kmeans": "Clustering", "vae": "VAE internals"}
SECTIONS = (
    ("config", "Configuration"),
    ("losses", "Losses"),
    *((name, NAV.get(name, spec.title)) for name, spec in ANALYSES.items()),
    ("samples", "Samples"),
)


def config_section(run_dir: Path, meta: dict) -> str:
    """The settings a reader needs to place the run, then the full TOML folded away."""
    from zspace.config import config_from_toml

    text = read_text(run_dir / "config.toml")
    try:
        cfg = config_from_toml(text, str(run_dir / "config.toml"))
    except ZspaceError:
        cfg = None
    splits = ", ".join(f"{k} {num(v)}" for k, v in (meta.get("splits") or {}).items())
    data = meta.get("data") or {}
    rows = [
        ["kind", str(meta.get("kind", "?")).upper()],
        ["data", f"{data.get('source', '?')}, images "
                 + " x ".join(str(s) for s in data.get("shape", [])) + " (H x W x C)"],
        ["splits", splits],
    ]  # fmt: skip
    origin = origin_of(meta)
    shape = (origin or {}).get("latent_shape") or []
    if origin is not None:  # an imported model: its config.toml has a data section only
        rows += [
            ["origin", origin_text(meta)],
            ["model", f"latent shape {tuple(shape)} (d = {math.prod(shape)}), "
                      f"{num(origin.get('parameters'))} parameters"],
        ]  # fmt: skip
    elif cfg is not None:
        m, d, t = cfg.model, cfg.data, cfg.train
        task = d.task
        if d.task == "denoise":
            task += f" (noise_sigma {d.noise_sigma:g}, drop_fraction {d.drop_fraction:g})"
        rows += [
            ["task", task],
            ["origin", "zspace"],
            ["model", f"z_dim {m.z_dim}; encoder filters {list(m.encoder_filters)}, "
                      f"strides {list(m.encoder_strides)}"
                      + (f"; fact {m.fact:g}" if m.variational else "")],
            ["training", f"{t.epochs} epochs, batch {t.batch_size}, lr {t.lr:g}, seed {cfg.seed}"],
        ]  # fmt: skip
    rows += [
        ["zspace / torch", f"{meta.get('zspace', '?')} / {meta.get('torch', '?')}"],
        ["created", meta.get("created", "?")],
    ]
    return (
        table(["", "value"], rows, left=2)
        + f"<details><summary>Full configuration (config.toml)</summary><pre>{esc(text)}</pre>"
        + "</details>"
    )


def losses_section(history: list[dict], colour: str, imported: bool = False) -> str:
    if imported:
        return f'<p class="key">{NO_HISTORY}.</p>'
    if not history:
        return '<p class="missing">No epochs in history.jsonl yet.</p>'
    last = history[-1]
    best = min(history, key=lambda h: h.get("val_total") or h.get("total") or 0)
    words = (
        f"After {last['epoch']} epochs the training loss is {num(last['total'])} per image "
        f"(reconstruction {num(last['reco'])}, fact * KL {num(last['kl'])})"
    )
    if last.get("val_total") is not None:
        words += (
            f"; validation {num(last['val_total'])}, best {num(best['val_total'])} "
            f"in epoch {best['epoch']}"
        )
    cols = ["epoch", "total", "reco", "kl", "val_total", "val_reco", "val_kl", "lr", "seconds"]
    rows = [[h.get(c, "") if h.get(c) is not None else "" for c in cols] for h in history]
    if len(rows) > 12:
        rows = rows[:3] + [["..."] + [""] * (len(cols) - 1)] + rows[-8:]
    return (
        f'<p class="key">{esc(words)}.</p>'
        + img(F.loss_curves(history, colour), "loss curves")
        + table(cols, rows)
    )


def dimension_note(shape: tuple[int, ...]) -> str:
    """Which dimension the radius and axes sections use: the latent, flattened."""
    d = math.prod(shape)
    if len(shape) == 1:
        return f"D = {d}: the latent vector, one axis per component."
    pixels = math.prod(shape[1:])
    return (
        f"D = {' x '.join(map(str, shape))} = {d}: the latent map flattened channel-first, "
        f"one axis per value (axis j is channel j // {pixels}, position j % {pixels})."
    )


def analysis_section(
    run_dir: Path, name: str, colour: str, variational: bool, shape: tuple[int, ...] = ()
) -> str:
    """One analysis: its result, then each saved variant ``name@label`` under its label."""
    if ANALYSES[name].needs_vae and not variational:
        return "<p>This run is an AE: it has no mu/logvar, so there are no VAE internals.</p>"
    labels = variants(run_dir, name)
    loaded = load_result(run_dir, name)
    if loaded is None and not labels:
        return missing(run_dir, name)
    parts = [] if loaded is None else [_result_html(name, *loaded, colour)]
    if shape and name in ("radius", "axes"):
        parts.insert(0, f"<p>{esc(dimension_note(shape))}</p>")
    for label in labels:
        got = load_result(run_dir, f"{name}{VARIANT_SEP}{label}")
        if got is not None:
            parts.append(f"<h3>Variant {esc(name)}{VARIANT_SEP}{esc(label)}</h3>")
            parts.append(_result_html(name, *got, colour))
    return "\n".join(parts)


def _result_html(name: str, rec: dict, arr: dict, colour: str) -> str:
    r = rec["result"]
    parts = [key(rec)]
    for i, fig in enumerate(F.analysis_figures(name, rec, arr, colour)):
        cap = FIGURE_NOTES.get((name, i), lambda _r: "")(r)
        parts.append(img(fig, f"{ANALYSES[name].title} ({i + 1})", cap))
    parts += EXTRAS.get(name, lambda _r: [])(r)
    return "\n".join(parts)


def _windows_note(r: dict) -> str:
    drawn, n = r.get("n_shown", 0), r.get("n", 0)
    shown = f"a seeded {num(drawn)} of the {num(n)}" if drawn < n else f"all {num(n)}"
    if r.get("zoom_mode") == "relative":
        how = (
            "the windows are squares around the median whose half-widths are shares "
            f"({', '.join(num(f) for f in r['zooms'])}) of the cloud's extent (99 % of "
            "its points within)"
        )
    else:
        how = "the windows are squares of fixed half-width around the median"
    return f"{shown.capitalize()} points are drawn; {how}; the counts in the titles use all points."


# notes under single figures, by (analysis, figure number): what the figure cannot say
FIGURE_NOTES = {("pca", 1): _windows_note, ("pca", 2): _windows_note}


def _axes_extras(r: dict) -> list[str]:
    rule = (
        f"Rule: an axis is off-centre when |median - {num(r['centre_median'])}| > "
        f"max({r['centre_k']:g} x {num(r['centre_spread'])}, {r['centre_floor']:g} x "
        f"{num(r['width_median'])}) and broad when its width (IQR/1.349) exceeds "
        f"{r['width_ratio']:g} x {num(r['width_median'])}."
    )
    parts = [f"<p>{esc(rule)}</p>"]
    if r["flagged"]:
        rows = [
            [f["axis"], f["centre"], f["width"], f["width_ratio"], f["why"]] for f in r["flagged"]
        ]
        parts.append(table(["axis", "centre", "width", "width / median", "why"], rows))
    return parts


def _vae_extras(r: dict) -> list[str]:
    total = max(1, r["n"] * r["z_dim"])
    rows = [
        [f"logvar > {t:g}", c, c / total]
        for t, c in zip(r["logvar_thresholds"], r["logvar_above"], strict=True)
    ]
    rows.append([f"|z - mu| > {r['diff_threshold']:g}", r["diff_above"], r["diff_above"] / total])
    parts = [table(["components with", "count", "share"], rows)]
    if r.get("active_units") is not None:  # results saved before active units have none
        parts.append(
            f"<p>Active units (Burda et al. 2016): {r['active_units']} of {r['z_dim']} axes "
            f"have a variance of mu over the data above {r['active_threshold']:g}.</p>"
        )
    return parts


EXTRAS = {"axes": _axes_extras, "vae": _vae_extras}  # tables beside an analysis's figures


def rates_table(run_dir: Path) -> str:
    """samples/rates.json (``zspace generate --rate``) as a table, with its threshold."""
    if (rates := samples_json(run_dir, "rates")) is None:
        return ""
    rows = [[r["sampler"], ", ".join(f"{k}={num(v)}" for k, v in r["params"].items()),
             *(r[k] for k in ("rate", "n", "mean_radius", "median_distance"))]
            for r in rates["results"]]  # fmt: skip
    head = (
        f"<h3>Meaningful-point rate</h3><p>The share of random points that, decoded and "
        f"re-encoded, lie within {num(rates['threshold'])} of a training point "
        f"(the {rates['quantile']:g} quantile of the training points' own "
        f"nearest-neighbour distances; {num(rates['reference_size'])} reference points "
        f"in {esc(rates['space'])}). A proxy: see docs/generation.md.</p>"
    )
    warn = rates.get("warning")
    head += f'<p class="missing">Warning: {esc(warn)}</p>' if warn else ""
    return head + table(
        ["sampler", "parameters", "rate", "n", "mean radius", "median distance"], rows, left=2
    )


#: headings of the sample families; the grids of one family sit side by side
FAMILIES = {
    ("grid", ""): "Decoded random points, one grid per sampler",
    ("grid", "uniform"): "Decoded uniform boxes, one grid per limit",
    ("reconstruction", ""): "Reconstructions",
    ("interpolation", ""): "Interpolations",
    ("traversal", ""): "Traversals",
    ("attribute", ""): "Attribute vectors",
}


def family(entry: dict) -> tuple[str, str]:
    """A grid's family: its kind, with the uniform boxes (one grid per limit) apart from
    the other samplers."""
    kind = str(entry.get("kind", ""))
    return kind, "uniform" if kind == "grid" and entry.get("sampler") == "uniform" else ""


def grid_figure(folder: Path, entry: dict, label: str = "") -> str:
    """One generated PNG with its caption (the one place the caption appears)."""
    f = folder / str(entry.get("file", ""))
    cap = (f"{label}: " if label else "") + str(entry.get("caption", ""))
    inside = f.resolve().is_relative_to(folder.resolve())  # never a file outside samples/
    if inside and f.is_file() and f.suffix.lower() == ".png":
        data = f.read_bytes()
        want = entry.get("sha256")  # absent in indexes written before issue 18
        if want and sha256_of(data) != want:
            return (
                f'<p class="missing">{esc(entry.get("file"))} changed after it was listed (an '
                f"interrupted <code>zspace generate</code>?); rerun it: {esc(cap)}</p>"
            )
        return img(data, str(entry.get("file")), cap)
    return f'<p class="missing">{esc(entry.get("file"))} is listed but missing: {esc(cap)}</p>'


def _graded(figure: str, metrics: str) -> str:
    """A grid with its sampler's metrics under it, kept together as one cell of the row."""
    return f'<div class="graded">{figure}{metrics}</div>' if metrics else figure


def samples_section(run_dir: Path) -> str:
    """The rates and evaluation tables, then the grids grouped by family (one sampler's
    grids side by side), each with its caption once and its sampler's metrics beside it."""

    rates = rates_table(run_dir) + eval_table(run_dir)
    evaluation = samples_json(run_dir, "eval")  # None: absent
    if (entries := samples_json(run_dir, "index")) is None:
        return rates or (
            "<p>There are no generated samples or reconstruction grids for this run: run "
            f"<code>zspace generate {esc(run_dir)} --recon</code>.</p>"
        )
    if not entries:
        return rates or "<p>samples/index.json lists no samples.</p>"
    parts = [rates] if rates else []
    groups: dict[tuple[str, str], list[dict]] = {}
    for e in entries:
        groups.setdefault(family(e), []).append(e)
    order = list(FAMILIES)
    ranked = sorted(groups.items(), key=lambda g: order.index(g[0]) if g[0] in order else 99)
    for fam, items in ranked:
        title = FAMILIES.get(fam, fam[0].capitalize())
        cells = "".join(
            _graded(grid_figure(run_dir / "samples", e), beside_grid(run_dir, e, evaluation))
            for e in items
        )
        parts.append(f'<h3>{esc(title)}</h3><div class="row">{cells}</div>')
    return "\n".join(parts)


def _check_inputs(run_dir: Path) -> None:
    """Read every saved result and samples/*.json once before any figure is drawn, so
    a truncated or foreign file fails the command at once (and the page is not written)."""
    for name in ANALYSES:
        load_result(run_dir, name)
    check_samples(run_dir)


def build_report(run_dir: str | Path, log: Callable[[str], None] | None = None) -> Path:
    """Write ``RUN/report.html`` from the run's files (``api.report`` checked it is a
    folder); returns its path."""
    from zspace.runs.folder import read_history, read_meta

    run_dir = Path(run_dir)
    meta = read_meta(run_dir)  # refuses a folder without config.toml or meta.json
    history = read_history(run_dir)
    _check_inputs(run_dir)
    kind = str(meta.get("kind", "ae"))
    variational = kind == "vae"
    colour = F.KIND_COLOURS.get(kind, "C0")
    body = [section("config", "Configuration", config_section(run_dir, meta))]
    nav = list(SECTIONS)

    refs = references_html(run_dir)
    if refs is not None:
        body.append(section("reference", "Reference vs this run", refs))
        nav.insert(1, ("reference", "Reference"))
    imported = origin_of(meta) is not None
    body.append(section("losses", "Losses", losses_section(history, colour, imported)))
    shape = latent_shape(run_dir)
    for sid, spec in ANALYSES.items():
        html = analysis_section(run_dir, sid, colour, variational, shape)
        body.append(section(sid, spec.title, html))
    body.append(section("samples", "Samples and reconstructions", samples_section(run_dir)))
    data = (meta.get("data") or {}).get("source", "?")
    sub = (
        f"{kind.upper()} on {data}, "
        + ("imported" if imported else f"{len(history)} epochs")
        + "; report written "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} by zspace"
    )
    text = page(f"zspace report: {run_dir.name}", sub, nav, "\n".join(body))
    path = atomic_write_text(run_dir / "report.html", text)
    if log:
        log(f"report: {path}")
    return path
