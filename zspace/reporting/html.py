"""The self-contained report page of one run: config, losses, every analysis, samples.

Images are embedded as base64 data URIs and the CSS is inline, so ``report.html``
opens offline, can be mailed as one file and loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zspace.analysis.runner import SPECS, VARIANT_SEP, load_result, variants
from zspace.errors import ZspaceError
from zspace.fileio import atomic_write_text
from zspace.reporting import figures as F
from zspace.reporting.figures import Figure

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
td,th{border:1px solid #ddd;padding:.2em .6em;text-align:right} th{background:#f0f3f8}
td.l,th.l{text-align:left} pre{background:#f5f5f5;padding:.6em;overflow:auto;font-size:.85em}
.key{background:#f0f6ff;border-left:4px solid #23395d;padding:.4em .8em}
.missing{color:#8a5a00;background:#fff7e6;padding:.4em .8em;border-left:4px solid #e0a000}
figure{margin:.8em 0} figcaption{font-size:.9em;color:#555}
.row{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start}
.row figure{flex:1 1 300px;max-width:480px}
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
    def cell(tag: str, i: int, v: Any) -> str:
        cls = ' class="l"' if i < left else ""
        if isinstance(v, float):
            v = f"{v:.4g}"
        return f"<{tag}{cls}>{esc(v)}</{tag}>"

    h = "".join(cell("th", i, v) for i, v in enumerate(head))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><tr>{h}</tr>{body}</table>"


def section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def missing(run_dir: Path, name: str) -> str:
    return (
        f'<p class="missing">Not computed yet: run <code>zspace analyze {esc(run_dir)} '
        f"--only {name}</code> (or <code>zspace analyze {esc(run_dir)}</code>).</p>"
    )


def key(rec: dict) -> str:
    p = ", ".join(f"{k}={v}" for k, v in rec.get("params", {}).items())
    return (
        f'<p class="key">{esc(rec["summary"].rstrip("."))}.</p><p><small>split '
        f"{esc(rec.get('split'))}, parameters: {esc(p)}; computed in "
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
    cfg = (run_dir / "config.toml").read_text()
    splits = ", ".join(f"{k} {v:,}" for k, v in (meta.get("splits") or {}).items())
    data = meta.get("data") or {}
    rows = [
        ["kind", str(meta.get("kind", "?")).upper()],
        ["data source", data.get("source", "?")],
        ["image shape (H, W, C)", " x ".join(str(s) for s in data.get("shape", []))],
        ["splits", splits],
        ["zspace / torch", f"{meta.get('zspace', '?')} / {meta.get('torch', '?')}"],
        ["created", meta.get("created", "?")],
    ]
    return table(["", "value"], rows, left=2) + f"<pre>{esc(cfg)}</pre>"


def losses_section(history: list[dict], colour: str) -> str:
    if not history:
        return '<p class="missing">No epochs in history.jsonl yet.</p>'
    last = history[-1]
    best = min(history, key=lambda h: h.get("val_total") or h.get("total") or 0)
    words = (
        f"After {last['epoch']} epochs the training loss is {last['total']:.4g} per image "
        f"(reconstruction {last['reco']:.4g}, fact * KL {last['kl']:.4g})"
    )
    if last.get("val_total") is not None:
        words += (
            f"; validation {last['val_total']:.4g}, best {best['val_total']:.4g} "
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
    captions = {
        "pca": ["", f"{r.get('n_shown', 0):,} of {r.get('n', 0):,} points drawn; window "
                    "counts use all points.", ""],
    }  # fmt: skip
    for i, fig in enumerate(F.analysis_figures(name, rec, arr, colour)):
        cap = captions.get(name, [])[i] if i < len(captions.get(name, [])) else ""
        parts.append(img(fig, f"{SPECS[name].title} ({i + 1})", cap))
    parts += EXTRAS.get(name, lambda _r: [])(r)
    return "\n".join(parts)


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
                ", ".join(f"{k}={v}" for k, v in r["params"].items()),
                float(r["rate"]),
                int(r["n"]),
                float(r["mean_radius"]),
                float(r["median_distance"]),
            ]
            for r in rates["results"]
        ]
        head = (
            f"<p>Meaningful-point rate: share of random points that, decoded and "
            f"re-encoded, lie within {rates['threshold']:.4g} of a training point "
            f"(the {rates['quantile']:g} quantile of the training points' own "
            f"nearest-neighbour distances; {rates['reference_size']} reference points "
            f"in {esc(rates['space'])}). A proxy: see docs/generation.md.</p>"
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        return f'<p class="missing">{path.name} is unreadable: {esc(exc)}</p>'
    warn = rates.get("warning")
    head += f'<p class="missing">Warning: {esc(warn)}</p>' if warn else ""
    return head + table(
        ["sampler", "parameters", "rate", "n", "mean radius", "median distance"], rows, left=2
    )


def samples_section(run_dir: Path) -> str:
    rates = rates_table(run_dir)
    index = run_dir / "samples" / "index.json"
    if not index.is_file():
        return rates or (
            "<p>There are no generated samples or reconstruction grids for this run "
            "(no samples/index.json).</p>"
        )
    try:
        entries = json.loads(index.read_text())
    except json.JSONDecodeError as exc:
        raise ZspaceError(f"{index} is not valid JSON: {exc}") from None
    if not entries:
        return rates or "<p>samples/index.json lists no samples.</p>"
    parts = [rates] if rates else []
    for e in entries:
        f = run_dir / "samples" / str(e.get("file", ""))
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in (e.get("params") or {}).items()
        )
        cap = f"{e.get('kind', '')} / {e.get('sampler', '')} ({params}): {e.get('caption', '')}"
        if f.is_file() and f.suffix.lower() == ".png":
            parts.append(img(f.read_bytes(), str(e.get("file")), cap))
        else:
            parts.append(
                f'<p class="missing">{esc(e.get("file"))} is listed but missing: {esc(cap)}</p>'
            )
    return "\n".join(parts)


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
