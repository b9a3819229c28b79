"""Several runs side by side: radius curves overlaid, losses, inertia curves, logvar stats,
meaningful-point rates and the sampler grids.

Each run keeps one colour (tab10 by its position) on every figure of the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zspace.analysis.runner import load_result
from zspace.core.display import esc, img
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_text, check_writable
from zspace.reporting import figures as F
from zspace.reporting.evaluation import compare_html
from zspace.reporting.html import Html, page, section, table
from zspace.reporting.report import grid_figure
from zspace.reporting.style import hex_colour


def swatch(colour: str) -> Html:
    """A small block of the run's colour, as on every figure of the page."""
    return Html(f'<span class="swatch" style="background:{hex_colour(colour)}"></span>')


def _names(dirs: Sequence[Path]) -> list[str]:
    names = [d.name for d in dirs]
    if len(set(names)) < len(names):  # same leaf name: add the parent
        names = [f"{d.parent.name}/{d.name}" for d in dirs]
    return names


def build_compare(
    runs: Sequence[str | Path], out: str | Path, log: Callable[[str], None] | None = None
) -> Path:
    """Write ``out/compare.html`` for the given run folders; returns its path."""
    from zspace.runs.folder import read_history, read_meta

    dirs = [Path(r) for r in runs]
    if len(dirs) < 2:
        raise ZspaceError("compare needs at least two runs")
    for d in dirs:
        if not (d / "config.toml").is_file():
            raise ZspaceError(f"{d} is not a zspace run folder (no config.toml)")
    check_writable(Path(out) / "compare.html", "--out")  # before any figure is drawn
    names = _names(dirs)
    metas = [read_meta(d) for d in dirs]
    hists = [read_history(d) for d in dirs]
    colours = [F.run_colour(i) for i in range(len(dirs))]

    legend = table(
        ["run", "colour", "kind", "folder", "z_dim", "epochs"],
        [
            [
                n,
                swatch(c),
                str(m.get("kind", "?")).upper(),
                str(d),
                _z_dim(d),
                len(h),
            ]
            for n, c, m, d, h in zip(names, colours, metas, dirs, hists, strict=True)
        ],
        left=4,
    )
    body = [section("runs", "Runs and their colours", legend)]

    rows = []
    for n, h in zip(names, hists, strict=True):
        last = h[-1] if h else {}
        rows.append(
            [
                n,
                last.get("epoch", ""),
                last.get("total", ""),
                last.get("reco", ""),
                last.get("kl", ""),
                last.get("val_total", "") or "",
                last.get("val_reco", "") or "",
            ]
        )
    loss = "<p>Losses per image in the last epoch:</p>" + table(
        ["run", "epochs", "total", "reco", "fact * KL", "valid total", "valid reco"], rows
    )
    if any(hists):
        loss = img(F.overlay_losses(list(zip(names, hists, strict=True))), "loss curves") + loss
    body.append(section("losses", "Losses", loss))

    for name, title, fig in (
        ("radius", "Radius distributions", F.overlay_radius),
        ("kmeans", "KMeans inertia curves", F.overlay_inertia),
    ):
        items, words, lacking = [], [], []
        for n, d in zip(names, dirs, strict=True):
            got = load_result(d, name)
            if got is None:
                lacking.append(n)
                continue
            items.append((n, *got))
            words.append(f"<li><b>{esc(n)}</b>: {esc(got[0]['summary'].rstrip('.'))}.</li>")
        html = img(fig(items), title) if items else ""
        html += f"<ul>{''.join(words)}</ul>"
        if lacking:
            html += (
                f'<p class="missing">No {name} analysis for {esc(", ".join(lacking))}: '
                f"run <code>zspace analyze RUN --only {name}</code>.</p>"
            )
        body.append(section(name, title, html))

    rows = []
    for n, d in zip(names, dirs, strict=True):
        got = load_result(d, "vae")
        if got is None:
            rows.append([n, "-", "-", "-", "-", "-", "-"])  # an AE, or not analysed
            continue
        r = got[0]["result"]
        rows.append(
            [
                n,
                r["logvar_min"],
                r["logvar_max"],
                r["logvar_mean"],
                r["diff_max"],
                r["radius_abs_mean"],
                r["radius_rel_mean"],
            ]
        )
    vae = table(
        [
            "run",
            "logvar min",
            "logvar max",
            "logvar mean",
            "max |z-mu|",
            "mean |R(z)-R(mu)|",
            "mean relative",
        ],
        rows,
    )
    vae = "<p>Encoder log-variances and how far z strays from mu:</p>" + vae
    vae += "<p>A dash: an AE, or a VAE whose vae analysis has not been run.</p>"
    body.append(section("vae", "VAE internals", vae))
    body.append(section("generation", "Generation", generation_html(names, dirs)))

    out = Path(out)
    nav = [
        ("runs", "Runs"),
        ("losses", "Losses"),
        ("radius", "Radius"),
        ("kmeans", "KMeans"),
        ("vae", "VAE internals"),
        ("generation", "Generation"),
    ]
    text = page("zspace comparison", " vs ".join(names), nav, "\n".join(body))
    path = atomic_write_text(out / "compare.html", text)
    if log:
        log(f"comparison: {path}")
    return path


def _z_dim(d: Path) -> str:
    got = load_result(d, "radius")
    return str(got[0]["result"]["z_dim"]) if got else "?"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):  # unreadable, truncated, not UTF-8: shown as absent
        return None


def _key(r: dict[str, Any]) -> str:
    """A sampler row's label: its name and uniform limit (a GMM's count may differ
    between runs and still belongs on one row)."""
    params = r.get("params") or {}
    shown = {k: v for k, v in params.items() if k == "limit"}
    return str(r.get("sampler", "?")) + "".join(f" {k}={v:g}" for k, v in shown.items())


def _rate(value: Any) -> Any:
    return "-" if value is None else Html(f"{float(value):.3f}")


def generation_html(names: Sequence[str], dirs: Sequence[Path]) -> str:
    """Rates per sampler with one column per run, then each sampler's grids side by side
    (the latest unsharpened grid of that sampler and limit in each run)."""
    rates = [_read_json(d / "samples" / "rates.json") or {} for d in dirs]
    by_run = [
        {
            _key(r): r["rate"]
            for r in rt.get("results", [])
            if isinstance(r, dict) and "sampler" in r
        }
        for rt in rates
    ]
    keys = list(dict.fromkeys(k for rows in by_run for k in rows))
    parts = []
    if keys:
        parts.append(
            "<p>Meaningful-point rate per sampler (a proxy; thresholds differ "
            "between runs, see docs/generation.md).</p>"
        )
        parts.append(
            table(
                ["sampler", *names],
                [[k, *(_rate(rows.get(k)) for rows in by_run)] for k in keys],
            )
        )
    parts.append(compare_html(names, dirs))  # the evaluation, per sampler, runs side by side
    grids: dict[str, dict[str, tuple[Path, dict]]] = {}
    for n, d in zip(names, dirs, strict=True):
        index = _read_json(d / "samples" / "index.json")
        for e in index if isinstance(index, list) else []:
            params = e.get("params") or {} if isinstance(e, dict) else {}
            if not isinstance(e, dict) or e.get("kind") != "grid" or "sharpen" in params:
                continue
            grids.setdefault(_key(e), {})[n] = (d / "samples", e)
    for key, per_run in grids.items():
        cells = [grid_figure(*per_run[n], label=n) for n in names if n in per_run]
        if cells:
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
