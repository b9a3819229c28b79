"""The self-contained report page of one run: config, losses, every analysis, samples.

Images are embedded as base64 data URIs and the CSS is inline, so ``report.html``
opens offline, can be mailed as one file and loads nothing from the network.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zspace.analysis.runner import SPECS, VARIANT_SEP, load_result, variants
from zspace.errors import ZspaceError
from zspace.fileio import atomic_write_text, read_json, read_text
from zspace.reporting import figures as F
from zspace.reporting.figures import Figure
from zspace.reporting.text import num, used_parameters


class Html(str):
    """Text that is already HTML (a swatch, a link): table() puts it in unescaped."""


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;
color:#222;background:#fafafa;line-height:1.45}
main{max-width:1200px;margin:0 auto;padding:1em 2em 4em}
header{background:#23395d;color:#fff;padding:1em 2em}
header h1{margin:0 0 .2em;font-size:1.5em} header p{margin:0;opacity:.85}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:.4em 2em;
z-index:1} nav a{margin-right:1em;color:#23395d;text-decoration:none;font-size:.95em}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:1.2em 0;
padding:.4em 1.2em 1em} h2{color:#23395d;border-bottom:1px solid #eee;padding-bottom:.2em}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.2em .6em;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f0f3f8}
td.l,th.l{text-align:left} pre{background:#f5f5f5;padding:.6em;overflow:auto;font-size:.85em}
.key{background:#f0f6ff;border-left:4px solid #23395d;padding:.4em .8em}
.missing{color:#8a5a00;background:#fff7e6;padding:.4em .8em;border-left:4px solid #e0a000}
figure{margin:.8em 0} figcaption{font-size:.9em;color:#555;max-width:60em}
.row{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start}
.row figure{flex:0 1 auto;max-width:calc(33% - 1em);min-width:220px;margin:.4em 0}
.row figure:only-child{max-width:100%}
.row .graded{display:flex;gap:.8em;align-items:flex-start;flex:0 1 auto}
.row .graded figure{max-width:26em;min-width:220px}
.row figure img{image-rendering:pixelated;border:1px solid #e3e3e3}
h3{color:#23395d;margin:1.2em 0 .2em;font-size:1.05em}
details{margin:.6em 0} summary{cursor:pointer;color:#23395d}
.swatch{display:inline-block;width:1.6em;height:.9em;border-radius:2px;vertical-align:middle}
.params{color:#555} ul.key{padding-left:2em}
ul.flag{color:#8b1a1a;background:#fdecea;border-left:4px solid #c5221f;list-style:none;
padding:.3em .8em;margin:.4em 0;max-width:46em}
"""

# short navigation labels; an analysis without one shows its registry title
NAV = {"pca": "PCA", "tsne": "t-SNE", "kmeans": "Clustering", "vae": "VAE internals"}
SECTIONS = (
    ("config", "Configuration"),
    ("losses", "Losses"),
    *((name, NAV.get(name, spec.title)) for name, spec in SPECS.items()),
    ("samples", "Samples"),
)


def esc(x: Any) -> str:
    return html.escape(str(x))


def img(data: bytes | Figure, alt: str, caption: str = "") -> str:
    """An embedded PNG (bytes, or a Figure rendered here) with its caption."""
    if isinstance(data, Figure):
        data = F.png(data)
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{src}" alt="{esc(alt)}">{cap}</figure>'


def table(head: list[str], rows: list[list[Any]], left: int = 1) -> str:
    """A table; a column of numbers shows them all with the same decimals (``column``)."""
    places = [column(r[i] for r in rows if i < len(r)) for i in range(len(head))]

    def cell(tag: str, i: int, v: Any) -> str:
        cls = ' class="l"' if i < left else ""
        if isinstance(v, Html):
            text = str(v)
        elif isinstance(v, int | float) and not isinstance(v, bool) and tag == "td":
            d = places[i] if i < len(places) else None
            text = esc(num(v) if d is None else f"{v:,.{d}f}")
        else:
            text = esc(v)
        return f"<{tag}{cls}>{text}</{tag}>"

    h = "".join(cell("th", i, v) for i, v in enumerate(head))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><tr>{h}</tr>{body}</table>"


def column(values) -> int | None:
    """Decimals for a column of numbers: the most any of them needs at 4 significant
    digits, so the whole column lines up; None (``num`` per cell) when it holds no
    fractional number or a number that needs an exponent."""
    import math

    places = 0
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if isinstance(v, float) and math.isfinite(v) and not v.is_integer():
            text = f"{abs(v):.4g}"
            if "e" in text:
                return None
            places = max(places, len(text.partition(".")[2]))
    return places or None


def section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def missing(run_dir: Path, name: str) -> str:
    """The commands that fill a section, from where the run stands: encode first when
    the run has no latents yet."""
    from zspace.latents import latents_path

    steps = [] if latents_path(run_dir).is_file() else [f"zspace encode {run_dir}"]
    steps += [f"zspace analyze {run_dir} --only {name}", f"zspace report {run_dir}"]
    cmds = " then ".join(f"<code>{esc(c)}</code>" for c in steps)
    return f'<p class="missing">Not computed yet: run {cmds}.</p>'


def key(rec: dict) -> str:
    """The analysis's summary in words, then one line with its parameters as used."""
    name = str(rec.get("analysis", ""))
    params = used_parameters(name, rec.get("params", {}), rec.get("result", {}))
    return (
        f'<p class="key">{esc(rec["summary"].rstrip("."))}.</p><p class="params"><small>'
        f"{esc(rec.get('split'))} split; parameters {esc(', '.join(params))}; computed in "
        f"{rec.get('seconds', 0):.1f} s</small></p>"
    )


def page(title: str, subtitle: str, nav: list[tuple[str, str]], body: str) -> str:
    links = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<title>{esc(title)}</title><meta name="viewport" content="width=device-width">'
        f'<link rel="icon" href="data:,"><style>{CSS}</style></head><body>'
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>{links}</nav>"
        f"<main>{body}</main></body></html>\n"
    )


# ---------------------------------------------------------------- sections


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
    if cfg is not None:
        m, d, t = cfg.model, cfg.data, cfg.train
        task = d.task
        if d.task == "denoise":
            task += f" (noise_sigma {d.noise_sigma:g}, drop_fraction {d.drop_fraction:g})"
        rows += [
            ["task", task],
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


def losses_section(history: list[dict], colour: str) -> str:
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


def analysis_section(run_dir: Path, name: str, colour: str, variational: bool) -> str:
    """One analysis: its result, then each saved variant ``name@label`` under its label."""
    if SPECS[name].needs_vae and not variational:
        return "<p>This run is an AE: it has no mu/logvar, so there are no VAE internals.</p>"
    labels = variants(run_dir, name)
    loaded = load_result(run_dir, name)
    if loaded is None and not labels:
        return missing(run_dir, name)
    parts = [] if loaded is None else [_result_html(name, *loaded, colour)]
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
        parts.append(img(fig, f"{SPECS[name].title} ({i + 1})", cap))
    parts += EXTRAS.get(name, lambda _r: [])(r)
    return "\n".join(parts)


def _windows_note(r: dict) -> str:
    drawn = r.get("n_shown", 0)
    n = r.get("n", 0)
    shown = (
        f"a seeded {num(drawn)} of the {num(n)} points are drawn"
        if drawn < n
        else (f"all {num(n)} points are drawn")
    )
    if r.get("zoom_mode") == "relative":
        how = (
            "the windows are squares around the median whose half-widths are shares "
            f"({', '.join(num(f) for f in r['zooms'])}) of the cloud's extent (99 % of "
            "its points within)"
        )
    else:
        how = "the windows are squares of fixed half-width around the median"
    return f"{shown.capitalize()}; {how}; the counts in the titles use all points."


# notes under single figures, by (analysis, figure number): what the figure cannot say
FIGURE_NOTES = {("pca", 1): _windows_note, ("pca", 2): _windows_note}


def _axes_extras(r: dict) -> list[str]:
    rule = (
        f"Rule: an axis is off-centre when |median - {r['centre_median']:.3g}| > "
        f"max({r['centre_k']:g} x {r['centre_spread']:.3g}, {r['centre_floor']:g} x "
        f"{r['width_median']:.3g}) and broad when its width (IQR/1.349) exceeds "
        f"{r['width_ratio']:g} x {r['width_median']:.3g}."
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
    path = run_dir / "samples" / "rates.json"
    if not path.is_file():
        return ""
    try:
        rates = json.loads(path.read_text())
        rows = [
            [
                r["sampler"],
                ", ".join(f"{k}={num(v)}" for k, v in r["params"].items()),
                Html(f"{float(r['rate']):.3f}"),
                int(r["n"]),
                float(r["mean_radius"]),
                float(r["median_distance"]),
            ]
            for r in rates["results"]
        ]
        head = (
            f"<h3>Meaningful-point rate</h3><p>The share of random points that, decoded and "
            f"re-encoded, lie within {num(float(rates['threshold']))} of a training point "
            f"(the {rates['quantile']:g} quantile of the training points' own "
            f"nearest-neighbour distances; {num(rates['reference_size'])} reference points "
            f"in {esc(rates['space'])}). A proxy: see docs/generation.md.</p>"
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        return f'<p class="missing">{path.name} is unreadable: {esc(exc)}</p>'
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
        if want and hashlib.sha256(data).hexdigest() != want:
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
    from zspace.reporting.evaluation import beside_grid, eval_table, read_eval  # uses table()

    rates = rates_table(run_dir) + eval_table(run_dir)
    try:
        evaluation = read_eval(run_dir)
    except (json.JSONDecodeError, OSError):
        evaluation = None
    index = run_dir / "samples" / "index.json"
    if not index.is_file():
        return rates or (
            "<p>There are no generated samples or reconstruction grids for this run: run "
            f"<code>zspace generate {esc(run_dir)} --recon</code>.</p>"
        )
    entries = read_json(index, f"rerun `zspace generate {run_dir}`")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ZspaceError(f"{index} is not a list of samples; rerun `zspace generate {run_dir}`")
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
    """Read every saved result and the samples index once before any figure is drawn, so
    a truncated or foreign file fails the command at once (and the page is not written)."""
    for name in SPECS:
        load_result(run_dir, name)
    index = run_dir / "samples" / "index.json"
    if index.is_file():
        read_json(index, f"rerun `zspace generate {run_dir}`")


def build_report(run_dir: str | Path, log: Callable[[str], None] | None = None) -> Path:
    """Write ``RUN/report.html`` from the run's files; returns its path."""
    from zspace.runfolder import read_history, read_meta

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ZspaceError(f"run folder not found: {run_dir}")
    if not (run_dir / "config.toml").is_file():
        raise ZspaceError(f"{run_dir} is not a zspace run folder (no config.toml)")
    meta = read_meta(run_dir)
    history = read_history(run_dir)
    _check_inputs(run_dir)
    kind = str(meta.get("kind", "ae"))
    variational = kind == "vae"
    colour = F.KIND_COLOURS.get(kind, "C0")
    body = [section("config", "Configuration", config_section(run_dir, meta))]
    nav = list(SECTIONS)
    from zspace.reporting.references import references_html  # recipe runs only

    refs = references_html(run_dir)
    if refs is not None:
        body.append(section("reference", "Reference vs this run", refs))
        nav.insert(1, ("reference", "Reference"))
    body.append(section("losses", "Losses", losses_section(history, colour)))
    for sid, spec in SPECS.items():
        body.append(section(sid, spec.title, analysis_section(run_dir, sid, colour, variational)))
    body.append(section("samples", "Samples and reconstructions", samples_section(run_dir)))
    data = (meta.get("data") or {}).get("source", "?")
    sub = (
        f"{kind.upper()} on {data}, {len(history)} epochs; report written "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} by zspace"
    )
    text = page(f"zspace report: {run_dir.name}", sub, nav, "\n".join(body))
    path = atomic_write_text(run_dir / "report.html", text)
    if log:
        log(f"report: {path}")
    return path
