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

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from matplotlib.figure import Figure

from zspace.core.display import esc, img
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_text, read_json
from zspace.data.preview import png_bytes
from zspace.evaluation.reading import FIDELITY, HEADLINE, METRICS, arrow
from zspace.reporting.evaluation import FLAG, flag_list, labelled, samples_json
from zspace.reporting.html import Html, optional_json, page, section, table
from zspace.reporting.references import (
    REFERENCE_HEAD,
    measure,
    parse_reference,
    reference_row,
    verdict_cell,
    words,
)
from zspace.reporting.style import figure, styled
from zspace.reporting.text import num
from zspace.runs.folder import read_history

SWEEP_FILE = "sweep.json"
PAGE_FILE = "sweep.html"
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
THUMB_WIDTH = 360  # as shown (html.CSS .thumbs): tiles of a 8-wide grid 40 px each


# ---------------------------------------------------------------- reading the runs


# what the page plots of each run, as quantities of ``references.measure``
MEASURED = {"peak": "radius.peak", "mean": "radius.mean", "expected": "radius.expected"}
MEASURED |= {"logvar": "vae.logvar_mean", "active": "vae.active_units"}


def collect(run_dir: Path) -> dict[str, Any]:
    """The numbers the page plots for one run (None where a file is missing)."""
    rows = read_history(run_dir)
    pre = "val_" if rows and rows[-1].get("val_total") is not None else ""
    out: dict[str, Any] = {"epochs": len(rows), "reco_split": "validation" if pre else "training"}
    out["reco"] = measure(run_dir, f"history.{pre}reco")
    out["kl_share"] = measure(run_dir, f"history.{pre}kl_share")
    out |= {k: measure(run_dir, q) for k, q in MEASURED.items()}
    out["z_dim"] = measure(run_dir, "radius.z_dim") or measure(run_dir, "vae.z_dim")
    evals, rates = (labelled(run_dir, n) for n in ("eval", "rates"))
    out["eval"] = {k: x.get("metrics", {}) for k, x in evals}
    out["flagged"] = [(k, x) for k, x in evals if x.get("flags")]
    out["rates"] = {k: x.get("rate") for k, x in rates}
    out["thumb"], out["thumb_caption"] = _thumbnail(run_dir)
    out["report"] = (run_dir / "report.html").is_file()
    return out


def _thumbnail(run_dir: Path) -> tuple[bytes | None, str]:
    """The run's unsharpened N(0, I) grid, scaled to THUMB_WIDTH pixels wide."""
    for e in samples_json(run_dir, "index") or []:
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
                return png_bytes(np.asarray(im)), str(e.get("caption", ""))
    return None, ""


# ---------------------------------------------------------------- axes and curves


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


def _x(sweep: dict[str, Any]) -> Callable[[dict], float]:
    """A run's position on the x axis (its value of the first varied key)."""
    key = sweep["keys"][0]
    pos = dict(zip(sweep["values"][key], axis_values(sweep["values"][key])[0], strict=True))
    return lambda run: pos[run["settings"][key]]


def _value(d: dict[str, Any], path: tuple[str, ...]) -> float | None:
    v: Any = d
    for k in path:
        v = v.get(k) if isinstance(v, dict) else None
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


class Panel(NamedTuple):
    """One plot against the first varied key: curves (label, the path of the value in a
    run's numbers, line style), dashed reference lines (value, label), the y range."""

    title: str
    ylabel: str
    curves: Sequence[tuple[str, tuple[str, ...], str]]
    lines: Sequence[tuple[float, str]] = ()
    ylim: tuple[float, float] | None = None


@styled
def panels(sweep: dict[str, Any], data: dict[str, dict], shown: Sequence[Panel]) -> Figure:
    """A row of panels; each curve is drawn once per combination of the other keys."""
    xs, log, cats = axis_values(sweep["values"][sweep["keys"][0]])
    x_of, series = _x(sweep), _series(sweep)
    fig, axs = figure(1, len(shown), size=(max(8, 4.8 * len(shown)), 3.6), squeeze=False)
    for ax, p in zip(axs[0], shown, strict=True):
        for j, (prefix, path, style) in enumerate(p.curves):
            for i, (label, runs) in enumerate(series):
                pts = [(x_of(r), _value(data[r["name"]], path)) for r in runs]
                if pts := [(x, y) for x, y in pts if y is not None]:
                    name = " ".join(t for t in (prefix, label) if t) or None
                    ax.plot(
                        *zip(*pts, strict=True), style, color=f"C{(i + j) % 10}", ms=4, label=name
                    )
        for k, (y, label) in enumerate(p.lines):
            ax.axhline(y, color="k", ls="--", lw=1, label=None if k else label)
        if not ax.lines:
            ax.text(0.5, 0.5, "no run has this yet", ha="center", transform=ax.transAxes)
        ax.set(
            xlabel=sweep["keys"][0],
            ylabel=p.ylabel,
            title=p.title,
            xscale="log" if log else "linear",
        )
        if cats:
            ax.set_xticks(xs, cats)
        if p.ylim:
            ax.set_ylim(*p.ylim)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


# ---------------------------------------------------------------- sections


def _runs_section(out: Path, sweep: dict, data: dict) -> str:
    rows = []
    for r in sweep["runs"]:
        d, name = data[r["name"]], esc(r["name"])
        link = Html(f'<a href="{name}/report.html">{name}</a>' if d["report"] else name, "nw")
        rows.append([r["index"], link, d["epochs"], "yes" if d["report"] else "not yet"])
    return (
        f"<p>{len(sweep['runs'])} runs varying {esc(', '.join(sweep['keys']))} "
        f"(folders under {esc(out)}).</p><details><summary>The base configuration</summary>"
        f"<pre>{esc(sweep.get('base', ''))}</pre></details>"
    ) + table(["#", "run folder (its report)", "epochs", "report"], rows, left=2)


def _gen_section(sweep: dict, data: dict) -> str:
    judged = {n: d for n, d in data.items() if d["eval"]}
    if judged:
        samplers = sorted({s for d in judged.values() for s in d["eval"]}, key=_sampler_order)
        have = {m for d in judged.values() for s in samplers for m in d["eval"].get(s) or {}}
        shown = [
            Panel(
                label + arrow(m),
                "",
                [(s, ("eval", s, m), "--s" if s == "real" else "-o") for s in samplers],
            )
            for m, label in METRICS.items()
            if m in have
        ]
        figs = [
            img(panels(sweep, data, shown[i : i + 4]), f"evaluation metrics {i // 4 + 1}")
            for i in range(0, len(shown), 4)
        ]
        return (
            (
                f"<p>From samples/eval.json (<code>zspace evaluate</code>) of {len(judged)} of "
                f"{len(data)} runs: each sampler's decoded images against held-out real images in "
                "the evaluator's feature space; <b>real</b> is the real-vs-real floor; ↑ higher, "
                "↓ lower is better. "
                f"{METRICS[HEADLINE['metric']]} is the headline, {METRICS[FIDELITY['metric']]} the "
                "fidelity (docs/evaluation.md).</p>"
            )
            + "".join(figs)
            + flag_list([(f"{n}: {s}", r) for n, d in judged.items() for s, r in d["flagged"]])
        )
    samplers = sorted({s for d in data.values() for s in d["rates"]}, key=_sampler_order)
    if not samplers:
        return (
            '<p class="missing">No run has generation metrics yet (samples/eval.json or '
            "samples/rates.json).</p>"
        )
    rates = Panel(
        "Meaningful-point rate per sampler (data = held-out images, the control)",
        "meaningful-point rate",
        [(s, ("rates", s), "--s" if s == "data" else "-o") for s in samplers],
        ylim=(-0.03, 1.03),
    )
    return (
        "<p>The latent meaningful-point rate of samples/rates.json: the share of random "
        "points that, decoded and re-encoded, land within the training data's own "
        "nearest-neighbour distances (docs/generation.md); <code>zspace evaluate</code> "
        "(samples/eval.json) replaces it here once the runs have it.</p>"
    ) + img(panels(sweep, data, [rates]), "meaningful-point rates")


def _name(run: dict[str, Any]) -> Html:
    """A run's name in a table cell that does not wrap it (``model.fact=1e-4``)."""
    return Html(esc(run["name"]), "nw")


def _sampler_order(s: str) -> tuple[int, str]:
    first = {"real": 0, "data": 0, "normal": 1, "gauss": 2, "gmm": 3}
    return first.get(s.split()[0], 4), s


def _grids_section(sweep: dict, data: dict) -> str:
    cells = []
    for r in sweep["runs"]:
        d = data[r["name"]]
        rate, m = d["rates"].get("normal"), d["eval"].get("normal")
        said = f"rate {num(rate)}" if rate is not None else ""
        if m:
            shown = (HEADLINE["metric"], FIDELITY["metric"])
            said = ", ".join(f"{METRICS[k]} {num(m[k])}" for k in shown if k in m)
            said += f" {FLAG}" * any(s == "normal" for s, _ in d["flagged"])
        cap = f'<figcaption><span class="nw">{esc(r["name"])}</span><br>{esc(said)}</figcaption>'
        cap += "</figure>"
        if d["thumb"] is None:
            missing = "no N(0, I) grid (not made yet, or --sampler left normal out)"
            cells.append(f'<figure><p class="missing">{missing}</p>{cap}')
        else:
            cells.append(img(d["thumb"], f"N(0, I) grid of {r['name']}").replace("</figure>", cap))
    return (
        "<p>Images decoded from z ~ N(0, I), one grid per run in sweep order: the "
        "transition from AE-like (noise, blobs) to VAE-like (images of the data) "
        "shows at a glance.</p>" + f'<div class="thumbs">{"".join(cells)}</div>'
    )


# the numbers table: heading -> a run's number
NUMBERS = {"epochs": "epochs", "reco": "reco", "KL share (%)": "kl_pct", "radius peak": "peak"}
NUMBERS |= {"radius mean": "mean", "sqrt(z_dim)": "expected", "mean logvar": "logvar"}
NUMBERS |= {"active units": "active_of"}


def _numbers_section(sweep: dict, data: dict) -> str:
    rates = sorted({s for d in data.values() for s in d["rates"]}, key=_sampler_order)
    rows = [
        [
            _name(r),
            *(data[r["name"]][k] for k in NUMBERS.values()),
            *(data[r["name"]]["rates"].get(s) for s in rates),
        ]
        for r in sweep["runs"]
    ]
    return table(["run", *NUMBERS, *(f"rate {s}" for s in rates)], rows)


def spearman(x: list[float], y: list[float]) -> float | None:
    """Rank correlation (ties averaged); None for fewer than 3 points or a constant."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def trend_rows(out: Path, sweep: dict) -> list[dict[str, Any]]:
    """Each trend of the sweep with its measured values, rank correlation and verdict."""
    results = []
    x_of, categories = _x(sweep), axis_values(sweep["values"][sweep["keys"][0]])[2]
    for t in sweep.get("trends") or []:
        for label, runs in _series(sweep):
            measured = [(x_of(r), measure(out / r["name"], t["quantity"])) for r in runs]
            pts = [(x, y) for x, y in measured if y is not None]
            rho = None if categories else spearman([p[0] for p in pts], [p[1] for p in pts])
            sign = 1 if t["direction"] == "up" else -1
            if rho is None:
                verdict = "not measured"
            else:
                verdict = "holds" if sign * rho >= t["min_rank_correlation"] else "does not hold"
            results.append({**t, "series": label, "points": pts, "rho": rho, "verdict": verdict})
    return results


def _trends_section(out: Path, sweep: dict) -> str:
    rows = []
    for t in trend_rows(out, sweep):
        quote = f"&ldquo;{esc(t.get('quote', ''))}&rdquo; " if t.get("quote") else ""
        expected = f"{esc(t['direction'])} as {esc(sweep['keys'][0])} grows<br><small>{quote}"
        rows.append(
            [
                Html(
                    f"{esc(words(t['quantity']))}<br><small><code>{esc(t['quantity'])}</code> "
                    f"{esc(t['series'])}</small>"
                ),
                Html(f"{expected}{esc(t.get('source', ''))}</small>"),
                ", ".join(num(y) for _, y in t["points"]),
                "" if t["rho"] is None else f"{t['rho']:+.2f}",
                f"{t['min_rank_correlation']:+.2f}",
                verdict_cell(t["verdict"]),
            ]
        )
    head = ["quantity", "expected", "values in sweep order", "rank correlation", "needed"]
    return (
        "<p>A direction holds when the Spearman rank correlation between the varied "
        "value and the quantity, signed by the direction, reaches the threshold.</p>"
    ) + table([*head, "verdict"], rows, left=3)


def _reference_section(out: Path, sweep: dict) -> str:
    rows = []
    for i, raw in enumerate(sweep.get("references") or []):
        ref = parse_reference(raw, f"{SWEEP_FILE} reference #{i + 1}")
        rows += [
            [_name(r), *reference_row(ref, measure(out / r["name"], ref.quantity))]
            for r in sweep["runs"]
            if ref.applies(r["settings"])
        ]
    return (
        "<p>The reference's numbers for the runs they apply to; each run's report lists "
        "what differs in its set-up.</p>"
    ) + table(["run", *REFERENCE_HEAD], rows, left=4)


def build_sweep_page(out: str | Path, log: Callable[[str], None] | None = None) -> Path:
    """Write ``out/sweep.html`` from ``out/sweep.json`` and the run folders."""
    out = Path(out)
    sweep = optional_json(out / SWEEP_FILE)
    if not isinstance(sweep, dict) or "runs" not in sweep:
        raise ZspaceError(f"{out} holds no sweep ({SWEEP_FILE} is missing or unreadable)")
    data = {r["name"]: collect(out / r["name"]) for r in sweep["runs"]}
    for d in data.values():
        d["kl_pct"] = None if d["kl_share"] is None else 100 * d["kl_share"]
        d["active_of"] = "" if d["active"] is None else f"{d['active']:g} / {d['z_dim']:g}"
    split = next((d["reco_split"] for d in data.values() if d["epochs"]), "validation")
    sq = sorted({d["expected"] for d in data.values() if d["expected"] is not None})
    zd = sorted({d["z_dim"] for d in data.values() if d["z_dim"]})
    drawn = {
        "losses": [
            Panel(f"{split} reconstruction loss", "loss per image", [("", ("reco",), "-o")]),
            Panel("KL share of the total loss", "fact * KL / total (%)", [("", ("kl_pct",), "-o")]),
        ],
        "radius": [
            Panel(
                "Radius of the encoded training points: peak and mean",
                "radius R = ||z||",
                [("peak", ("peak",), "-o"), ("mean", ("mean",), ":s")],
                [(s, "sqrt(z_dim)") for s in sq],
            )
        ],
        "logvar": [Panel("Mean logvar of the encoder", "mean logvar", [("", ("logvar",), "-o")])],
        "active": [
            Panel(
                "Active units: axes with Var over the data of mu > 0.01 (Burda et al. 2016)",
                "active units",
                [("", ("active",), "-o")],
                [(z, "z_dim") for z in zd],
            )
        ],
    }
    titles = dict(SECTIONS) | {"logvar": "Mean logvar"}
    body = [section("runs", "Runs", _runs_section(out, sweep, data))]
    for sid, shown in drawn.items():
        figure_html = img(panels(sweep, data, shown), f"{sid} against the varied value")
        body.append(section(sid, titles[sid], figure_html))
    body += [
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
    html = page(f"zspace sweep: {out.name}", sub, nav, "\n".join(body))
    path = atomic_write_text(out / PAGE_FILE, html)
    if log:
        log(f"sweep page: {path}")
    return path


def sweep_numbers(out: str | Path) -> list[dict[str, Any]]:
    """The page's numbers per run (for notebooks and the docs' tables)."""
    out = Path(out)
    sweep = read_json(out / SWEEP_FILE)
    rows = []
    for r in sweep["runs"]:
        d = collect(out / r["name"])
        d.pop("thumb", None)
        rows.append({"name": r["name"], **r["settings"], **d})
    return rows
