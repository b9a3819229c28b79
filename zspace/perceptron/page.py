"""The study's output folder: PNG figures, results.json and one self-contained HTML page."""

from __future__ import annotations

import dataclasses
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from zspace.core.display import img
from zspace.core.errors import ZspaceError
from zspace.core.fileio import atomic_write_bytes, atomic_write_text
from zspace.perceptron import figures
from zspace.perceptron.tables import (
    COLUMNS,
    descent_line,
    scaling_line,
    surface_line,
    table_rows,
)

if TYPE_CHECKING:
    from zspace.perceptron.study import PerceptronResult

#: file name -> (figure function, caption)
FIGURES = {
    "samples.png": (figures.fig_samples, "The samples before and after scaling."),
    "cost_surface.png": (
        figures.fig_surface,
        "The cost over the weight mesh; the descent paths end in its minimum.",
    ),
    "evolution.png": (figures.fig_evolution, "Cost and weights during both descents."),
    "output.png": (
        figures.fig_output,
        "The trained neuron's output over the original (K1, K2) plane, samples on top.",
    ),
}

_GEOMETRY = {
    True: (
        "The per-sample Normalizer divides every point by its own length, so all points "
        "on a ray from the origin map to the same scaled point: the output is constant "
        "along rays and its contour lines in the original plane are rays through the "
        "origin. Only the angle of a sample matters, which separates these two clusters "
        "well, but would fail for clusters that differ only in their distance from the origin."
    ),
    False: (
        "This scaling is affine per feature, so w1*k1 + w2*k2 is an affine function of "
        "(K1, K2): the output is constant along parallel straight lines of the original "
        "plane, and the separation line between the classes is one of them."
    ),
}


def _table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def build_html(result: PerceptronResult, pngs: dict[str, bytes]) -> str:
    """The page as a string; ``pngs`` (file name -> PNG bytes) are embedded as data URIs.
    It has the look of the run reports (``zspace.reporting.html``): header, sections."""
    from zspace.reporting.html import page, section

    esc = html.escape
    intro = [
        "<p>One neuron with a sigmoid, A = sigmoid(w1*k1 + w2*k2), learns targets 0.3 and "
        "0.7 for 14 samples (K1, K2) after the inputs are scaled to (k1, k2). The cost is "
        "C = 0.5 * mean((A - target)^2); Err = |A - target| / target, and the total error is "
        "its mean. Raw values of up to a few hundred drive the sigmoid into saturation, "
        "where gradients vanish; scaled to order one, the cost surface has a clear minimum "
        "that gradient descent can reach.</p>",
        f"<p>{esc(_GEOMETRY[result.scaling.per_sample])}</p>",
        '<ul class="key">',
        f"<li>{esc(scaling_line(result))}</li>",
        f"<li>{esc(surface_line(result))}</li>",
        f"<li>{esc(descent_line(result.stochastic))}</li>",
        f"<li>{esc(descent_line(result.batch))}</li>",
        "</ul>",
    ]
    body = [section("study", "The study", "\n".join(intro))]
    nav = [("study", "Study")]
    titles = {"samples.png": "Samples", "cost_surface.png": "Cost surface",
              "evolution.png": "Descent", "output.png": "Output"}  # fmt: skip
    for name, (_, caption) in FIGURES.items():
        if name in pngs:
            sid = name.removesuffix(".png").replace("_", "-")
            fig = img(pngs[name], name, caption)
            body.append(section(sid, titles[name], fig))
            nav.append((sid, titles[name]))
    for run in (result.stochastic, result.batch):
        sid = f"{run.mode}-table"
        body.append(
            section(sid, f"{run.mode.capitalize()} descent", _table(table_rows(result, run)))
        )
        nav.append((sid, f"{run.mode.capitalize()} table"))
    title = f"Single-neuron perceptron, scaling {result.scaling.name}"
    sub = "A side study of zspace: why inputs are scaled before a sigmoid neuron learns"
    return page(title, sub, nav, "\n".join(body))


def results_json(result: PerceptronResult) -> dict:
    """The numbers of the study, for scripts."""
    s = result.surface
    runs = {
        run.mode: {
            "start": list(run.start),
            "eta": run.eta,
            "decrease": run.decrease,
            "steps": run.steps,
            "final": list(run.final),
            "cost": float(run.costs[-1]),
            "outputs": run.outputs.tolist(),
            "errors": run.errors.tolist(),
            "total_error": run.total_error,
        }
        for run in (result.stochastic, result.batch)
    }
    return {
        "scaling": {
            "name": result.scaling.name,
            "per_sample": result.scaling.per_sample,
            "scale": result.scaling.scale.tolist(),
            "shift": result.scaling.shift.tolist(),
        },
        "K": result.samples.K.tolist(),
        "target": result.samples.target.tolist(),
        "k": result.k.tolist(),
        "surface": None
        if s is None
        else {
            "mesh": dataclasses.asdict(result.mesh) if result.mesh else None,
            "shape": [int(s.w2.size), int(s.w1.size)],
            "c_min": s.c_min,
            "w_min": list(s.w_min),
            "seconds": s.seconds,
            "threads": s.threads,
        },
        **runs,
    }


def write_study(result: PerceptronResult, out: Path) -> PerceptronResult:
    """Write the figures, results.json and index.html into ``out``; return the result
    with ``out`` set."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ZspaceError(f"cannot create output folder {out}: {e.strerror}") from None
    if not out.is_dir():
        raise ZspaceError(f"output path {out} exists and is not a folder")
    pngs: dict[str, bytes] = {}
    for name, (make, _) in FIGURES.items():
        fig = make(result)
        if fig is not None:
            pngs[name] = figures.png_bytes(fig)
            atomic_write_bytes(out / name, pngs[name])
    atomic_write_text(out / "results.json", json.dumps(results_json(result), indent=1) + "\n")
    atomic_write_text(out / "index.html", build_html(result, pngs))
    return dataclasses.replace(result, out=out)
