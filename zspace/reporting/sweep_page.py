"""DIR/sweep.html: how the latent space changes along a sweep, one point per run.

Read from each run folder only (nothing is recomputed): the last history row, the
radius and VAE analyses, the generation metrics (``samples/eval.json`` of
``zspace evaluate`` when a run has it, else the meaningful-point rates of
``samples/rates.json``) and the N(0, I) grid, shrunk to a thumbnail. Every curve
is drawn against the first varied key, on a log axis when its values are positive
and span a factor of 10 or more; further keys give one curve each. The page is
self-contained (images embedded) and links each run's report.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zspace.analysis.runner import load_result
from zspace.core.display import esc, img
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_text
from zspace.evaluation.reading import FIDELITY, HEADLINE, METRICS
from zspace.reporting import figures as F
from zspace.reporting.evaluation import FLAG, flag_list, row_key
from zspace.reporting.html import page, section, table
from zspace.reporting.references import _history, _json, measure, num, parse_reference

SWEEP_FILE = "sweep.json"
PAGE_FILE = "sweep.html"
LOWER_IS_BETTER = {"fd", "kid"}
SECTIONS = (
    ("runs", "Runs"),
    ("losses", "Losses"),
    ("radius", "Radius"),
    ("logvar", "logvar"),
    ("active", "Active units"),
    ("generation", "Generation"),
    ("grids", "N(0, I) grids"),
    ("numbers", "Numbers"),
)
THUMB_WIDTH = 320
CSS = """
.thumbs{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start}
.thumbs figure{margin:0;flex:0 0 auto;width:200px} .thumbs img{width:200px;margin:0}
.thumbs figcaption{font-size:.8em} td.ok{background:#e6f4ea} td.bad{background:#fdecea}
"""


# ---------------------------------------------------------------- reading the runs


def collect(run_dir: Path) -> dict[str, Any]:
    """The numbers the page plots for one run (None where a file is missing)."""
    rows = _history(run_dir)
    last = rows[-1] if rows else {}
    val = last.get("val_total") is not None
    pre = "val_" if val else ""
    total, kl = last.get(f"{pre}total"), last.get(f"{pre}kl")
    out: dict[str, Any] = {
        "epochs": len(rows),
        "reco": last.get(f"{pre}reco"),
        "reco_split": "validation" if val else "training",
        "kl_share": (kl / total) if (kl is not None and total) else None,
    }
    rad = load_result(run_dir, "radius")
    r = rad[0]["result"] if rad else {}
    out.update(peak=r.get("peak"), mean=r.get("mean"), expected=r.get("expected"))
    out["z_dim"] = r.get("z_dim")
    vae = load_result(run_dir, "vae")
    v = vae[0]["result"] if vae else {}
    out.update(logvar=v.get("logvar_mean"), active=v.get("active_units"))
    out["z_dim"] = out["z_dim"] or v.get("z_dim")
    ev = _json(run_dir / "samples" / "eval.json")
    rates = _json(run_dir / "samples" / "rates.json")
    judged = [(row_key(x["sampler"], x.get("params")), x) for x in (ev or {}).get("results", [])]
    out["eval"] = {label: x.get("metrics", {}) for label, x in judged}
    out["flagged"] = [(label, x) for label, x in judged if x.get("flags")]
    rates_rows = (rates or {}).get("results", [])
    out["rates"] = {row_key(x["sampler"], x.get("params")): x.get("rate") for x in rates_rows}
    out["thumb"], out["thumb_caption"] = _thumbnail(run_dir)
    out["report"] = (run_dir / "report.html").is_file()
    return out


def _thumbnail(run_dir: Path) -> tuple[bytes | None, str]:
    """The run's unsharpened N(0, I) grid, scaled to THUMB_WIDTH pixels wide."""
    index = _json(run_dir / "samples" / "index.json") or []
    for e in index:
        p = e.get("params") or {}
        if e.get("kind") == "grid" and e.get("sampler") == "normal" and "sharpen" not in p:
            f = run_dir / "samples" / str(e.get("file", ""))
            if f.is_file():
                from PIL import Image

                with Image.open(f) as opened:
                    im = opened.convert("RGB")
                    if im.width > THUMB_WIDTH:
                        h = round(im.height * THUMB_WIDTH / im.width)
                        im = im.resize((THUMB_WIDTH, h), Image.Resampling.LANCZOS)
                    buf = io.BytesIO()
                    im.save(buf, format="PNG", optimize=True)
                return buf.getvalue(), str(e.get("caption", ""))
    return None, ""


# ---------------------------------------------------------------- axes and series


def axis_values(texts: list[str]) -> tuple[list[float], bool, list[str] | None]:
    """(x positions, log scale?, tick labels for categories or None)."""
    try:
        xs = [float(t) for t in texts]
    except ValueError:
        return [float(i) for i in range(len(texts))], False, list(texts)
    pos = all(x > 0 for x in xs)
    log = pos and max(xs) / min(xs) >= 10
    return xs, log, None


def _series(sweep: dict[str, Any]) -> list[tuple[str, list[dict]]]:
    """[(label, runs ordered along the first key)] - one per combination of the others."""
    keys = sweep["keys"]
    groups: dict[str, list[dict]] = {}
    for r in sweep["runs"]:
        rest = ", ".join(f"{k}={r['settings'][k]}" for k in keys[1:])
        groups.setdefault(rest, []).append(r)
    return list(groups.items())


def _plot(ax, sweep, data, value_of, label_prefix="", style="-o", colour_base=0):
    xs_all, log, cats = axis_values(sweep["values"][sweep["keys"][0]])
    pos = dict(zip(sweep["values"][sweep["keys"][0]], xs_all, strict=True))
    drawn = False
    for i, (label, runs) in enumerate(_series(sweep)):
        xs, ys = [], []
        for r in runs:
            y = value_of(data[r["name"]])
            if y is not None and math.isfinite(y):
                xs.append(pos[r["settings"][sweep["keys"][0]]])
                ys.append(y)
        if xs:
            name = " ".join(x for x in (label_prefix, label) if x)
            ax.plot(xs, ys, style, color=f"C{(i + colour_base) % 10}", ms=4, label=name or None)
            drawn = True
    if log:
        ax.set_xscale("log")
    if cats:
        ax.set_xticks(xs_all, cats)
    ax.set_xlabel(sweep["keys"][0])
    ax.grid(alpha=0.3)
    return drawn


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _figure(sweep, data, panels: list[tuple[str, str, Callable]], height=3.4):
    """One row of panels: (title, y label, value_of) each."""
    fig, axs = F.subplots(1, len(panels), figsize=(5.2 * len(panels), height), squeeze=False)
    for ax, (title, ylabel, fn) in zip(axs[0], panels, strict=True):
        if not _plot(ax, sweep, data, fn):
            ax.text(
                0.5, 0.5, "no run has this yet", ha="center", va="center", transform=ax.transAxes
            )
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        if len(_series(sweep)) > 1:
            _legend(ax)
    return fig


# ---------------------------------------------------------------- sections


def _runs_section(out: Path, sweep: dict, data: dict) -> str:
    rows = []
    for r in sweep["runs"]:
        d = data[r["name"]]
        link = (
            f'<a href="{esc(r["name"])}/report.html">{esc(r["name"])}</a>'
            if d["report"]
            else esc(r["name"])
        )
        rows.append(
            f'<tr><td>{r["index"]}</td><td class="l">{link}</td>'
            f"<td>{d['epochs']}</td><td>{'yes' if d['report'] else 'not yet'}</td></tr>"
        )
    head = (
        f"<p>{len(sweep['runs'])} runs varying {esc(', '.join(sweep['keys']))} "
        f"(folders under {esc(out)}).</p><details><summary>The base configuration</summary>"
        f"<pre>{esc(sweep.get('base', ''))}</pre></details>"
    )
    return (
        head + "<table><tr><th>#</th><th class=l>run folder (its report)</th><th>epochs</th>"
        "<th>report</th></tr>" + "".join(rows) + "</table>"
    )


def _gen_section(sweep: dict, data: dict) -> str:
    with_eval = [n for n, d in data.items() if d["eval"]]
    if with_eval:
        samplers = sorted({s for n in with_eval for s in data[n]["eval"]}, key=_sampler_order)
        metrics = [
            m
            for m in METRICS
            if any(m in data[n]["eval"].get(s, {}) for n in with_eval for s in samplers)
        ]
        figs = []
        for start in range(0, len(metrics), 4):
            chunk = metrics[start : start + 4]
            fig, axs = F.subplots(1, len(chunk), figsize=(4.6 * len(chunk), 3.4), squeeze=False)
            for ax, m in zip(axs[0], chunk, strict=True):
                for j, s in enumerate(samplers):
                    _plot(
                        ax,
                        sweep,
                        data,
                        lambda d, s=s, m=m: (d["eval"].get(s) or {}).get(m),
                        label_prefix=s,
                        style="--s" if s == "real" else "-o",
                        colour_base=j,
                    )
                word = " (lower is better)" if m in LOWER_IS_BETTER else ""
                ax.set_title(f"{METRICS[m]}{word}")
                _legend(ax)
            figs.append(img(fig, f"evaluation metrics {start // 4 + 1}"))
        note = (
            f"<p>From samples/eval.json (<code>zspace evaluate</code>) of {len(with_eval)} of "
            f"{len(data)} runs: each sampler's decoded images against held-out real images in "
            "the evaluator's feature space; <b>real</b> is the real-vs-real floor. "
            f"{METRICS[HEADLINE['metric']]} is the headline, {METRICS[FIDELITY['metric']]} the "
            "fidelity (docs/evaluation.md).</p>"
        )
        flags = flag_list([(f"{n}: {s}", r) for n in with_eval for s, r in data[n]["flagged"]])
        return note + "".join(figs) + flags
    with_rates = [n for n, d in data.items() if d["rates"]]
    if not with_rates:
        return (
            '<p class="missing">No run has generation metrics yet (samples/eval.json or '
            "samples/rates.json).</p>"
        )
    samplers = sorted({s for n in with_rates for s in data[n]["rates"]}, key=_sampler_order)
    fig, axs = F.subplots(1, 1, figsize=(8, 3.8), squeeze=False)
    ax = axs[0][0]
    for j, s in enumerate(samplers):
        _plot(
            ax,
            sweep,
            data,
            lambda d, s=s: d["rates"].get(s),
            label_prefix=s,
            style="--s" if s == "data" else "-o",
            colour_base=j,
        )
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("meaningful-point rate")
    ax.set_title("Meaningful-point rate per sampler (data = held-out images, the control)")
    _legend(ax)
    note = (
        "<p>The latent meaningful-point rate of samples/rates.json: the share of random "
        "points that, decoded and re-encoded, land within the training data's own "
        "nearest-neighbour distances (docs/generation.md); <code>zspace evaluate</code> "
        "(samples/eval.json) replaces it here once the runs have it.</p>"
    )
    return note + img(fig, "meaningful-point rates")


def _sampler_order(s: str) -> tuple[int, str]:
    first = {"real": 0, "data": 0, "normal": 1, "gauss": 2, "gmm": 3}
    return first.get(s.split()[0], 4), s


def _grids_section(sweep: dict, data: dict) -> str:
    cells = []
    for r in sweep["runs"]:
        d = data[r["name"]]
        rate = d["rates"].get("normal")
        words = f"rate {rate:.3f}" if rate is not None else ""
        if d["eval"].get("normal"):
            m = d["eval"]["normal"]
            shown = (HEADLINE["metric"], FIDELITY["metric"])
            words = ", ".join(f"{METRICS[k]} {num(m[k])}" for k in shown if k in m)
            words += f" {FLAG}" * any(s == "normal" for s, _ in d["flagged"])
        cap = f"{esc(r['name'])}<br>{esc(words)}"
        if d["thumb"] is None:
            cells.append(
                f'<figure><p class="missing">no N(0, I) grid yet</p>'
                f"<figcaption>{cap}</figcaption></figure>"
            )
        else:
            cells.append(
                img(d["thumb"], f"N(0, I) grid of {r['name']}", "").replace(
                    "</figure>", f"<figcaption>{cap}</figcaption></figure>"
                )
            )
    return (
        "<p>Images decoded from z ~ N(0, I), one grid per run in sweep order: the "
        "transition from AE-like (noise, blobs) to VAE-like (images of the data) "
        "shows at a glance.</p>" + f'<div class="thumbs">{"".join(cells)}</div>'
    )


def _numbers_section(sweep: dict, data: dict) -> str:
    rate_cols = sorted({s for d in data.values() for s in d["rates"]}, key=_sampler_order)
    head = [
        "run",
        "epochs",
        "reco",
        "KL share",
        "radius peak",
        "radius mean",
        "sqrt(z_dim)",
        "mean logvar",
        "active units",
    ] + [f"rate {s}" for s in rate_cols]
    rows = []
    for r in sweep["runs"]:
        d = data[r["name"]]
        au = "" if d["active"] is None else f"{d['active']} / {d['z_dim']}"
        rows.append(
            [
                r["name"],
                d["epochs"],
                _f(d["reco"]),
                _pct(d["kl_share"]),
                _f(d["peak"]),
                _f(d["mean"]),
                _f(d["expected"]),
                _f(d["logvar"]),
                au,
            ]
            + [_f(d["rates"].get(s)) for s in rate_cols]
        )
    return table(head, rows)


def _f(x: Any) -> str:
    return "" if x is None else num(float(x))


def _pct(x: Any) -> str:
    return "" if x is None else f"{100 * x:.2f} %"


def spearman(x: list[float], y: list[float]) -> float | None:
    """Rank correlation (ties averaged); None for fewer than 3 points or a constant."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr(x, y).statistic
    return None if rho is None or not math.isfinite(float(rho)) else float(rho)


def trend_rows(out: Path, sweep: dict) -> list[dict[str, Any]]:
    """Each trend of the sweep with its measured values, rank correlation and verdict."""
    results = []
    key = sweep["keys"][0]
    xs_all, _, cats = axis_values(sweep["values"][key])
    pos = dict(zip(sweep["values"][key], xs_all, strict=True))
    for t in sweep.get("trends") or []:
        for label, runs in _series(sweep):
            measured = [
                (pos[r["settings"][key]], measure(out / r["name"], t["quantity"])) for r in runs
            ]
            pts = [(x, y) for x, y in measured if y is not None]
            rho = None if cats else spearman([p[0] for p in pts], [p[1] for p in pts])
            sign = 1 if t["direction"] == "up" else -1
            if rho is None:
                verdict = "not measured"
            else:
                verdict = "holds" if sign * rho >= t["min_rank_correlation"] else "does not hold"
            results.append({**t, "series": label, "points": pts, "rho": rho, "verdict": verdict})
    return results


def _trends_section(out: Path, sweep: dict) -> str:
    got = trend_rows(out, sweep)
    lines = []
    for t in got:
        cls = {"holds": "ok", "does not hold": "bad"}.get(t["verdict"], "")
        values = ", ".join(f"{num(y)}" for _, y in t["points"])
        rho = "" if t["rho"] is None else f"{t['rho']:+.2f}"
        quote = f"&ldquo;{esc(t.get('quote', ''))}&rdquo; " if t.get("quote") else ""
        lines.append(
            f'<tr><td class="l"><code>{esc(t["quantity"])}</code> {esc(t["series"])}</td>'
            f'<td class="l">{esc(t["direction"])} as {esc(sweep["keys"][0])} grows<br>'
            f"<small>{quote}{esc(t.get('source', ''))}</small></td>"
            f'<td class="l">{esc(values)}</td><td>{rho}</td>'
            f"<td>{t['min_rank_correlation']:+.2f}</td>"
            f'<td class="{cls}">{esc(t["verdict"])}</td></tr>'
        )
    return (
        "<p>A direction holds when the Spearman rank correlation between the varied "
        "value and the quantity, signed by the direction, reaches the threshold.</p>"
        '<table><tr><th class="l">quantity</th><th class="l">expected</th>'
        '<th class="l">values in sweep order</th><th>rank correlation</th><th>needed</th>'
        "<th>verdict</th></tr>" + "".join(lines) + "</table>"
    )


def _reference_section(out: Path, sweep: dict) -> str:
    lines = []
    for i, raw in enumerate(sweep.get("references") or []):
        ref = parse_reference(raw, f"{SWEEP_FILE} reference #{i + 1}")
        for r in sweep["runs"]:
            if ref.applies(r["settings"]):
                value = measure(out / r["name"], ref.quantity)
                verdict = ref.verdict(value)
                cls = {"matches": "ok", "differs": "bad"}.get(verdict, "")
                lines.append(
                    f'<tr><td class="l">{esc(r["name"])}</td><td class="l"><code>'
                    f'{esc(ref.quantity)}</code></td><td class="l">{esc(ref.shown())}<br><small>'
                    f"{esc(ref.source)}; {esc(ref.conditions)}</small></td>"
                    f'<td>{esc(num(value))}</td><td class="{cls}">{esc(verdict)}</td></tr>'
                )
    return (
        "<p>The reference's numbers for the runs they apply to; each run's report lists "
        "what differs in its set-up.</p><table><tr><th class=l>run</th><th class=l>quantity"
        "</th><th class=l>reference (± tolerance)</th><th>this run</th><th>verdict</th></tr>"
        + "".join(lines)
        + "</table>"
    )


def build_sweep_page(out: str | Path, log: Callable[[str], None] | None = None) -> Path:
    """Write ``out/sweep.html`` from ``out/sweep.json`` and the run folders."""
    out = Path(out)
    sweep = _json(out / SWEEP_FILE)
    if not isinstance(sweep, dict) or "runs" not in sweep:
        raise ZspaceError(f"{out} holds no sweep ({SWEEP_FILE} is missing or unreadable)")
    data = {r["name"]: collect(out / r["name"]) for r in sweep["runs"]}
    sq = sorted({d["expected"] for d in data.values() if d["expected"] is not None})
    reco_split = next((d["reco_split"] for d in data.values() if d["epochs"]), "validation")
    losses = _figure(
        sweep,
        data,
        [
            (f"{reco_split} reconstruction loss", "loss per image", lambda d: d["reco"]),
            (
                "KL share of the total loss",
                "fact * KL / total (%)",
                lambda d: None if d["kl_share"] is None else 100 * d["kl_share"],
            ),
        ],
    )
    fig, axs = F.subplots(1, 1, figsize=(8, 3.8), squeeze=False)
    ax = axs[0][0]
    _plot(ax, sweep, data, lambda d: d["peak"], label_prefix="peak", style="-o")
    _plot(ax, sweep, data, lambda d: d["mean"], label_prefix="mean", style=":s", colour_base=1)
    for i, s in enumerate(sq):
        ax.axhline(s, color="k", ls="--", lw=1, label="sqrt(z_dim)" if i == 0 else None)
    ax.set_ylabel("radius R = ||z||")
    ax.set_title("Radius of the encoded training points: peak and mean")
    _legend(ax)
    radius = fig
    logvar = _figure(
        sweep, data, [("Mean logvar of the encoder", "mean logvar", lambda d: d["logvar"])]
    )
    fig, axs = F.subplots(1, 1, figsize=(8, 3.4), squeeze=False)
    ax = axs[0][0]
    if not _plot(ax, sweep, data, lambda d: None if d["active"] is None else float(d["active"])):
        ax.text(0.5, 0.5, "no VAE analysis yet", ha="center", va="center", transform=ax.transAxes)
    zd = sorted({d["z_dim"] for d in data.values() if d["z_dim"]})
    for i, z in enumerate(zd):
        ax.axhline(z, color="k", ls="--", lw=1, label="z_dim" if i == 0 else None)
    ax.set_ylabel("active units")
    ax.set_title("Active units: axes with Var over the data of mu > 0.01 (Burda et al. 2016)")
    _legend(ax)
    active = fig
    body = [
        section("runs", "Runs", _runs_section(out, sweep, data)),
        section("losses", "Losses", img(losses, "losses against the varied value")),
        section("radius", "Radius", img(radius, "radius against the varied value")),
        section("logvar", "Mean logvar", img(logvar, "mean logvar against the varied value")),
        section("active", "Active units", img(active, "active units")),
        section("generation", "Generation", _gen_section(sweep, data)),
        section("grids", "N(0, I) grids", _grids_section(sweep, data)),
        section("numbers", "Numbers", _numbers_section(sweep, data)),
    ]
    nav = list(SECTIONS)
    if sweep.get("trends"):
        body.insert(1, section("trends", "Directions", _trends_section(out, sweep)))
        nav.insert(1, ("trends", "Directions"))
    if sweep.get("references"):
        body.insert(1, section("reference", "Reference", _reference_section(out, sweep)))
        nav.insert(1, ("reference", "Reference"))
    done = sum(d["report"] for d in data.values())
    sub = f"{done} of {len(data)} runs finished; varying {', '.join(sweep['keys'])}"
    html = page(f"zspace sweep: {out.name}", sub, nav, f"<style>{CSS}</style>" + "\n".join(body))
    path = atomic_write_text(out / PAGE_FILE, html)
    if log:
        log(f"sweep page: {path}")
    return path


def sweep_numbers(out: str | Path) -> list[dict[str, Any]]:
    """The page's numbers per run (for notebooks and the docs' tables)."""
    out = Path(out)
    sweep = json.loads((out / SWEEP_FILE).read_text())
    rows = []
    for r in sweep["runs"]:
        d = collect(out / r["name"])
        d.pop("thumb", None)
        rows.append({"name": r["name"], **r["settings"], **d})
    return rows
